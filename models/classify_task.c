/* The classification task and block-wise prediction (classify_task.h). */
#include "classify_task.h"
#include "checkpoint.h"
#include "class_table.h"
#include "manifest.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROW_SIGMA, ROW_C_IN, ROW_C_NOISE, ROW_C_SKIP, ROW_C_OUT, ROW_W, ROW_W_MEAN, N_ROWS };

double classify_table_scale(const run_config *rc) {
  return rc->cls.label_scale > 0 ? rc->cls.label_scale : rc->edm.sigma_data * sqrt((double)rc->model.width);
}

float *classify_table_host(const run_config *rc) {
  int K = rc->model.n_classes, C = rc->model.width;
  float *E = db_malloc(sizeof(float) * (size_t)K * C);
  class_table_orthonormal(E, K, C, classify_table_scale(rc), CLS_TABLE_SEED);
  return E;
}

dcls_config classify_config_of(const run_config *rc) {
  const dit_config *m = &rc->model;
  return (dcls_config){m->img_h, m->img_w, m->patch, rc->cls.window ? rc->cls.window : m->patch, m->width, m->heads,
                       m->depth, m->n_classes, m->freq_dim};
}

typedef struct {
  db_ctx *ctx;
  const run_config *rc;
  const idx_dataset *ds;
  int N, img;
  db_arena *data_arena;
  db_tensor data, E;            /* (N, H*W) uint8: the training images' bytes; (K, C) the class table */
  dcls_block *nets;
  int *open;
  int **perm, *perm_epoch;
  db_arena *arena;              /* step buffers */
  dcls_acts acts;
  db_tensor y, eps, z, ones, coef, idx, lab, probs, losses, wlosses, dlogits;
  db_tensor images;             /* (B, H*W) float: the batch's images, gathered from data */
  float *ring_f;                /* TRAIN_RING x N_ROWS x B */
  int *ring_i;                  /* TRAIN_RING x 2B: idx, labels */
  train_task task;
} classify_task;

static classify_task *self_of(train_task *t) { return (classify_task *)t->self; }

/* Fisher-Yates order of `epoch` for `block`, from Philox (as image_task.c). */
static void epoch_perm(classify_task *ct, int block, int epoch) {
  if (ct->perm[block] && ct->perm_epoch[block] == epoch) return;
  int N = ct->N, *perm = ct->perm[block];
  if (!perm) perm = ct->perm[block] = db_malloc((size_t)N * sizeof *perm);
  for (int i = 0; i < N; i++) perm[i] = i;
  uint32_t w[4];
  uint64_t stream = ((uint64_t)block << 40) | ((uint64_t)epoch << 20);
  for (int i = N - 1; i > 0; i--) {
    int k = N - 1 - i;
    if (k % 4 == 0) db_philox4x32(train_key(ct->rc->seed, TAG_DATA), stream + (uint64_t)k / 4, w);
    int j = (int)((uint64_t)w[k % 4] * (uint64_t)(i + 1) >> 32);
    int tmp = perm[i]; perm[i] = perm[j]; perm[j] = tmp;
  }
  ct->perm_epoch[block] = epoch;
}

static param_set *block_open(train_task *t, int block) {
  classify_task *ct = self_of(t);
  char name[32];
  snprintf(name, sizeof name, "block %d", block);
  dcls_block_create(ct->ctx, &ct->nets[block], classify_config_of(ct->rc), name);
  dcls_block_init(ct->ctx, &ct->nets[block], train_key(ct->rc->seed, TAG_INIT), (uint64_t)block);
  ct->open[block] = 1;
  return &ct->nets[block].ps;
}

static void block_close(train_task *t, int block) {
  classify_task *ct = self_of(t);
  if (!ct->open[block]) return;
  dcls_block_destroy(&ct->nets[block]);
  ct->open[block] = 0;
  free(ct->perm[block]);
  ct->perm[block] = NULL;
}

