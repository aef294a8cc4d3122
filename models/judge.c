/* The byte-level judge: see judge.h. Forward and hand-written backward
 * composed from ops/, every activation the backward reads saved per layer. */
#include "judge.h"
#include "../data/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JUDGE_FORMAT "dblocks-judge"
#define V 256
#define LN_EPS 1e-5f
#define MAX_NOTES 8

enum { L_LN1, L_QKV_W, L_QKV_B, L_PROJ_W, L_PROJ_B, L_LN2, L_FC1_W, L_FC1_B, L_FC2_W, L_FC2_B, L_NPARAMS };
static const char *const layer_names[L_NPARAMS] = {"ln1", "qkv.weight", "qkv.bias", "proj.weight", "proj.bias",
                                                   "ln2", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};

typedef struct {
  db_tensor mean1, rstd1, a1, qkv, lse, att, x1, mean2, rstd2, a2, f1, g;
} layer_acts;

typedef struct {
  int B, training;
  db_arena *arena;
  db_tensor idx, tgt, *h, mf, rf, hf, logits, probs, losses;
  layer_acts *la;
  /* backward */
  db_tensor dlosses, dlogits, dh, dhf, da, dqkv, datt, dg, dsum;
  int *host_idx, *host_tgt;
  float *host_loss;
} judge_acts;

struct judge {
  db_ctx *ctx;
  judge_config cfg;
  param_set ps;
  int i_wte, i_wpe, i_lnf, i_head_w, i_head_b, *i_layer;
  char *note_k[MAX_NOTES], *note_v[MAX_NOTES];
  int n_notes;
  judge_acts a;
};

judge_config judge_default_config(void) { return (judge_config){.width = 128, .heads = 4, .layers = 4, .context = 128}; }

static const char *config_error(const judge_config *c, char *buf, size_t len) {
  if (c->width <= 0 || c->width > 4096) snprintf(buf, len, "width %d must be in 1..4096", c->width);
  else if (c->heads <= 0 || c->width % c->heads)
    snprintf(buf, len, "width %d must be a positive multiple of heads %d", c->width, c->heads);
  else if (c->width / c->heads > 128)
    snprintf(buf, len, "head size %d (width %d / heads %d) must be at most 128", c->width / c->heads, c->width, c->heads);
  else if (c->layers <= 0 || c->layers > 64) snprintf(buf, len, "layers %d must be in 1..64", c->layers);
  else if (c->context < 2 || c->context > 4096) snprintf(buf, len, "context %d must be in 2..4096", c->context);
  else return NULL;
  return buf;
}

void judge_config_check(const judge_config *cfg) {
  char buf[160];
  if (config_error(cfg, buf, sizeof buf)) db_fail("judge: %s", buf);
}

static int add2(param_set *ps, const char *name, int d0, int d1, int decay) {
  int shape[2] = {d0, d1};
  return param_add(ps, name, d1 ? 2 : 1, shape, decay);
}

static judge *create(db_ctx *ctx, judge_config cfg) {
  judge_config_check(&cfg);
  judge *j = db_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->cfg = cfg;
  int C = cfg.width, T = cfg.context;
  param_set *ps = &j->ps;
  param_set_init(ps, ctx, "judge");
  j->i_wte = add2(ps, "wte", V, C, 0);
  j->i_wpe = add2(ps, "wpe", T, C, 0);
  j->i_layer = db_calloc((size_t)cfg.layers, sizeof *j->i_layer);
  for (int l = 0; l < cfg.layers; l++)
    for (int k = 0; k < L_NPARAMS; k++) {
      char name[64];
      snprintf(name, sizeof name, "h.%d.%s", l, layer_names[k]);
      int d0 = 0, d1 = 0;
      switch (k) {
      case L_LN1: case L_LN2: d0 = 2 * C; break;
      case L_QKV_W: d0 = 3 * C; d1 = C; break;
      case L_QKV_B: d0 = 3 * C; break;
      case L_PROJ_W: d0 = C; d1 = C; break;
      case L_PROJ_B: case L_FC2_B: d0 = C; break;
      case L_FC1_W: d0 = 4 * C; d1 = C; break;
      case L_FC1_B: d0 = 4 * C; break;
      case L_FC2_W: d0 = C; d1 = 4 * C; break;
      }
      int i = add2(ps, name, d0, d1, d1 != 0);
      if (k == 0) j->i_layer[l] = i;
    }
  j->i_lnf = add2(ps, "ln_f", 2 * C, 0, 0);
  j->i_head_w = add2(ps, "head.weight", V, C, 1);
  j->i_head_b = add2(ps, "head.bias", V, 0, 0);
  param_set_commit(ps);
  return j;
}

