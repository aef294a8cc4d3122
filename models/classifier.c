/* The evaluation classifier: see classifier.h. Assembled like models/dit.c. */
#include "classifier.h"
#include "dit.h"
#include "dit_layer.h"
#include "../data/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLF_FORMAT "dblocks-classifier"

typedef struct {
  int B, training;
  db_arena *arena;
  db_tensor img, tokens, *h, czero, pooled, fmean, frstd, feat, logits, probs, losses, labels;
  dit_layer_acts *layer;
  dit_workspace ws;
  /* backward */
  db_tensor dlosses, dlogits, dfeat, dpooled, dh0, dh1, dc;
  float *host_img, *host_tok; /* staging for one batch */
  int *host_lab;
} clf_acts;

struct classifier {
  db_ctx *ctx;
  clf_config cfg;
  dit_layer_config lcfg;
  int T, P, w;      /* tokens, values per token, window (= patch if not overlapping) */
  param_set ps;
  int i_x_w, i_x_b, i_p_w, i_p_b, i_h_w, i_h_b, *i_layer;
  db_arena *fixed;
  db_tensor pos; /* (T, C) */
  double test_acc;
  clf_acts a;
};

clf_config clf_default_config(void) {
  return (clf_config){.width = 64, .depth = 2, .heads = 4, .patch = 7, .window = 15, .pool = 1, .n_classes = 10,
                      .img_h = 28, .img_w = 28};
}

static const char *config_error(const clf_config *c, char *buf, size_t len) {
  if (c->img_h <= 0 || c->img_w <= 0) snprintf(buf, len, "image size %dx%d is not positive", c->img_h, c->img_w);
  else if (c->patch <= 0 || c->img_h % c->patch || c->img_w % c->patch)
    snprintf(buf, len, "patch %d must divide the image size %dx%d", c->patch, c->img_h, c->img_w);
  else if (c->pool != 0 && c->pool != 1) snprintf(buf, len, "pool %d must be 0 (mean) or 1 (flatten)", c->pool);
  else if (c->window && (c->window < c->patch || (c->window - c->patch) % 2 || c->window > 64))
    snprintf(buf, len, "window %d must be 0 or patch %d plus an even number, at most 64", c->window, c->patch);
  else if (c->width <= 0 || c->width % 4)
    snprintf(buf, len, "width %d must be a positive multiple of 4 (2-D sin-cos positions)", c->width);
  else if (c->heads <= 0 || c->width % c->heads)
    snprintf(buf, len, "width %d must be a multiple of heads %d", c->width, c->heads);
  else if (c->depth <= 0 || c->depth > 64) snprintf(buf, len, "depth %d must be in 1..64", c->depth);
  else if (c->n_classes < 2 || c->n_classes > 100000) snprintf(buf, len, "n_classes %d must be in 2..100000", c->n_classes);
  else return NULL;
  return buf;
}

void clf_config_check(const clf_config *cfg) {
  char buf[160];
  if (config_error(cfg, buf, sizeof buf)) db_fail("classifier: %s", buf);
}


static int add2(param_set *ps, const char *name, int d0, int d1, int decay) {
  int shape[2] = {d0, d1};
  return param_add(ps, name, d1 ? 2 : 1, shape, decay);
}

static void init_params(db_ctx *ctx, classifier *c, uint64_t seed) {
  param_set *ps = &c->ps;
  int C = c->cfg.width;
  for (int i = 0; i < ps->n; i++) {
    db_tensor t = ps->p[i];
    uint64_t off = (uint64_t)i << 36; /* one Philox stream per tensor */
    if (t.ndim == 1 || strstr(ps->names[i], "adaLN") || i == c->i_h_w) db_zero(ctx, t);
    else {
      float bound = sqrtf(6.0f / (float)(t.shape[0] + t.shape[1]));
      db_rng_uniform(ctx, t, seed, off, -bound, bound);
    }
  }
  /* gates (columns 2C..3C and 5C..6C of the modulation) start at 1 */
  float *b = db_calloc((size_t)6 * C, sizeof *b);
  for (int k = 0; k < C; k++) b[2 * C + k] = b[5 * C + k] = 1.0f;
  for (int l = 0; l < c->cfg.depth; l++) db_upload(ctx, ps->p[c->i_layer[l] + DIT_ADA_B], b);
  free(b);
}