static void buffers_alloc(train_task *t, int block) {
  classify_task *ct = self_of(t);
  int B = t->batch, C = ct->rc->model.width, K = ct->rc->model.n_classes; /* this process's slice (train.h) */
  ct->arena = db_arena_new(ct->ctx, "training batch");
  db_arena *a = ct->arena;
  ct->y = db_new(a, 2, B, C, 0, 0);
  ct->eps = db_new(a, 2, B, C, 0, 0);
  ct->z = db_new(a, 2, B, C, 0, 0);
  ct->ones = db_new(a, 1, B, 0, 0, 0);
  db_fill(ct->ctx, ct->ones, 1.0f);
  ct->coef = db_new(a, 2, N_ROWS, B, 0, 0);
  ct->idx = db_alloc(a, DB_I32, 1, (int[]){B});
  ct->lab = db_alloc(a, DB_I32, 1, (int[]){B});
  ct->probs = db_new(a, 2, B, K, 0, 0);
  ct->losses = db_new(a, 1, B, 0, 0, 0);
  ct->wlosses = db_new(a, 1, B, 0, 0, 0);
  ct->dlogits = db_new(a, 2, B, K, 0, 0);
  ct->images = db_new(a, 2, B, ct->img, 0, 0);
  dcls_acts_alloc(ct->ctx, &ct->acts, &ct->nets[block], B, 1);
  ct->ring_f = db_malloc(db_mul_size((size_t)TRAIN_RING * N_ROWS, (size_t)B * sizeof(float), "staging ring"));
  ct->ring_i = db_malloc(db_mul_size((size_t)TRAIN_RING * 2, (size_t)B * sizeof(int), "staging ring"));
}

static void buffers_free(train_task *t) {
  classify_task *ct = self_of(t);
  dcls_acts_free(&ct->acts);
  db_arena_free(ct->arena);
  ct->arena = NULL;
  free(ct->ring_f);
  free(ct->ring_i);
  ct->ring_f = NULL;
  ct->ring_i = NULL;
}

/* Host part: the batch's rows and labels, σ from the block's training range,
 * the EDM coefficients and the loss weights w(σ) and w(σ)/B. */
static void stage(train_task *t, int block, int step, int slot, sigma_stats *sig) {
  classify_task *ct = self_of(t);
  const run_config *rc = ct->rc;
  int B = t->batch;
  float *f = ct->ring_f + (size_t)slot * N_ROWS * B;
  int *ix = ct->ring_i + (size_t)slot * 2 * B, *lb = ix + B;
  uint64_t sample0 = (uint64_t)step * (uint64_t)rc->batch + (uint64_t)t->batch_offset; /* global sample numbers */
  for (int i = 0; i < B; i++) {
    uint64_t s = sample0 + (uint64_t)i;
    epoch_perm(ct, block, (int)(s / (uint64_t)ct->N));
    ix[i] = ct->perm[block][s % (uint64_t)ct->N];
    lb[i] = ct->ds->labels[ix[i]];
  }
  double lo, hi;
  edm_block_train_range(rc->edm, rc->bounds, rc->blocks, block, rc->gamma, &lo, &hi);
  uint64_t sig_off = ((uint64_t)block << 44) + sample0 / 4;
  if (rc->cls.sigma_law == SIGMA_LAW_LOGNORMAL)
    edm_sample_sigmas(rc->edm, lo, hi, train_key(rc->seed, TAG_SIGMA), sig_off, B, f + (size_t)ROW_SIGMA * B);
  else {
    uint32_t w[4];
    for (int i = 0; i < B; i++) {
      if (i % 4 == 0) db_philox4x32(train_key(rc->seed, TAG_SIGMA), sig_off + (uint64_t)i / 4, w);
      f[(size_t)ROW_SIGMA * B + i] = (float)exp(log(lo) + db_u01(w[i % 4]) * (log(hi) - log(lo)));
    }
  }
  for (int i = 0; i < B; i++) {
    double s = f[(size_t)ROW_SIGMA * B + i];
    edm_precond pc = edm_preconditioning(rc->edm, s);
    double w = edm_loss_weight(rc->edm, s);
    f[(size_t)ROW_C_IN * B + i] = (float)pc.c_in;
    f[(size_t)ROW_C_NOISE * B + i] = (float)pc.c_noise;
    f[(size_t)ROW_C_SKIP * B + i] = (float)pc.c_skip;
    f[(size_t)ROW_C_OUT * B + i] = (float)pc.c_out;
    f[(size_t)ROW_W * B + i] = (float)w;
    f[(size_t)ROW_W_MEAN * B + i] = (float)(w / rc->batch); /* the mean over the WHOLE batch (replicas sum) */
    sigma_stats_add(sig, s);
  }
  db_upload_async(ct->ctx, ct->coef, f);
  db_upload_async(ct->ctx, ct->idx, ix);
  db_upload_async(ct->ctx, ct->lab, lb);
}