judge *judge_create(db_ctx *ctx, judge_config cfg, uint64_t seed) {
  judge *j = create(ctx, cfg);
  param_set *ps = &j->ps;
  float resid = 0.02f / sqrtf(2.0f * (float)cfg.layers);
  for (int i = 0; i < ps->n; i++) {
    db_tensor t = ps->p[i];
    uint64_t off = (uint64_t)i << 36; /* one Philox stream per tensor */
    const char *nm = ps->names[i];
    if (t.ndim == 1) db_zero(ctx, t);
    else if (i == j->i_wpe) db_rng_normal(ctx, t, seed, off, 0.0f, 0.01f);
    else if (strstr(nm, "proj.weight") || strstr(nm, "fc2.weight")) db_rng_normal(ctx, t, seed, off, 0.0f, resid);
    else db_rng_normal(ctx, t, seed, off, 0.0f, 0.02f);
  }
  return j;
}

static void acts_free(judge_acts *a) {
  if (a->arena) db_arena_free(a->arena);
  free(a->h);
  free(a->la);
  free(a->host_idx);
  free(a->host_tgt);
  free(a->host_loss);
  memset(a, 0, sizeof *a);
}

void judge_destroy(judge *j) {
  if (!j) return;
  acts_free(&j->a);
  param_set_free(&j->ps);
  free(j->i_layer);
  for (int i = 0; i < j->n_notes; i++) {
    free(j->note_k[i]);
    free(j->note_v[i]);
  }
  free(j);
}

judge_config judge_get_config(const judge *j) { return j->cfg; }
param_set *judge_params(judge *j) { return &j->ps; }

void judge_note(judge *j, const char *key, const char *value) {
  if (!strcmp(key, "format")) db_fail("judge_note: \"format\" is reserved");
  for (int i = 0; i < j->n_notes; i++)
    if (!strcmp(j->note_k[i], key)) {
      free(j->note_v[i]);
      j->note_v[i] = db_strdup(value);
      return;
    }
  if (j->n_notes == MAX_NOTES) db_fail("judge_note: at most %d notes", MAX_NOTES);
  j->note_k[j->n_notes] = db_strdup(key);
  j->note_v[j->n_notes++] = db_strdup(value);
}

const char *judge_get_note(const judge *j, const char *key) {
  for (int i = 0; i < j->n_notes; i++)
    if (!strcmp(j->note_k[i], key)) return j->note_v[i];
  return NULL;
}