static classifier *create(db_ctx *ctx, clf_config cfg) {
  clf_config_check(&cfg);
  classifier *c = db_calloc(1, sizeof *c);
  c->ctx = ctx;
  c->cfg = cfg;
  c->test_acc = -1;
  c->lcfg = (dit_layer_config){cfg.width, cfg.heads};
  int C = cfg.width, p = cfg.patch;
  c->T = (cfg.img_h / p) * (cfg.img_w / p);
  c->w = cfg.window ? cfg.window : p;
  c->P = c->w * c->w;
  param_set *ps = &c->ps;
  param_set_init(ps, ctx, "classifier");
  c->i_x_w = add2(ps, "x_embedder.proj.weight", C, c->P, 1);
  c->i_x_b = add2(ps, "x_embedder.proj.bias", C, 0, 0);
  c->i_layer = db_calloc((size_t)cfg.depth, sizeof *c->i_layer);
  for (int l = 0; l < cfg.depth; l++)
    for (int k = 0; k < DIT_NPARAMS; k++) {
      int nd, shape[2];
      char name[96];
      dit_param_shape(c->lcfg, k, &nd, shape);
      snprintf(name, sizeof name, "blocks.%d.%s", l, dit_param_names[k]);
      int idx = param_add(ps, name, nd, shape, nd == 2);
      if (k == 0) c->i_layer[l] = idx;
    }
  c->i_p_w = c->i_p_b = -1;
  if (cfg.pool) {
    c->i_p_w = add2(ps, "pool.proj.weight", C, c->T * C, 1);
    c->i_p_b = add2(ps, "pool.proj.bias", C, 0, 0);
  }
  c->i_h_w = add2(ps, "head.weight", cfg.n_classes, C, 1);
  c->i_h_b = add2(ps, "head.bias", cfg.n_classes, 0, 0);
  param_set_commit(ps);
  c->fixed = db_arena_new(ctx, "classifier positions");
  c->pos = db_new(c->fixed, 2, c->T, C, 0, 0);
  float *pos = db_malloc(sizeof(float) * (size_t)c->T * C);
  dit_sincos_2d(pos, cfg.img_h / p, cfg.img_w / p, C);
  db_upload(ctx, c->pos, pos);
  free(pos);
  return c;
}

classifier *clf_create(db_ctx *ctx, clf_config cfg, uint64_t seed) {
  classifier *c = create(ctx, cfg);
  init_params(ctx, c, seed);
  return c;
}

static void acts_free(clf_acts *a) {
  if (a->arena) db_arena_free(a->arena);
  free(a->h);
  free(a->layer);
  free(a->host_img);
  free(a->host_tok);
  free(a->host_lab);
  memset(a, 0, sizeof *a);
}

void clf_free(classifier *c) {
  if (!c) return;
  acts_free(&c->a);
  param_set_free(&c->ps);
  db_arena_free(c->fixed);
  free(c->i_layer);
  free(c);
}

clf_config clf_get_config(const classifier *c) { return c->cfg; }
int clf_feature_dim(const classifier *c) { return c->cfg.width; }
param_set *clf_params(classifier *c) { return &c->ps; }
double clf_test_accuracy(const classifier *c) { return c->test_acc; }

