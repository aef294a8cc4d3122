/* The image task: what one DiffusionBlocks training step computes for a DiT
 * denoiser block on images (image_task.h). */
#include "image_task.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  db_ctx *ctx;
  const run_config *rc;
  const idx_dataset *ds;
  int N, img;                  /* dataset size, values per image */
  db_arena *data_arena;
  db_tensor data;              /* (N, img) uint8: the training images' bytes, resident on the device */
  dit_block *nets;             /* (blocks) the resident ones created */
  int *open;
  int **perm, *perm_epoch;     /* per block: the data order of its current epoch */
  /* step buffers (one set, shared by resident blocks) */
  db_arena *arena;
  dit_acts acts;
  db_tensor y, eps, z, ones, coef, idx, lab, losses, dlosses, dD;
  float *ring_f;               /* TRAIN_RING x 6B floats: sigma, c_in, c_noise, c_skip, c_out, weight */
  int *ring_i;                 /* TRAIN_RING x 2B ints: idx, labels */
  train_task task;
} image_task;

static image_task *self_of(train_task *t) { return (image_task *)t->self; }

/* ---------------------------------------------------------------- data order */
static void epoch_perm(image_task *it, int block, int epoch) {
  if (it->perm[block] && it->perm_epoch[block] == epoch) return;
  int N = it->N, *perm = it->perm[block];
  if (!perm) perm = it->perm[block] = db_malloc((size_t)N * sizeof *perm);
  for (int i = 0; i < N; i++) perm[i] = i;
  uint32_t w[4];
  uint64_t stream = ((uint64_t)block << 40) | ((uint64_t)epoch << 20);
  for (int i = N - 1; i > 0; i--) { /* Fisher-Yates, one Philox word per swap */
    int k = N - 1 - i;
    if (k % 4 == 0) db_philox4x32(train_key(it->rc->seed, TAG_DATA), stream + (uint64_t)k / 4, w);
    int j = (int)((uint64_t)w[k % 4] * (uint64_t)(i + 1) >> 32);
    int tmp = perm[i]; perm[i] = perm[j]; perm[j] = tmp;
  }
  it->perm_epoch[block] = epoch;
}

/* ---------------------------------------------------------------- blocks */
static param_set *block_open(train_task *t, int block) {
  image_task *it = self_of(t);
  char name[32];
  snprintf(name, sizeof name, "block %d", block);
  dit_block_create(it->ctx, &it->nets[block], it->rc->model, name);
  dit_block_init(it->ctx, &it->nets[block], train_key(it->rc->seed, TAG_INIT), (uint64_t)block);
  it->open[block] = 1;
  return &it->nets[block].ps;
}

static void block_close(train_task *t, int block) {
  image_task *it = self_of(t);
  if (!it->open[block]) return;
  dit_block_destroy(&it->nets[block]);
  it->open[block] = 0;
  free(it->perm[block]);
  it->perm[block] = NULL;
}

static void buffers_alloc(train_task *t, int block) {
  image_task *it = self_of(t);
  int B = t->batch, img = it->img; /* this process's slice of the batch (train.h) */
  it->arena = db_arena_new(it->ctx, "training batch");
  it->y = db_new(it->arena, 2, B, img, 0, 0);
  it->eps = db_new(it->arena, 2, B, img, 0, 0);
  it->z = db_new(it->arena, 2, B, img, 0, 0);
  it->dD = db_new(it->arena, 2, B, img, 0, 0);
  it->ones = db_new(it->arena, 1, B, 0, 0, 0);
  db_fill(it->ctx, it->ones, 1.0f);
  it->coef = db_new(it->arena, 2, 6, B, 0, 0);
  it->idx = db_alloc(it->arena, DB_I32, 1, (int[]){B});
  it->lab = db_alloc(it->arena, DB_I32, 1, (int[]){B});
  it->losses = db_new(it->arena, 1, B, 0, 0, 0);
  it->dlosses = db_new(it->arena, 1, B, 0, 0, 0);
  db_fill(it->ctx, it->dlosses, 1.0f / (float)it->rc->batch); /* loss = mean over the WHOLE batch (replicas sum) */
  dit_acts_alloc(it->ctx, &it->acts, &it->nets[block], B, 1);
  it->ring_f = db_malloc(db_mul_size((size_t)TRAIN_RING * 6, (size_t)B * sizeof(float), "staging ring"));
  it->ring_i = db_malloc(db_mul_size((size_t)TRAIN_RING * 2, (size_t)B * sizeof(int), "staging ring"));
}