/* Activations for batches of exactly B windows (callers pad). */
static judge_acts *ensure_acts(judge *j, int B, int training) {
  judge_acts *a = &j->a;
  if (a->arena && a->B == B && a->training >= training) return a;
  acts_free(a);
  db_ctx *ctx = j->ctx;
  int C = j->cfg.width, T = j->cfg.context, L = j->cfg.layers, NH = j->cfg.heads, N = B * T;
  a->B = B;
  a->training = training;
  a->arena = db_arena_new(ctx, "judge activations");
  db_arena *ar = a->arena;
  int sh[1] = {N};
  a->idx = db_alloc(ar, DB_I32, 1, sh);
  a->tgt = db_alloc(ar, DB_I32, 1, sh);
  a->h = db_calloc((size_t)L + 1, sizeof *a->h);
  a->la = db_calloc((size_t)L, sizeof *a->la);
  for (int l = 0; l <= L; l++) a->h[l] = db_new(ar, 2, N, C, 0, 0);
  for (int l = 0; l < L; l++) {
    layer_acts *s = &a->la[l];
    s->mean1 = db_new(ar, 1, N, 0, 0, 0);
    s->rstd1 = db_new(ar, 1, N, 0, 0, 0);
    s->a1 = db_new(ar, 2, N, C, 0, 0);
    s->qkv = db_new(ar, 2, N, 3 * C, 0, 0);
    s->lse = db_new(ar, 3, B, NH, T, 0);
    s->att = db_new(ar, 2, N, C, 0, 0);
    s->x1 = db_new(ar, 2, N, C, 0, 0);
    s->mean2 = db_new(ar, 1, N, 0, 0, 0);
    s->rstd2 = db_new(ar, 1, N, 0, 0, 0);
    s->a2 = db_new(ar, 2, N, C, 0, 0);
    s->f1 = db_new(ar, 2, N, 4 * C, 0, 0);
    s->g = db_new(ar, 2, N, 4 * C, 0, 0);
  }
  a->mf = db_new(ar, 1, N, 0, 0, 0);
  a->rf = db_new(ar, 1, N, 0, 0, 0);
  a->hf = db_new(ar, 2, N, C, 0, 0);
  a->logits = db_new(ar, 2, N, V, 0, 0);
  a->probs = db_new(ar, 2, N, V, 0, 0);
  a->losses = db_new(ar, 1, N, 0, 0, 0);
  a->host_idx = db_malloc(sizeof(int) * (size_t)N);
  a->host_tgt = db_malloc(sizeof(int) * (size_t)N);
  a->host_loss = db_malloc(sizeof(float) * (size_t)N);
  if (!training) return a;
  a->dlosses = db_new(ar, 1, N, 0, 0, 0);
  db_fill(ctx, a->dlosses, 1.0f / (float)N); /* the loss is the mean over every prediction */
  a->dlogits = db_new(ar, 2, N, V, 0, 0);
  a->dh = db_new(ar, 2, N, C, 0, 0);
  a->dhf = db_new(ar, 2, N, C, 0, 0);
  a->da = db_new(ar, 2, N, C, 0, 0);
  a->dqkv = db_new(ar, 2, N, 3 * C, 0, 0);
  a->datt = db_new(ar, 2, N, C, 0, 0);
  a->dg = db_new(ar, 2, N, 4 * C, 0, 0);
  a->dsum = db_new(ar, 3, B, NH, T, 0);
  return a;
}

/* inputs and targets in a->host_idx/host_tgt uploaded; losses computed */
static void forward(judge *j, judge_acts *a) {
  db_ctx *ctx = j->ctx;
  db_tensor *p = j->ps.p;
  int B = a->B, C = j->cfg.width, T = j->cfg.context, L = j->cfg.layers, NH = j->cfg.heads, N = B * T;
  size_t n = (size_t)N * C;
  embedding_forward(ctx, a->h[0], a->idx, p[j->i_wte], N, C, V);
  add_broadcast_forward(ctx, a->h[0], a->h[0], p[j->i_wpe], n, (size_t)T * C);
  for (int l = 0; l < L; l++) {
    const db_tensor *q = p + j->i_layer[l];
    layer_acts *s = &a->la[l];
    layernorm_modulate_forward(ctx, s->a1, s->mean1, s->rstd1, a->h[l], q[L_LN1], 0, C, 1, N, C, 2 * C, LN_EPS);
    linear_forward(ctx, s->qkv, s->a1, q[L_QKV_W], q[L_QKV_B], N, C, 3 * C);
    attention_forward(ctx, s->att, s->lse, s->qkv, DB_NULL, ATTN_CAUSAL, B, T, C, NH);
    linear_forward(ctx, s->x1, s->att, q[L_PROJ_W], q[L_PROJ_B], N, C, C);
    add_broadcast_forward(ctx, s->x1, s->x1, a->h[l], n, n);
    layernorm_modulate_forward(ctx, s->a2, s->mean2, s->rstd2, s->x1, q[L_LN2], 0, C, 1, N, C, 2 * C, LN_EPS);
    linear_forward(ctx, s->f1, s->a2, q[L_FC1_W], DB_NULL, N, C, 4 * C);
    bias_gelu_forward(ctx, s->g, s->f1, q[L_FC1_B], N, 4 * C);
    linear_forward(ctx, a->h[l + 1], s->g, q[L_FC2_W], q[L_FC2_B], N, 4 * C, C);
    add_broadcast_forward(ctx, a->h[l + 1], a->h[l + 1], s->x1, n, n);
  }
  layernorm_modulate_forward(ctx, a->hf, a->mf, a->rf, a->h[L], p[j->i_lnf], 0, C, 1, N, C, 2 * C, LN_EPS);
  linear_forward(ctx, a->logits, a->hf, p[j->i_head_w], p[j->i_head_b], N, C, V);
  crossentropy_forward(ctx, a->losses, a->probs, a->logits, a->tgt, N, V);
}