/* Activations for batches of exactly B images (callers pad the last batch). */
static clf_acts *ensure_acts(classifier *c, int B, int training) {
  clf_acts *a = &c->a;
  if (a->arena && a->B == B && a->training >= training) return a;
  acts_free(a);
  db_ctx *ctx = c->ctx;
  const clf_config *g = &c->cfg;
  int C = g->width, T = c->T, P = c->P, L = g->depth, K = g->n_classes;
  a->B = B;
  a->training = training;
  a->arena = db_arena_new(ctx, "classifier activations");
  db_arena *ar = a->arena;
  a->img = db_new(ar, 4, B, 1, g->img_h, g->img_w);
  a->tokens = db_new(ar, 3, B, T, P, 0);
  a->h = db_calloc((size_t)L + 1, sizeof *a->h);
  a->layer = db_calloc((size_t)L, sizeof *a->layer);
  for (int l = 0; l <= L; l++) a->h[l] = db_new(ar, 3, B, T, C, 0);
  for (int l = 0; l < L; l++) dit_layer_alloc_acts(ar, c->lcfg, B, T, &a->layer[l]);
  dit_workspace_alloc(ar, c->lcfg, B, T, &a->ws);
  a->czero = db_new(ar, 2, B, C, 0, 0);
  db_zero(ctx, a->czero);
  a->pooled = db_new(ar, 2, B, C, 0, 0);
  a->fmean = db_new(ar, 1, B, 0, 0, 0);
  a->frstd = db_new(ar, 1, B, 0, 0, 0);
  a->feat = db_new(ar, 2, B, C, 0, 0);
  a->logits = db_new(ar, 2, B, K, 0, 0);
  a->host_img = db_malloc(sizeof(float) * (size_t)B * g->img_h * g->img_w);
  a->host_lab = db_malloc(sizeof(int) * (size_t)B);
  if (c->w > g->patch) a->host_tok = db_malloc(sizeof(float) * (size_t)B * T * P);
  if (!training) return a;
  a->probs = db_new(ar, 2, B, K, 0, 0);
  a->losses = db_new(ar, 1, B, 0, 0, 0);
  int lshape[1] = {B};
  a->labels = db_alloc(ar, DB_I32, 1, lshape);
  a->dlosses = db_new(ar, 1, B, 0, 0, 0);
  db_fill(ctx, a->dlosses, 1.0f / (float)B); /* the loss is the batch mean */
  a->dlogits = db_new(ar, 2, B, K, 0, 0);
  a->dfeat = db_new(ar, 2, B, C, 0, 0);
  a->dpooled = db_new(ar, 2, B, C, 0, 0);
  a->dh0 = db_new(ar, 3, B, T, C, 0);
  a->dh1 = db_new(ar, 3, B, T, C, 0);
  a->dc = db_new(ar, 2, B, C, 0, 0);
  return a;
}

static dit_layer_params layer_view(const db_tensor *set, int first) {
  dit_layer_params lp;
  for (int k = 0; k < DIT_NPARAMS; k++) lp.t[k] = set[first + k];
  return lp;
}

/* Overlapping windows: token (i,j) holds the w x w pixels centred on patch
 * (i,j), row-major, pixels outside the image read as -1 (background). */
static void window_tokens(const classifier *c, const float *img, int B, float *tok) {
  const clf_config *g = &c->cfg;
  int p = g->patch, w = c->w, gh = g->img_h / p, gw = g->img_w / p, m = (w - p) / 2;
  for (int b = 0; b < B; b++)
    for (int i = 0; i < gh; i++)
      for (int j = 0; j < gw; j++) {
        float *t = tok + (((size_t)b * gh + i) * gw + j) * (size_t)w * w;
        for (int y = 0; y < w; y++)
          for (int x = 0; x < w; x++) {
            int yy = i * p - m + y, xx = j * p - m + x;
            int in = yy >= 0 && yy < g->img_h && xx >= 0 && xx < g->img_w;
            t[y * w + x] = in ? img[((size_t)b * g->img_h + yy) * g->img_w + xx] : -1.0f;
          }
      }
}

/* The batch of a->B images in a->host_img to the device (as images or tokens). */
static void upload_batch(classifier *c, clf_acts *a) {
  if (c->w > c->cfg.patch) {
    window_tokens(c, a->host_img, a->B, a->host_tok);
    db_upload(c->ctx, a->tokens, a->host_tok);
  } else db_upload(c->ctx, a->img, a->host_img);
}