static db_tensor coef_row(classify_task *ct, int k) {
  return db_view(ct->coef, (size_t)k * ct->task.batch, 1, (int[]){ct->task.batch});
}

/* Device part: y = E[label], z = y + σ ε, logits = the block, loss = Σ w(σ) CE
 * over the batch (the driver divides by B), and its backward. */
static void forward_backward(train_task *t, int block, int step, db_tensor loss) {
  classify_task *ct = self_of(t);
  db_ctx *ctx = ct->ctx;
  const run_config *rc = ct->rc;
  int B = t->batch, C = rc->model.width, K = rc->model.n_classes;
  dcls_block *net = &ct->nets[block];
  embedding_forward(ctx, ct->y, ct->lab, ct->E, B, C, K);
  /* the noise of the whole batch's step, from this slice's first element on (a multiple of 4: train.c) */
  uint64_t per_step = ((uint64_t)rc->batch * (uint64_t)C + 3) / 4;
  uint64_t slice = (uint64_t)t->batch_offset * (uint64_t)C / 4;
  db_rng_normal(ctx, ct->eps, train_key(rc->seed, TAG_NOISE), ((uint64_t)block << 48) + (uint64_t)step * per_step + slice,
                0.0f, 1.0f);
  rowscale_add_forward(ctx, ct->z, ct->ones, ct->y, coef_row(ct, ROW_SIGMA), ct->eps, B, C);
  /* the batch's images, bytes -> floats exactly as data/idx.h maps them; the block reads rows 0..B-1 */
  gather_bytes_forward(ctx, ct->images, ct->idx, ct->data, B, ct->img, ct->N, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT);
  dcls_inputs in = {ct->images, DB_NULL, B, ct->z, coef_row(ct, ROW_C_IN), coef_row(ct, ROW_C_NOISE),
                    coef_row(ct, ROW_C_SKIP), coef_row(ct, ROW_C_OUT)};
  dcls_block_forward(ctx, net, &ct->acts, &in);
  crossentropy_forward(ctx, ct->losses, ct->probs, ct->acts.logits, ct->lab, B, K);
  rowscale_add_forward(ctx, ct->wlosses, DB_NULL, DB_NULL, coef_row(ct, ROW_W), ct->losses, B, 1);
  reduce_sum(ctx, loss, ct->wlosses, (size_t)B);
  db_zero(ctx, ct->dlogits);
  crossentropy_backward(ctx, ct->dlogits, coef_row(ct, ROW_W_MEAN), ct->probs, ct->lab, B, K);
  dcls_block_backward(ctx, net, &ct->acts, &in, ct->dlogits);
}

static int checkpoint_meta(train_task *t, const char **kv, int max_pairs, char *buf, size_t n) {
  classify_task *ct = self_of(t);
  if (max_pairs < 2 || n < 32) return 0;
  snprintf(buf, n / 2, "%d", ct->rc->model.depth);
  snprintf(buf + n / 2, n / 2, "%d", ct->rc->model.width);
  kv[0] = "layers"; kv[1] = buf;
  kv[2] = "width"; kv[3] = buf + n / 2;
  return 2;
}

static void check_dataset(const run_config *rc, const idx_dataset *ds, const char *name) {
  if (ds->n <= 0) db_fail("dataset %s has no images", name);
  if (ds->rows != rc->model.img_h || ds->cols != rc->model.img_w)
    db_fail("dataset %s has %dx%d images, the model expects %dx%d", name, ds->rows, ds->cols, rc->model.img_h,
            rc->model.img_w);
  for (int i = 0; i < ds->n; i++)
    if (ds->labels[i] >= rc->model.n_classes)
      db_fail("dataset %s: image %d has label %d, the model has %d classes", name, i, ds->labels[i], rc->model.n_classes);
}