/* gradients of the mean loss over all N predictions, accumulated into j->ps.g */
static void backward(judge *j, judge_acts *a) {
  db_ctx *ctx = j->ctx;
  db_tensor *p = j->ps.p, *gr = j->ps.g;
  int B = a->B, C = j->cfg.width, T = j->cfg.context, L = j->cfg.layers, NH = j->cfg.heads, N = B * T;
  db_zero(ctx, a->dlogits);
  crossentropy_backward(ctx, a->dlogits, a->dlosses, a->probs, a->tgt, N, V);
  linear_backward(ctx, a->dhf, gr[j->i_head_w], gr[j->i_head_b], a->dlogits, a->hf, p[j->i_head_w], N, C, V,
                  LINEAR_DINP_SET);
  db_zero(ctx, a->dh);
  layernorm_modulate_backward(ctx, a->dh, gr[j->i_lnf], a->dhf, a->h[L], a->mf, a->rf, p[j->i_lnf], 0, C, 1, N, C,
                              2 * C);
  /* a->dh holds the gradient of h[l+1]; each layer turns it into that of h[l] in place */
  for (int l = L - 1; l >= 0; l--) {
    const db_tensor *q = p + j->i_layer[l];
    db_tensor *g = gr + j->i_layer[l];
    layer_acts *s = &a->la[l];
    linear_backward(ctx, a->dg, g[L_FC2_W], g[L_FC2_B], a->dh, s->g, q[L_FC2_W], N, 4 * C, C, LINEAR_DINP_SET);
    bias_gelu_backward_inplace(ctx, a->dg, s->f1, q[L_FC1_B], N, 4 * C);
    /* fc1 ran without bias: the gradient of its output is also the bias gradient's summand */
    linear_backward(ctx, a->da, g[L_FC1_W], g[L_FC1_B], a->dg, s->a2, q[L_FC1_W], N, C, 4 * C, LINEAR_DINP_SET);
    layernorm_modulate_backward(ctx, a->dh, g[L_LN2], a->da, s->x1, s->mean2, s->rstd2, q[L_LN2], 0, C, 1, N, C,
                                2 * C); /* a->dh is now the gradient of x1 */
    linear_backward(ctx, a->datt, g[L_PROJ_W], g[L_PROJ_B], a->dh, s->att, q[L_PROJ_W], N, C, C, LINEAR_DINP_SET);
    db_zero(ctx, a->dqkv);
    attention_backward(ctx, a->dqkv, a->dsum, a->datt, s->att, s->lse, s->qkv, DB_NULL, ATTN_CAUSAL, B, T, C, NH);
    linear_backward(ctx, a->da, g[L_QKV_W], g[L_QKV_B], a->dqkv, s->a1, q[L_QKV_W], N, C, 3 * C, LINEAR_DINP_SET);
    layernorm_modulate_backward(ctx, a->dh, g[L_LN1], a->da, a->h[l], s->mean1, s->rstd1, q[L_LN1], 0, C, 1, N, C,
                                2 * C);
  }
  embedding_backward(ctx, gr[j->i_wte], a->dh, a->idx, N, C, V);
  /* positions: the sum over the B windows of (T*C) rows */
  gemm_colsum_acc(ctx, gr[j->i_wpe], a->dh, B, T * C, T * C);
}