/* batch uploaded; logits (and, training, losses) computed */
static void forward(classifier *c, clf_acts *a, int with_loss) {
  db_ctx *ctx = c->ctx;
  const clf_config *g = &c->cfg;
  db_tensor *p = c->ps.p;
  int B = a->B, C = g->width, T = c->T, P = c->P, N = B * T, L = g->depth, K = g->n_classes;
  if (c->w == g->patch) patchify_forward(ctx, a->tokens, a->img, B, 1, g->img_h, g->img_w, g->patch);
  linear_forward(ctx, a->h[0], a->tokens, p[c->i_x_w], p[c->i_x_b], N, P, C);
  add_broadcast_forward(ctx, a->h[0], a->h[0], c->pos, (size_t)N * C, (size_t)T * C);
  for (int l = 0; l < L; l++) {
    dit_layer_params lp = layer_view(p, c->i_layer[l]);
    dit_layer_forward(ctx, a->h[l + 1], &a->layer[l], a->h[l], a->czero, &lp, &a->ws, c->lcfg);
  }
  if (g->pool) linear_forward(ctx, a->pooled, db_view(a->h[L], 0, 2, (int[]){B, T * C}), p[c->i_p_w], p[c->i_p_b], B, T * C, C);
  else mean_tokens_forward(ctx, a->pooled, a->h[L], B, T, C);
  layernorm_forward(ctx, a->feat, a->fmean, a->frstd, a->pooled, B, C, 1e-6f);
  linear_forward(ctx, a->logits, a->feat, p[c->i_h_w], p[c->i_h_b], B, C, K);
  if (with_loss) crossentropy_forward(ctx, a->losses, a->probs, a->logits, a->labels, B, K);
}

/* gradients of the batch-mean loss, accumulated into c->ps.g */
static void backward(classifier *c, clf_acts *a) {
  db_ctx *ctx = c->ctx;
  const clf_config *g = &c->cfg;
  db_tensor *p = c->ps.p, *gr = c->ps.g;
  int B = a->B, C = g->width, T = c->T, P = c->P, N = B * T, L = g->depth, K = g->n_classes;
  db_zero(ctx, a->dlogits);
  crossentropy_backward(ctx, a->dlogits, a->dlosses, a->probs, a->labels, B, K);
  linear_backward(ctx, a->dfeat, gr[c->i_h_w], gr[c->i_h_b], a->dlogits, a->feat, p[c->i_h_w], B, C, K,
                  LINEAR_DINP_SET);
  db_zero(ctx, a->dpooled);
  layernorm_backward(ctx, a->dpooled, a->dfeat, a->pooled, a->fmean, a->frstd, B, C);
  db_tensor dh = a->dh0, dprev = a->dh1;
  if (g->pool)
    linear_backward(ctx, db_view(dh, 0, 2, (int[]){B, T * C}), gr[c->i_p_w], gr[c->i_p_b], a->dpooled,
                    db_view(a->h[L], 0, 2, (int[]){B, T * C}), p[c->i_p_w], B, T * C, C, LINEAR_DINP_SET);
  else {
    db_zero(ctx, dh); /* mean_tokens_backward adds */
    mean_tokens_backward(ctx, dh, a->dpooled, B, T, C);
  }
  db_zero(ctx, a->dc); /* the conditioning is a constant: its gradient is discarded */
  for (int l = L - 1; l >= 0; l--) {
    dit_layer_params lp = layer_view(p, c->i_layer[l]), lg = layer_view(gr, c->i_layer[l]);
    db_zero(ctx, dprev);
    dit_layer_backward(ctx, dprev, a->dc, &lg, dh, &a->layer[l], a->h[l], a->czero, &lp, &a->ws, c->lcfg);
    db_tensor t = dh;
    dh = dprev;
    dprev = t;
  }
  /* positions are fixed and the images are data */
  linear_backward(ctx, DB_NULL, gr[c->i_x_w], gr[c->i_x_b], dh, a->tokens, p[c->i_x_w], N, P, C, LINEAR_DINP_SET);
}

static double mean_loss(classifier *c, clf_acts *a) {
  float *l = db_malloc(sizeof(float) * (size_t)a->B);
  db_download(c->ctx, a->losses, l);
  double s = 0;
  for (int i = 0; i < a->B; i++) s += l[i];
  free(l);
  return s / a->B;
}

static void upload_labels(classifier *c, clf_acts *a, const uint8_t *labels, const int *idx) {
  for (int i = 0; i < a->B; i++) {
    int y = labels[idx ? idx[i] : i];
    if (y >= c->cfg.n_classes) db_fail("classifier: label %d is not below n_classes %d", y, c->cfg.n_classes);
    a->host_lab[i] = y;
  }
  db_upload(c->ctx, a->labels, a->host_lab);
}