static void buffers_free(train_task *t) {
  image_task *it = self_of(t);
  dit_acts_free(&it->acts);
  db_arena_free(it->arena);
  it->arena = NULL;
  free(it->ring_f);
  free(it->ring_i);
  it->ring_f = NULL;
  it->ring_i = NULL;
}

/* ---------------------------------------------------------------- one step */
/* Host part: batch indices, labels with dropout, σ and the EDM coefficients,
 * written into ring slot `slot` and uploaded without blocking. */
static void stage(train_task *t, int block, int step, int slot, sigma_stats *sig) {
  image_task *it = self_of(t);
  const run_config *rc = it->rc;
  int B = t->batch;
  float *f = it->ring_f + (size_t)slot * 6 * B;
  int *ix = it->ring_i + (size_t)slot * 2 * B, *lb = ix + B;
  uint64_t sample0 = (uint64_t)step * (uint64_t)rc->batch + (uint64_t)t->batch_offset; /* global sample numbers */
  uint32_t w[4];
  for (int i = 0; i < B; i++) {
    uint64_t s = sample0 + (uint64_t)i;
    epoch_perm(it, block, (int)(s / (uint64_t)it->N));
    ix[i] = it->perm[block][s % (uint64_t)it->N];
    if (i % 4 == 0) db_philox4x32(train_key(rc->seed, TAG_DROP), ((uint64_t)block << 44) + s / 4, w);
    lb[i] = db_u01(w[i % 4]) < rc->label_dropout ? rc->model.n_classes : it->ds->labels[ix[i]];
  }
  double lo, hi;
  edm_block_train_range(rc->edm, rc->bounds, rc->blocks, block, rc->gamma, &lo, &hi);
  edm_sample_sigmas(rc->edm, lo, hi, train_key(rc->seed, TAG_SIGMA), ((uint64_t)block << 44) + sample0 / 4, B, f);
  for (int i = 0; i < B; i++) {
    double s = f[i];
    edm_precond pc = edm_preconditioning(rc->edm, s);
    f[B + i] = (float)pc.c_in;
    f[2 * B + i] = (float)pc.c_noise;
    f[3 * B + i] = (float)pc.c_skip;
    f[4 * B + i] = (float)pc.c_out;
    f[5 * B + i] = (float)edm_loss_weight(rc->edm, s);
    sigma_stats_add(sig, s);
  }
  /* the ring slot stays untouched until the driver's next loss read: safe without waiting */
  db_upload_async(it->ctx, it->coef, f);
  db_upload_async(it->ctx, it->idx, ix);
  db_upload_async(it->ctx, it->lab, lb);
}

static db_tensor coef_row(image_task *it, int k) {
  return db_view(it->coef, (size_t)k * it->task.batch, 1, (int[]){it->task.batch});
}

/* Device part: z = y + σ ε, D = the block's denoiser, loss = Σ w(σ)‖D - y‖²/n
 * over the batch, and its backward; everything stays on the device. */
static void forward_backward(train_task *t, int block, int step, db_tensor loss) {
  image_task *it = self_of(t);
  db_ctx *ctx = it->ctx;
  const run_config *rc = it->rc;
  int B = t->batch;
  dit_block *net = &it->nets[block];
  /* gather the batch, bytes -> floats exactly as data/idx.h maps them */
  gather_bytes_forward(ctx, it->y, it->idx, it->data, B, it->img, it->N, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT);
  /* the noise of the whole batch's step, from this slice's first element on (a multiple of 4: train.c) */
  uint64_t per_step = ((uint64_t)rc->batch * (uint64_t)it->img + 3) / 4;
  uint64_t slice = (uint64_t)t->batch_offset * (uint64_t)it->img / 4;
  db_rng_normal(ctx, it->eps, train_key(rc->seed, TAG_NOISE), ((uint64_t)block << 48) + (uint64_t)step * per_step + slice,
                0.0f, 1.0f);
  rowscale_add_forward(ctx, it->z, it->ones, it->y, coef_row(it, 0), it->eps, B, it->img); /* z = y + σ ε */
  dit_inputs in = {it->z, coef_row(it, 1), coef_row(it, 2), coef_row(it, 3), coef_row(it, 4), it->lab};
  dit_block_forward(ctx, net, &it->acts, &in);
  weighted_mse_forward(ctx, it->losses, it->acts.D, it->y, coef_row(it, 5), B, it->img);
  reduce_sum(ctx, loss, it->losses, (size_t)B);
  db_zero(ctx, it->dD);
  weighted_mse_backward(ctx, it->dD, it->dlosses, it->acts.D, it->y, coef_row(it, 5), B, it->img);
  dit_block_backward(ctx, net, &it->acts, &in, it->dD);
}