static double loss_sum(judge *j, judge_acts *a) {
  db_download(j->ctx, a->losses, a->host_loss);
  double s = 0;
  for (int i = 0; i < a->B * j->cfg.context; i++) s += a->host_loss[i];
  return s;
}

/* B windows of T+1 bytes -> inputs and targets on the device */
static void upload_windows(judge *j, judge_acts *a, const unsigned char *w, const size_t *starts) {
  int T = j->cfg.context;
  for (int b = 0; b < a->B; b++) {
    const unsigned char *s = starts ? w + starts[b] : w + (size_t)b * (T + 1);
    for (int t = 0; t < T; t++) {
      a->host_idx[b * T + t] = s[t];
      a->host_tgt[b * T + t] = s[t + 1];
    }
  }
  db_upload(j->ctx, a->idx, a->host_idx);
  db_upload(j->ctx, a->tgt, a->host_tgt);
}

double judge_loss(judge *j, const unsigned char *windows, int B, int do_backward) {
  if (B <= 0) db_fail("judge_loss: need at least one window, got %d", B);
  judge_acts *a = ensure_acts(j, B, do_backward ? 1 : 0);
  upload_windows(j, a, windows, NULL);
  forward(j, a);
  double loss = loss_sum(j, a) / ((double)B * j->cfg.context);
  if (do_backward) {
    param_set_alloc_training(&j->ps);
    param_set_zero_grads(&j->ps);
    backward(j, a);
  }
  return loss;
}

static uint64_t philox_u64(uint64_t seed, uint64_t i) {
  uint32_t o[4];
  db_philox4x32(seed, i, o);
  return (uint64_t)o[0] << 32 | o[1];
}

double judge_train(judge *j, const unsigned char *text, size_t n, int steps, int batch, double lr, uint64_t seed) {
  int T = j->cfg.context;
  if (!text || n < (size_t)T + 1)
    db_fail("judge_train: the text has %zu bytes, fewer than context + 1 = %d", text ? n : 0, T + 1);
  if (steps <= 0 || batch <= 0) db_fail("judge_train: need steps >= 1 and batch >= 1, got steps=%d batch=%d", steps, batch);
  param_set_alloc_training(&j->ps);
  judge_acts *a = ensure_acts(j, batch, 1);
  size_t *starts = db_malloc(sizeof(size_t) * (size_t)batch), span = n - (size_t)T; /* starts in [0, n-T-1] */
  int warmup = steps / 20 < 200 ? steps / 20 : 200;
  if (warmup < 1) warmup = 1;
  adamw_config ac = {.lr = (float)lr, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .clip = 1.0f};
  fprintf(stderr, "judge: width %d heads %d layers %d context %d, %zu parameters; %d steps of %d x %d bytes, lr %.2e\n",
          j->cfg.width, j->cfg.heads, j->cfg.layers, T, param_set_numel(&j->ps), steps, batch, T, lr);
  double t0 = db_now(), run = 0, tail = 0;
  int nrun = 0, ntail = 0, tail_from = steps - (steps + 9) / 10;
  for (int step = 0; step < steps; step++) {
    for (int b = 0; b < batch; b++) starts[b] = (size_t)(philox_u64(seed, (uint64_t)step * batch + b) % span);
    upload_windows(j, a, text, starts);
    forward(j, a);
    param_set_zero_grads(&j->ps);
    backward(j, a);
    double f = step < warmup ? (double)(step + 1) / warmup
                             : 0.1 + 0.9 * 0.5 * (1 + cos(M_PI * (double)(step - warmup) / (double)(steps - warmup)));
    ac.lr = (float)(lr * f);
    param_set_adamw(&j->ps, ac, step + 1);
    double l = loss_sum(j, a) / ((double)batch * T);
    run += l;
    nrun++;
    if (step >= tail_from) {
      tail += l;
      ntail++;
    }
    if ((step + 1) % 100 == 0 || step + 1 == steps) {
      double el = db_now() - t0;
      fprintf(stderr, "  step %5d/%d  loss %.4f nats (%.3f bits/byte)  lr %.2e  %.0f bytes/s  %.0f s\n", step + 1,
              steps, run / nrun, run / nrun / M_LN2, ac.lr, (double)(step + 1) * batch * T / el, el);
      run = 0;
      nrun = 0;
    }
  }
  free(starts);
  return tail / ntail;
}