double clf_loss(db_ctx *ctx, classifier *c, const float *images, const uint8_t *labels, int n, int do_backward) {
  (void)ctx;
  if (n <= 0) db_fail("clf_loss: need at least one image, got %d", n);
  clf_acts *a = ensure_acts(c, n, 1);
  memcpy(a->host_img, images, sizeof(float) * (size_t)n * c->cfg.img_h * c->cfg.img_w);
  upload_batch(c, a);
  upload_labels(c, a, labels, NULL);
  forward(c, a, 1);
  double loss = mean_loss(c, a);
  if (do_backward) {
    param_set_alloc_training(&c->ps);
    param_set_zero_grads(&c->ps);
    backward(c, a);
  }
  return loss;
}

void clf_features(db_ctx *ctx, classifier *c, const float *images, int n, int h, int w, float *features, int *pred) {
  (void)ctx;
  if (h != c->cfg.img_h || w != c->cfg.img_w)
    db_fail("clf_features: images are %dx%d, the classifier expects %dx%d", h, w, c->cfg.img_h, c->cfg.img_w);
  if (n <= 0) return;
  int B = c->a.arena ? c->a.B : 256;
  clf_acts *a = ensure_acts(c, B, 0);
  int C = c->cfg.width, K = c->cfg.n_classes;
  size_t img = (size_t)c->cfg.img_h * c->cfg.img_w;
  float *fb = db_malloc(sizeof(float) * (size_t)B * C), *lb = db_malloc(sizeof(float) * (size_t)B * K);
  for (int s = 0; s < n; s += B) {
    int m = n - s < B ? n - s : B;
    /* a short last batch is padded with blank (-1) images, outputs ignored */
    memcpy(a->host_img, images + (size_t)s * img, sizeof(float) * (size_t)m * img);
    for (size_t i = (size_t)m * img; i < (size_t)B * img; i++) a->host_img[i] = -1.0f;
    upload_batch(c, a);
    forward(c, a, 0);
    if (features) {
      db_download(c->ctx, a->feat, fb);
      memcpy(features + (size_t)s * C, fb, sizeof(float) * (size_t)m * C);
    }
    if (pred) {
      db_download(c->ctx, a->logits, lb);
      for (int i = 0; i < m; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
          if (lb[(size_t)i * K + k] > lb[(size_t)i * K + best]) best = k;
        pred[s + i] = best;
      }
    }
  }
  free(fb);
  free(lb);
}

double clf_accuracy(db_ctx *ctx, classifier *c, const float *images, const uint8_t *labels, int n) {
  if (n <= 0) return 0;
  int *pred = db_malloc(sizeof(int) * (size_t)n);
  clf_features(ctx, c, images, n, c->cfg.img_h, c->cfg.img_w, NULL, pred);
  int ok = 0;
  for (int i = 0; i < n; i++) ok += pred[i] == labels[i];
  free(pred);
  return (double)ok / n;
}

static uint32_t philox_u32(uint64_t seed, uint64_t i) {
  uint32_t o[4];
  db_philox4x32(seed, i / 4, o);
  return o[i % 4];
}