train_task *classify_task_create(db_ctx *ctx, const run_config *rc, const idx_dataset *ds, const char *ds_name) {
  if (rc->task != TASK_CLASSIFY) db_fail("classify task: the run configuration is not a classifier's");
  check_dataset(rc, ds, ds_name);
  if (rc->model.in_ch != 1) db_fail("dataset %s: grayscale images, the model expects %d channels", ds_name, rc->model.in_ch);
  if (!ds->pixels) db_fail("dataset %s has no pixel bytes (idx_pixels_from_images makes them from float images)", ds_name);
  dcls_config cfg = classify_config_of(rc);
  dcls_config_check(&cfg);
  classify_task *ct = db_calloc(1, sizeof *ct);
  ct->ctx = ctx;
  ct->rc = rc;
  ct->ds = ds;
  ct->N = ds->n;
  ct->img = ds->rows * ds->cols;
  ct->data_arena = db_arena_new(ctx, "dataset");
  ct->data = db_alloc(ct->data_arena, DB_U8, 2, (int[]){ct->N, ct->img}); /* a quarter of float32 */
  db_upload(ctx, ct->data, ds->pixels);
  ct->E = db_new(ct->data_arena, 2, rc->model.n_classes, rc->model.width, 0, 0);
  float *E = classify_table_host(rc);
  db_upload(ctx, ct->E, E);
  free(E);
  ct->nets = db_calloc((size_t)rc->blocks, sizeof *ct->nets);
  ct->open = db_calloc((size_t)rc->blocks, sizeof *ct->open);
  ct->perm = db_calloc((size_t)rc->blocks, sizeof *ct->perm);
  ct->perm_epoch = db_calloc((size_t)rc->blocks, sizeof *ct->perm_epoch);
  ct->task = (train_task){"classify", ct, rc->batch, "images", block_open, block_close, buffers_alloc, buffers_free,
                          stage, forward_backward, checkpoint_meta, 0};
  return &ct->task;
}

void classify_task_destroy(train_task *t) {
  if (!t) return;
  classify_task *ct = self_of(t);
  for (int b = 0; b < ct->rc->blocks; b++) block_close(t, b);
  if (ct->arena) buffers_free(t);
  db_arena_free(ct->data_arena);
  free(ct->nets); free(ct->open); free(ct->perm); free(ct->perm_epoch);
  free(ct);
}

size_t classify_task_dataset_bytes(const train_task *t) {
  return db_arena_bytes(((classify_task *)t->self)->data_arena);
}

train_result classify_train(db_ctx *ctx, const train_opts *o, const char *data_dir, size_t *dataset_bytes) {
  idx_dataset ds = idx_load(data_dir, "train");
  train_task *task = classify_task_create(ctx, &o->rc, &ds, data_dir ? data_dir : idx_default_dir());
  train_result res = train_run(ctx, o, task);
  if (dataset_bytes) *dataset_bytes = classify_task_dataset_bytes(task);
  classify_task_destroy(task);
  idx_free(&ds);
  return res;
}

/* ---------------------------------------------------------------- prediction */
#define EVAL_BATCH 250

/* softmax(logits)·E for n rows, and the argmax of each row */
static void denoised_labels(const float *logits, const float *E, int n, int K, int C, float *D, int *arg) {
  for (int i = 0; i < n; i++) {
    const float *l = logits + (size_t)i * K;
    int best = 0;
    for (int k = 1; k < K; k++)
      if (l[k] > l[best]) best = k;
    arg[i] = best;
    double p[1024], s = 0;
    for (int k = 0; k < K; k++) s += p[k] = exp((double)l[k] - l[best]);
    for (int c = 0; c < C; c++) {
      double d = 0;
      for (int k = 0; k < K; k++) d += p[k] * E[(size_t)k * C + c];
      D[(size_t)i * C + c] = (float)(d / s);
    }
  }
}