/* ---------------------------------------------------------------- scoring */
typedef struct { int text; size_t start, lo, hi; } window; /* targets lo..hi (inclusive) scored */

double judge_bits_per_byte_n(judge *j, const unsigned char *const *texts, const size_t *lens, int n_texts, int from,
                             size_t *n_scored) {
  int T = j->cfg.context, stride = T / 2;
  if (n_texts < 0 || (n_texts && (!texts || !lens))) db_fail("judge_bits_per_byte: bad text list");
  if (from < 0) db_fail("judge_bits_per_byte: from = %d must be >= 0", from);
  /* the windows: start s covers inputs s..s+T-1 and targets s+1..s+T; the first
   * scores all its targets, each later one (s += T/2) those after the previous */
  size_t nw = 0, cap = 64, total = 0;
  window *w = db_malloc(sizeof *w * cap);
  for (int k = 0; k < n_texts; k++) {
    size_t len = lens[k], first = from > 1 ? (size_t)from : 1, done = 1; /* targets 1..done-1 are placed */
    if (len && !texts[k]) db_fail("judge_bits_per_byte: text %d is NULL with length %zu", k, len);
    for (size_t s = 0; done < len; s += (size_t)stride) {
      size_t lo = s + 1 > done ? s + 1 : done, hi = s + (size_t)T < len - 1 ? s + (size_t)T : len - 1;
      done = hi + 1;
      if (lo < first) lo = first;
      if (lo > hi) continue;
      if (nw == cap) w = db_realloc(w, sizeof *w * (cap *= 2));
      w[nw++] = (window){k, s, lo, hi};
      total += hi - lo + 1;
    }
  }
  if (!total) {
    free(w);
    db_fail("judge_bits_per_byte: no byte to score (%d texts, from = %d)", n_texts, from);
  }
  int B = j->a.arena ? j->a.B : nw < 16 ? (int)nw : 16; /* reuse the activations there are */
  judge_acts *a = ensure_acts(j, B, 0);
  double sum = 0;
  for (size_t w0 = 0; w0 < nw; w0 += (size_t)B) {
    for (int b = 0; b < B; b++) {
      int *ix = a->host_idx + (size_t)b * T, *tg = a->host_tgt + (size_t)b * T;
      for (int t = 0; t < T; t++) ix[t] = 0, tg[t] = -1;
      if (w0 + b >= nw) continue; /* padding window: nothing scored */
      const window *x = &w[w0 + b];
      const unsigned char *s = texts[x->text];
      size_t len = lens[x->text];
      for (int t = 0; t < T && x->start + t < len; t++) {
        size_t i = x->start + t;
        ix[t] = s[i];
        if (i + 1 >= x->lo && i + 1 <= x->hi) tg[t] = s[i + 1];
      }
    }
    db_upload(j->ctx, a->idx, a->host_idx);
    db_upload(j->ctx, a->tgt, a->host_tgt);
    forward(j, a);
    sum += loss_sum(j, a); /* ignored targets contribute 0 */
  }
  free(w);
  if (n_scored) *n_scored = total;
  return sum / (double)total / M_LN2;
}

double judge_bits_per_byte(judge *j, const unsigned char *const *texts, const size_t *lens, int n_texts, int from) {
  return judge_bits_per_byte_n(j, texts, lens, n_texts, from, NULL);
}

/* ---------------------------------------------------------------- files */
#define NKEYS 4
static const char *const keys[NKEYS] = {"width", "heads", "layers", "context"};