/* Fisher-Yates with Philox draws: epoch e uses counters from e << 40. */
static void shuffle(int *perm, int n, uint64_t seed, int epoch) {
  for (int i = 0; i < n; i++) perm[i] = i;
  uint64_t base = (uint64_t)epoch << 40;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(((uint64_t)philox_u32(seed, base + (uint64_t)i) * (uint64_t)(i + 1)) >> 32);
    int t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

static void check_dataset(const classifier *c, const idx_dataset *d, const char *what) {
  if (!d || d->n <= 0 || !d->images || !d->labels) db_fail("clf_train: the %s set is empty", what);
  if (d->rows != c->cfg.img_h || d->cols != c->cfg.img_w)
    db_fail("clf_train: %s images are %dx%d, the classifier expects %dx%d", what, d->rows, d->cols, c->cfg.img_h,
            c->cfg.img_w);
}

double clf_train(db_ctx *ctx, classifier *c, const idx_dataset *train, const idx_dataset *test, int epochs, int batch,
                 float lr, uint64_t seed) {
  check_dataset(c, train, "training");
  if (test) check_dataset(c, test, "test");
  if (epochs <= 0 || batch <= 0 || batch > train->n)
    db_fail("clf_train: need epochs >= 1 and 1 <= batch <= %d, got epochs=%d batch=%d", train->n, epochs, batch);
  param_set_alloc_training(&c->ps);
  clf_acts *a = ensure_acts(c, batch, 1);
  size_t img = (size_t)c->cfg.img_h * c->cfg.img_w;
  int spe = train->n / batch, total = spe * epochs;
  int warmup = total / 20 < 200 ? total / 20 : 200;
  if (warmup < 1) warmup = 1;
  int *perm = db_malloc(sizeof(int) * (size_t)train->n);
  adamw_config ac = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.05f, .clip = 1.0f};
  fprintf(stderr, "classifier: width %d depth %d heads %d patch %d, %zu parameters; %d epochs x %d steps of %d\n",
          c->cfg.width, c->cfg.depth, c->cfg.heads, c->cfg.patch, param_set_numel(&c->ps), epochs, spe, batch);
  double t0 = db_now(), acc = -1;
  int step = 0;
  for (int e = 0; e < epochs; e++) {
    shuffle(perm, train->n, seed, e);
    double run = 0;
    int nrun = 0;
    for (int s = 0; s < spe; s++, step++) {
      const int *idx = perm + (size_t)s * batch;
      for (int i = 0; i < batch; i++) memcpy(a->host_img + (size_t)i * img, train->images + (size_t)idx[i] * img, sizeof(float) * img);
      upload_batch(c, a);
      upload_labels(c, a, train->labels, idx);
      forward(c, a, 1);
      param_set_zero_grads(&c->ps);
      backward(c, a);
      /* warm-up, then cosine decay to 0 */
      double f = step < warmup ? (double)(step + 1) / warmup
                               : 0.5 * (1 + cos(M_PI * (double)(step - warmup) / (double)(total - warmup)));
      ac.lr = (float)(lr * f);
      param_set_adamw(&c->ps, ac, step + 1);
      run += mean_loss(c, a);
      nrun++;
      if ((s + 1) % 100 == 0 || s + 1 == spe) {
        double el = db_now() - t0;
        fprintf(stderr, "  epoch %d step %4d/%d  loss %.4f  lr %.2e  %.0f img/s  %.0f s\n", e + 1, s + 1, spe,
                run / nrun, ac.lr, (double)(step + 1) * batch / el, el);
        run = 0;
        nrun = 0;
      }
    }
    if (test) {
      acc = clf_accuracy(ctx, c, test->images, test->labels, test->n);
      c->test_acc = acc;
      fprintf(stderr, "  epoch %d: test accuracy %.2f %%  (%.0f s)\n", e + 1, 100 * acc, db_now() - t0);
    }
  }
  free(perm);
  return acc;
}

/* ---------------------------------------------------------------- files */
#define NKEYS 9
static const char *const keys[NKEYS] = {"width", "depth", "heads", "patch", "window", "pool", "n_classes", "img_h", "img_w"};

static int saved(const char *name) { return !strstr(name, "adaLN.weight"); /* always 0: c = 0 */ }

void clf_save(const classifier *c, const char *path) {
  const param_set *ps = &c->ps;
  st_tensor_in *t = db_calloc((size_t)ps->n, sizeof *t);
  float **bufs = db_calloc((size_t)ps->n, sizeof *bufs);
  int n = 0;
  for (int i = 0; i < ps->n; i++) {
    if (!saved(ps->names[i])) continue;
    bufs[n] = db_malloc(db_nbytes(ps->p[i]));
    db_download(c->ctx, ps->p[i], bufs[n]);
    t[n].name = ps->names[i];
    t[n].ndim = ps->p[i].ndim;
    for (int d = 0; d < 4; d++) t[n].shape[d] = d < ps->p[i].ndim ? ps->p[i].shape[d] : 0;
    t[n].data = bufs[n];
    n++;
  }
  char v[NKEYS + 1][32];
  const clf_config *g = &c->cfg;
  int iv[NKEYS] = {g->width, g->depth, g->heads, g->patch, g->window, g->pool, g->n_classes, g->img_h, g->img_w};
  const char *kv[2 * (NKEYS + 2)];
  int nm = 0;
  kv[2 * nm] = "format";
  kv[2 * nm++ + 1] = CLF_FORMAT;
  for (int k = 0; k < NKEYS; k++) {
    snprintf(v[k], sizeof v[k], "%d", iv[k]);
    kv[2 * nm] = keys[k];
    kv[2 * nm++ + 1] = v[k];
  }
  if (c->test_acc >= 0) {
    snprintf(v[NKEYS], sizeof v[NKEYS], "%.6f", c->test_acc);
    kv[2 * nm] = "test_accuracy";
    kv[2 * nm++ + 1] = v[NKEYS];
  }
  st_write(path, t, n, kv, nm);
  for (int i = 0; i < n; i++) free(bufs[i]);
  free(bufs);
  free(t);
}