static int checkpoint_meta(train_task *t, const char **kv, int max_pairs, char *buf, size_t n) {
  image_task *it = self_of(t);
  if (max_pairs < 2 || n < 32) return 0;
  snprintf(buf, n / 2, "%d", it->rc->model.depth);
  snprintf(buf + n / 2, n / 2, "%d", it->rc->model.width);
  kv[0] = "layers"; kv[1] = buf;
  kv[2] = "width"; kv[3] = buf + n / 2;
  return 2;
}

/* ---------------------------------------------------------------- the task */
train_task *image_task_create(db_ctx *ctx, const run_config *rc, const idx_dataset *ds, const char *ds_name) {
  if (ds->rows != rc->model.img_h || ds->cols != rc->model.img_w)
    db_fail("dataset %s has %dx%d images, the model expects %dx%d", ds_name, ds->rows, ds->cols, rc->model.img_h,
            rc->model.img_w);
  if (ds->n_classes > rc->model.n_classes) db_fail("dataset %s has %d classes, the model %d", ds_name, ds->n_classes, rc->model.n_classes);
  if (rc->model.in_ch != 1) db_fail("dataset %s: grayscale images, the model expects %d channels", ds_name, rc->model.in_ch);
  if (!ds->pixels) db_fail("dataset %s has no pixel bytes (idx_pixels_from_images makes them from float images)", ds_name);
  image_task *it = db_calloc(1, sizeof *it);
  it->ctx = ctx;
  it->rc = rc;
  it->ds = ds;
  it->N = ds->n;
  it->img = ds->rows * ds->cols;
  it->data_arena = db_arena_new(ctx, "dataset");
  it->data = db_alloc(it->data_arena, DB_U8, 2, (int[]){it->N, it->img}); /* a quarter of float32 */
  db_upload(ctx, it->data, ds->pixels);
  it->nets = db_calloc((size_t)rc->blocks, sizeof *it->nets);
  it->open = db_calloc((size_t)rc->blocks, sizeof *it->open);
  it->perm = db_calloc((size_t)rc->blocks, sizeof *it->perm);
  it->perm_epoch = db_calloc((size_t)rc->blocks, sizeof *it->perm_epoch);
  it->task = (train_task){"image", it, rc->batch, NULL, block_open, block_close, buffers_alloc, buffers_free, stage,
                          forward_backward, checkpoint_meta, 0};
  return &it->task;
}

void image_task_destroy(train_task *t) {
  if (!t) return;
  image_task *it = self_of(t);
  for (int b = 0; b < it->rc->blocks; b++) block_close(t, b);
  if (it->arena) buffers_free(t);
  db_arena_free(it->data_arena);
  free(it->nets); free(it->open); free(it->perm); free(it->perm_epoch);
  free(it);
}

size_t image_task_dataset_bytes(const train_task *t) { return db_arena_bytes(((image_task *)t->self)->data_arena); }

idx_dataset image_synthetic_dataset(int n, int rows, int cols, int classes, uint64_t seed) {
  idx_dataset ds = {0};
  ds.n = n;
  ds.rows = rows;
  ds.cols = cols;
  ds.n_classes = classes;
  ds.images = db_malloc(db_mul_size((size_t)n * rows, (size_t)cols * sizeof(float), "synthetic images"));
  ds.labels = db_malloc((size_t)n);
  db_rng_uniform_host(ds.images, (size_t)n * rows * cols, seed, 0, -1.0f, 1.0f);
  idx_pixels_from_images(&ds); /* onto the byte grid, as real images are */
  for (int i = 0; i < n; i++) ds.labels[i] = (uint8_t)(i % classes);
  return ds;
}

train_result image_train(db_ctx *ctx, const train_opts *o, const char *data_dir, size_t *dataset_bytes) {
  idx_dataset ds = idx_load(data_dir, "train");
  train_task *task = image_task_create(ctx, &o->rc, &ds, data_dir ? data_dir : idx_default_dir());
  train_result res = train_run(ctx, o, task);
  if (dataset_bytes) *dataset_bytes = image_task_dataset_bytes(task);
  image_task_destroy(task);
  idx_free(&ds);
  return res;
}