void judge_save(judge *j, const char *path) {
  param_set *ps = &j->ps;
  st_tensor_in *t = db_calloc((size_t)ps->n, sizeof *t);
  float **bufs = db_calloc((size_t)ps->n, sizeof *bufs);
  for (int i = 0; i < ps->n; i++) {
    bufs[i] = db_malloc(db_nbytes(ps->p[i]));
    db_download(j->ctx, ps->p[i], bufs[i]);
    t[i].name = ps->names[i];
    t[i].ndim = ps->p[i].ndim;
    for (int d = 0; d < 4; d++) t[i].shape[d] = d < ps->p[i].ndim ? ps->p[i].shape[d] : 0;
    t[i].data = bufs[i];
  }
  char v[NKEYS][32];
  int iv[NKEYS] = {j->cfg.width, j->cfg.heads, j->cfg.layers, j->cfg.context};
  const char *kv[2 * (1 + NKEYS + MAX_NOTES)];
  int nm = 0;
  kv[2 * nm] = "format";
  kv[2 * nm++ + 1] = JUDGE_FORMAT;
  for (int k = 0; k < NKEYS; k++) {
    snprintf(v[k], sizeof v[k], "%d", iv[k]);
    kv[2 * nm] = keys[k];
    kv[2 * nm++ + 1] = v[k];
  }
  for (int i = 0; i < j->n_notes; i++) {
    int clash = 0;
    for (int k = 0; k < NKEYS; k++) clash |= !strcmp(keys[k], j->note_k[i]);
    if (clash) continue;
    kv[2 * nm] = j->note_k[i];
    kv[2 * nm++ + 1] = j->note_v[i];
  }
  st_write(path, t, ps->n, kv, nm);
  for (int i = 0; i < ps->n; i++) free(bufs[i]);
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

judge *judge_load(db_ctx *ctx, const char *path) {
  st_file f = st_read(path); /* fails clearly on a missing or malformed file */
  char err[256] = "";
  judge_config g = {0};
  const char *fmt = st_meta(&f, "format");
  if (!fmt || strcmp(fmt, JUDGE_FORMAT))
    snprintf(err, sizeof err, "not a judge checkpoint (metadata \"format\" is %s%s%s, expected \"%s\")",
             fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "", JUDGE_FORMAT);
  int *fields[NKEYS] = {&g.width, &g.heads, &g.layers, &g.context};
  for (int k = 0; k < NKEYS && !err[0]; k++)
    if (!meta_int(&f, keys[k], fields[k])) snprintf(err, sizeof err, "metadata \"%s\" is missing or not an integer", keys[k]);
  char buf[160];
  if (!err[0] && config_error(&g, buf, sizeof buf)) snprintf(err, sizeof err, "bad configuration: %s", buf);
  if (err[0]) {
    st_free(&f);
    db_fail("checkpoint %s: %s", path, err);
  }
  judge *j = create(ctx, g);
  param_set *ps = &j->ps;
  for (int i = 0; i < ps->n && !err[0]; i++) {
    const st_tensor *t = st_find(&f, ps->names[i]);
    if (!t) {
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
    for (size_t k = 0; k < t->numel && ok; k++) ok = isfinite(t->data[k]);
    if (!ok) {
      snprintf(err, sizeof err, "tensor \"%s\" holds NaN or Inf", ps->names[i]);
      break;
    }
    db_upload(ctx, ps->p[i], t->data);
  }
  if (!err[0] && f.n != ps->n) snprintf(err, sizeof err, "%d tensors, expected %d", f.n, ps->n);
  for (int i = 0; i < f.n_meta && !err[0]; i++) {
    const char *k = f.meta_kv[2 * i];
    int cfgkey = !strcmp(k, "format");
    for (int q = 0; q < NKEYS; q++) cfgkey |= !strcmp(k, keys[q]);
    if (!cfgkey && j->n_notes < MAX_NOTES) judge_note(j, k, f.meta_kv[2 * i + 1]);
  }
  st_free(&f);
  if (err[0]) {
    judge_destroy(j);
    db_fail("checkpoint %s: %s", path, err);
  }
  return j;
}