classify_result classify_evaluate(db_ctx *ctx, const char *run_dir, const idx_dataset *ds, uint64_t seed, int *pred) {
  run_config rc;
  manifest_read(run_dir, &rc);
  if (rc.task != TASK_CLASSIFY)
    db_fail("%s/manifest.json: a%s %s run, not a classifier (use dblocks %s)", run_dir, rc.task == TASK_IMAGE ? "n" : "",
            task_name(rc.task), rc.task == TASK_LM ? "lm-eval" : "eval");
  check_dataset(&rc, ds, "for prediction");
  if (rc.model.n_classes > 1024) db_fail("classify: at most 1024 classes in prediction, the run has %d", rc.model.n_classes);
  for (int b = 0; b < rc.blocks; b++)
    if (block_validate(run_dir, b) < 0) {
      char file[1024];
      block_file(file, sizeof file, run_dir, b);
      db_fail("%s: missing (block %d of %d has not been trained)", file, b, rc.blocks);
    }
  classify_result r = {0};
  r.blocks = rc.blocks;
  double t0 = db_now();
  size_t peak0 = db_peak_bytes();
  db_reset_peak();
  int n = ds->n, K = rc.model.n_classes, C = rc.model.width, B = EVAL_BATCH, img = ds->rows * ds->cols;
  float *E = classify_table_host(&rc), *z = db_malloc(sizeof(float) * (size_t)n * C);
  float *logits = db_malloc(sizeof(float) * (size_t)B * K), *D = db_malloc(sizeof(float) * (size_t)B * C);
  float *coef = db_malloc(sizeof(float) * 5 * (size_t)B);
  int *arg = db_malloc(sizeof(int) * (size_t)n), *bidx = db_malloc(sizeof(int) * (size_t)B);
  db_rng_normal_host(z, (size_t)n * C, seed, 0);
  double smax = rc.bounds[rc.blocks];
  for (size_t i = 0; i < (size_t)n * C; i++) z[i] = (float)(smax * z[i]);
  db_arena *data = db_arena_new(ctx, "images to classify");
  db_tensor images = db_new(data, 2, n, img, 0, 0);
  db_upload(ctx, images, ds->images);
  for (int blk = 0; blk < rc.blocks; blk++) {
    double s = rc.bounds[rc.blocks - blk], s_next = rc.bounds[rc.blocks - blk - 1];
    if (blk == rc.blocks - 1) s_next = 0; /* the last step's z is not used: only its logits */
    dcls_block net;
    char name[32];
    snprintf(name, sizeof name, "block %d", blk);
    dcls_block_create(ctx, &net, classify_config_of(&rc), name);
    block_load(ctx, run_dir, blk, &net.ps);
    dcls_acts a;
    dcls_acts_alloc(ctx, &a, &net, B, 0);
    db_arena *io = db_arena_new(ctx, "prediction batch");
    db_tensor tz = db_new(io, 2, B, C, 0, 0), tc = db_new(io, 2, 5, B, 0, 0);
    db_tensor tidx = db_alloc(io, DB_I32, 1, (int[]){B});
    edm_precond pc = edm_preconditioning(rc.edm, s);
    float v[4] = {(float)pc.c_in, (float)pc.c_noise, (float)pc.c_skip, (float)pc.c_out};
    for (int k = 0; k < 4; k++)
      for (int i = 0; i < B; i++) coef[(size_t)k * B + i] = v[k];
    db_upload(ctx, tc, coef);
    int ok = 0;
    for (int s0 = 0; s0 < n; s0 += B) {
      int m = n - s0 < B ? n - s0 : B;
      for (int i = 0; i < B; i++) bidx[i] = s0 + (i < m ? i : m - 1); /* a short last batch repeats its last image */
      db_upload(ctx, tidx, bidx);
      float *zb = z + (size_t)s0 * C;
      if (m == B) db_upload(ctx, tz, zb);
      else {
        float *pad = db_calloc((size_t)B * C, sizeof *pad);
        memcpy(pad, zb, sizeof(float) * (size_t)m * C);
        db_upload(ctx, tz, pad);
        free(pad);
      }
      dcls_inputs in = {images, tidx, n, tz, db_view(tc, 0, 1, (int[]){B}), db_view(tc, (size_t)B, 1, (int[]){B}),
                        db_view(tc, 2 * (size_t)B, 1, (int[]){B}), db_view(tc, 3 * (size_t)B, 1, (int[]){B})};
      dcls_block_forward(ctx, &net, &a, &in);
      db_download(ctx, a.logits, logits);
      denoised_labels(logits, E, m, K, C, D, arg + s0);
      /* Euler: z' = z + (σ_next − σ)(z − D)/σ = a z + (1 − a) D, a = σ_next/σ */
      double ra = s_next / s;
      for (size_t i = 0; i < (size_t)m * C; i++) zb[i] = (float)(ra * zb[i] + (1 - ra) * D[i]);
      for (int i = 0; i < m; i++) ok += arg[s0 + i] == ds->labels[s0 + i];
    }
    r.block_accuracy[blk] = (double)ok / n;
    db_arena_free(io);
    dcls_acts_free(&a);
    dcls_block_destroy(&net);
  }
  r.accuracy = r.block_accuracy[rc.blocks - 1];
  if (pred) memcpy(pred, arg, sizeof(int) * (size_t)n);
  db_arena_free(data);
  r.peak_bytes = db_peak_bytes();
  db_restore_peak(peak0 > r.peak_bytes ? peak0 : r.peak_bytes); /* the process's peak stays a peak */
  r.seconds = db_now() - t0;
  free(E); free(z); free(logits); free(D); free(coef); free(arg); free(bidx);
  return r;
}