static int meta_int(const st_file *f, const char *key, int *out) {
  const char *s = st_meta(f, key);
  if (!s || !*s) return 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < -1000000000L || v > 1000000000L) return 0;
  *out = (int)v;
  return 1;
}

/* The configuration in a checkpoint's metadata; err (256 bytes) says what is wrong, "" if nothing. */
static clf_config read_config(const st_file *f, char *err) {
  clf_config g;
  memset(&g, 0, sizeof g);
  err[0] = 0;
  const char *fmt = st_meta(f, "format");
  if (!fmt || strcmp(fmt, CLF_FORMAT))
    snprintf(err, 256, "not a classifier checkpoint (metadata \"format\" is %s%s%s, expected \"%s\")",
             fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "", CLF_FORMAT);
  else {
    int *fields[NKEYS] = {&g.width, &g.depth, &g.heads, &g.patch, &g.window, &g.pool, &g.n_classes, &g.img_h, &g.img_w};
    for (int k = 0; k < NKEYS && !err[0]; k++)
      if (!meta_int(f, keys[k], fields[k])) snprintf(err, 256, "metadata \"%s\" is missing or not an integer", keys[k]);
    char buf[160];
    if (!err[0] && config_error(&g, buf, sizeof buf)) snprintf(err, 256, "bad configuration: %s", buf);
  }
  return g;
}

clf_config clf_read_config(const char *path) {
  st_file f = st_read(path); /* fails clearly on a missing or malformed file */
  char err[256];
  clf_config g = read_config(&f, err);
  st_free(&f);
  if (err[0]) db_fail("checkpoint %s: %s", path, err);
  return g;
}

classifier *clf_load(db_ctx *ctx, const char *path) {
  st_file f = st_read(path); /* fails clearly on a missing or malformed file */
  char err[256];
  clf_config g = read_config(&f, err);
  if (err[0]) {
    st_free(&f);
    db_fail("checkpoint %s: %s", path, err);
  }
  classifier *c = create(ctx, g);
  param_set *ps = &c->ps;
  for (int i = 0; i < ps->n && !err[0]; i++) {
    const st_tensor *t = st_find(&f, ps->names[i]);
    if (!t) {
      if (!saved(ps->names[i])) { db_zero(ctx, ps->p[i]); continue; }
      snprintf(err, sizeof err, "tensor \"%s\" is missing", ps->names[i]);
      break;
    }
    int ok = t->ndim == ps->p[i].ndim;
    for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == ps->p[i].shape[d];
    if (!ok) {
      snprintf(err, sizeof err, "tensor \"%s\" has shape [%d,%d] (rank %d), expected [%d,%d]", ps->names[i],
               t->ndim > 0 ? t->shape[0] : 0, t->ndim > 1 ? t->shape[1] : 0, t->ndim, ps->p[i].shape[0],
               ps->p[i].ndim > 1 ? ps->p[i].shape[1] : 0);
      break;
    }
    for (size_t j = 0; j < t->numel && ok; j++) ok = isfinite(t->data[j]);
    if (!ok) {
      snprintf(err, sizeof err, "tensor \"%s\" holds NaN or Inf", ps->names[i]);
      break;
    }
    db_upload(ctx, ps->p[i], t->data);
  }
  const char *acc = st_meta(&f, "test_accuracy");
  if (acc) c->test_acc = strtod(acc, NULL);
  st_free(&f);
  if (err[0]) {
    clf_free(c);
    db_fail("checkpoint %s: %s", path, err);
  }
  return c;
}
