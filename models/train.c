#include "train.h"
#include "../data/idx.h"
#include "../data/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Philox key tags: every random decision is a pure function of (seed, block,
 * step), so a resumed run draws exactly what the uninterrupted run drew. */
enum { TAG_DATA = 1, TAG_DROP = 2, TAG_SIGMA = 3, TAG_NOISE = 4, TAG_SCHED = 5, TAG_INIT = 6 };
static uint64_t key(uint64_t seed, int tag) { return seed ^ ((uint64_t)tag << 56); }

#define RING 64 /* host staging slots for non-blocking uploads; the loss is read at least every RING/2 steps */

typedef struct {
  int block;
  dit_block net;
  double lo, hi;               /* training σ range (with overlap) */
  int steps_done;
  int *perm, perm_epoch;       /* data order of the current epoch */
  double sig_sum, sig_min, sig_max;
  long sig_n;
} block_state;

typedef struct {
  db_ctx *ctx;
  const train_opts *o;
  const run_config *rc;
  int N, img;                  /* dataset size, values per image */
  uint8_t *labels_host;
  db_tensor data;              /* (N, img) the training images, resident on the device */
  db_arena *arena;             /* per-run buffers below */
  dit_acts acts;
  db_tensor y, eps, z, ones, coef, idx, lab, losses, dlosses, dD, loss_hist;
  float *ring_f;               /* RING x 6B floats: sigma, c_in, c_noise, c_skip, c_out, weight */
  int *ring_i;                 /* RING x 2B ints: idx, labels */
  int pending;                 /* steps whose losses sit in loss_hist */
  FILE *log;
  double t_start, t_last;
  long steps_total, steps_run;
  train_result res;
  int first_logged;
} trainer;

/* ---------------------------------------------------------------- data order */
static void epoch_perm(block_state *bs, int N, uint64_t seed, int epoch) {
  if (bs->perm && bs->perm_epoch == epoch) return;
  if (!bs->perm) bs->perm = malloc((size_t)N * sizeof *bs->perm);
  for (int i = 0; i < N; i++) bs->perm[i] = i;
  uint32_t w[4];
  uint64_t stream = ((uint64_t)bs->block << 40) | ((uint64_t)epoch << 20);
  for (int i = N - 1; i > 0; i--) { /* Fisher-Yates, one Philox word per swap */
    int k = N - 1 - i;
    if (k % 4 == 0) db_philox4x32(key(seed, TAG_DATA), stream + (uint64_t)k / 4, w);
    int j = (int)((uint64_t)w[k % 4] * (uint64_t)(i + 1) >> 32);
    int t = bs->perm[i]; bs->perm[i] = bs->perm[j]; bs->perm[j] = t;
  }
  bs->perm_epoch = epoch;
}

/* Host part of one step: batch indices, labels with dropout, σ and the EDM
 * coefficients, written into ring slot `slot` and uploaded without blocking. */
static void stage_step(trainer *t, block_state *bs, int step, int slot) {
  const run_config *rc = t->rc;
  int B = rc->batch;
  float *f = t->ring_f + (size_t)slot * 6 * B;
  int *ix = t->ring_i + (size_t)slot * 2 * B, *lb = ix + B;
  uint64_t sample0 = (uint64_t)step * (uint64_t)B;
  uint32_t w[4];
  for (int i = 0; i < B; i++) {
    uint64_t s = sample0 + (uint64_t)i;
    epoch_perm(bs, t->N, rc->seed, (int)(s / (uint64_t)t->N));
    ix[i] = bs->perm[s % (uint64_t)t->N];
    if (i % 4 == 0) db_philox4x32(key(rc->seed, TAG_DROP), ((uint64_t)bs->block << 44) + s / 4, w);
    lb[i] = db_u01(w[i % 4]) < rc->label_dropout ? rc->model.n_classes : t->labels_host[ix[i]];
  }
  edm_sample_sigmas(rc->edm, bs->lo, bs->hi, key(rc->seed, TAG_SIGMA), ((uint64_t)bs->block << 44) + sample0 / 4, B, f);
  for (int i = 0; i < B; i++) {
    double s = f[i];
    edm_precond pc = edm_preconditioning(rc->edm, s);
    f[B + i] = (float)pc.c_in;
    f[2 * B + i] = (float)pc.c_noise;
    f[3 * B + i] = (float)pc.c_skip;
    f[4 * B + i] = (float)pc.c_out;
    f[5 * B + i] = (float)edm_loss_weight(rc->edm, s);
    bs->sig_sum += s;
    if (s < bs->sig_min) bs->sig_min = s;
    if (s > bs->sig_max) bs->sig_max = s;
    bs->sig_n++;
  }
  CL_CHECK(clEnqueueWriteBuffer(t->ctx->queue, t->coef.mem, CL_FALSE, t->coef.offset, (size_t)6 * B * 4, f, 0, NULL, NULL));
  CL_CHECK(clEnqueueWriteBuffer(t->ctx->queue, t->idx.mem, CL_FALSE, t->idx.offset, (size_t)B * 4, ix, 0, NULL, NULL));
  CL_CHECK(clEnqueueWriteBuffer(t->ctx->queue, t->lab.mem, CL_FALSE, t->lab.offset, (size_t)B * 4, lb, 0, NULL, NULL));
}

static db_tensor coef_row(trainer *t, int k) { return db_view(t->coef, (size_t)k * t->rc->batch, 1, (int[]){t->rc->batch}); }

/* One optimizer step of one block: everything stays on the device. */
static void device_step(trainer *t, block_state *bs, int step) {
  db_ctx *ctx = t->ctx;
  const run_config *rc = t->rc;
  int B = rc->batch;
  embedding_forward(ctx, t->y, t->idx, t->data, B, t->img, t->N); /* gather the batch */
  uint64_t per_step = ((uint64_t)B * (uint64_t)t->img + 3) / 4;
  db_rng_normal(ctx, t->eps, key(rc->seed, TAG_NOISE), ((uint64_t)bs->block << 48) + (uint64_t)step * per_step, 0.0f, 1.0f);
  rowscale_add_forward(ctx, t->z, t->ones, t->y, coef_row(t, 0), t->eps, B, t->img); /* z = y + σ ε */
  dit_inputs in = {t->z, coef_row(t, 1), coef_row(t, 2), coef_row(t, 3), coef_row(t, 4), t->lab};
  dit_block_forward(ctx, &bs->net, &t->acts, &in);
  weighted_mse_forward(ctx, t->losses, t->acts.D, t->y, coef_row(t, 5), B, t->img);
  reduce_sum(ctx, db_view(t->loss_hist, (size_t)t->pending, 1, (int[]){1}), t->losses, (size_t)B);
  t->pending++;
  param_set_zero_grads(&bs->net.ps);
  db_zero(ctx, t->dD);
  weighted_mse_backward(ctx, t->dD, t->dlosses, t->acts.D, t->y, coef_row(t, 5), B, t->img);
  dit_block_backward(ctx, &bs->net, &t->acts, &in, t->dD);
  adamw_config ac = {(float)rc->lr, 0.9f, 0.999f, 1e-8f, (float)rc->weight_decay, (float)rc->clip};
  param_set_adamw(&bs->net.ps, ac, step + 1);
}

static void fmt_time(char *out, size_t n, double s) {
  if (s < 0 || !isfinite(s)) snprintf(out, n, "?");
  else if (s < 90) snprintf(out, n, "%.0fs", s);
  else if (s < 5400) snprintf(out, n, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
  else snprintf(out, n, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

/* Reads the losses of the pending steps (the only host wait of training) and logs. */
static void flush_log(trainer *t, block_state *bs, int step_done) {
  if (!t->pending) return;
  float h[RING];
  db_download(t->ctx, db_view(t->loss_hist, 0, 1, (int[]){t->pending}), h);
  double sum = 0;
  for (int i = 0; i < t->pending; i++) sum += h[i];
  double loss = sum / t->pending / t->rc->batch, now = db_now();
  if (!isfinite(loss)) db_fail("training diverged: block %d step %d has loss %g (try a lower --lr)", bs->block, step_done, loss);
  double sps = t->pending * (double)t->rc->batch / (now - t->t_last);
  t->t_last = now;
  double eta = (t->steps_total - t->steps_run) * (now - t->t_start) / (t->steps_run > 0 ? t->steps_run : 1);
  if (!t->first_logged) { t->res.first_loss = loss; t->first_logged = 1; }
  t->res.last_loss = loss;
  if (t->log) {
    fprintf(t->log, "{\"block\": %d, \"step\": %d, \"loss\": %.6g, \"sigma_mean\": %.6g, \"sigma_min\": %.6g, "
                    "\"sigma_max\": %.6g, \"samples_per_s\": %.1f, \"peak_mib\": %.1f, \"time_s\": %.2f}\n",
            bs->block, step_done, loss, bs->sig_sum / (double)bs->sig_n, bs->sig_min, bs->sig_max, sps,
            db_peak_bytes() / 1048576.0, now - t->t_start);
    fflush(t->log);
  }
  if (t->o->progress) {
    char e[32];
    fmt_time(e, sizeof e, eta);
    fprintf(stderr, "\r  block %d/%d  step %d/%d  loss %.4f  %.1f samples/s  ETA %s   ", bs->block + 1,
            t->rc->blocks, step_done, t->rc->steps, loss, sps, e);
    fflush(stderr);
  }
  bs->sig_sum = 0;
  bs->sig_min = INFINITY;
  bs->sig_max = 0;
  bs->sig_n = 0;
  t->pending = 0;
}

static void block_state_open(trainer *t, block_state *bs, int block) {
  const run_config *rc = t->rc;
  memset(bs, 0, sizeof *bs);
  bs->block = block;
  bs->perm_epoch = -1;
  bs->sig_min = INFINITY;
  edm_block_train_range(rc->edm, rc->bounds, rc->blocks, block, rc->gamma, &bs->lo, &bs->hi);
  char name[32];
  snprintf(name, sizeof name, "block %d", block);
  dit_block_create(t->ctx, &bs->net, rc->model, name);
  param_set_alloc_training(&bs->net.ps);
  dit_block_init(t->ctx, &bs->net, key(rc->seed, TAG_INIT), (uint64_t)block);
  bs->steps_done = 0;
  if (t->o->resume) {
    int s = block_load(t->ctx, t->o->out_dir, block, &bs->net);
    if (s > 0) bs->steps_done = s;
  }
}

static void block_state_close(block_state *bs) {
  dit_block_destroy(&bs->net);
  free(bs->perm);
}

static void save(trainer *t, block_state *bs) { block_save(t->ctx, t->o->out_dir, bs->block, &bs->net, bs->steps_done); }

static int budget_left(trainer *t) { return !t->o->max_steps_this_run || t->steps_run < t->o->max_steps_this_run; }

static void run_steps(trainer *t, block_state *bs, int until) {
  const train_opts *o = t->o;
  int log_every = o->log_every > 0 && o->log_every <= RING / 2 ? o->log_every : 10;
  while (bs->steps_done < until && budget_left(t)) {
    int step = bs->steps_done;
    stage_step(t, bs, step, (int)(t->steps_run % RING));
    device_step(t, bs, step);
    bs->steps_done++;
    t->steps_run++;
    if (t->pending >= log_every || bs->steps_done == until) flush_log(t, bs, bs->steps_done);
    if (o->ckpt_every > 0 && bs->steps_done % o->ckpt_every == 0 && bs->steps_done < until) {
      flush_log(t, bs, bs->steps_done);
      save(t, bs);
    }
  }
  flush_log(t, bs, bs->steps_done);
}

static void alloc_run_buffers(trainer *t, const dit_block *net) {
  int B = t->rc->batch;
  t->arena = db_arena_new(t->ctx, "training batch");
  t->y = db_new(t->arena, 2, B, t->img, 0, 0);
  t->eps = db_new(t->arena, 2, B, t->img, 0, 0);
  t->z = db_new(t->arena, 2, B, t->img, 0, 0);
  t->dD = db_new(t->arena, 2, B, t->img, 0, 0);
  t->ones = db_new(t->arena, 1, B, 0, 0, 0);
  db_fill(t->ctx, t->ones, 1.0f);
  t->coef = db_new(t->arena, 2, 6, B, 0, 0);
  t->idx = db_alloc(t->arena, DB_I32, 1, (int[]){B});
  t->lab = db_alloc(t->arena, DB_I32, 1, (int[]){B});
  t->losses = db_new(t->arena, 1, B, 0, 0, 0);
  t->dlosses = db_new(t->arena, 1, B, 0, 0, 0);
  db_fill(t->ctx, t->dlosses, 1.0f / (float)B); /* loss = mean over the batch */
  t->loss_hist = db_new(t->arena, 1, RING, 0, 0, 0);
  dit_acts_alloc(t->ctx, &t->acts, net, B, 1);
}

/* Existing output: the manifest must match; checkpoints are only touched with --resume. */
static void prepare_out_dir(const train_opts *o) {
  char path[1024];
  snprintf(path, sizeof path, "%s/manifest.json", o->out_dir);
  struct stat st;
  if (stat(path, &st) == 0) {
    run_config have;
    manifest_read(o->out_dir, &have);
    manifest_check_match(&have, &o->rc, path);
    if (!o->resume)
      for (int i = 0; i < o->rc.blocks; i++) {
        if (o->only_block >= 0 && i != o->only_block) continue;
        char bf[1024];
        block_file(bf, sizeof bf, o->out_dir, i);
        if (stat(bf, &st) == 0)
          db_fail("%s exists: pass --resume to continue training it, or choose another --out", bf);
      }
    /* validate the checkpoints a resume will read before anything is written */
    if (o->resume)
      for (int i = 0; i < o->rc.blocks; i++) {
        char bf[1024];
        block_file(bf, sizeof bf, o->out_dir, i);
        if (stat(bf, &st) == 0) {
          st_file f = st_read(bf);
          st_free(&f);
        }
      }
  } else if (o->resume && o->only_block < 0) {
    db_fail("--resume: %s has no manifest.json (nothing to resume)", o->out_dir);
  }
  mkdir(o->out_dir, 0755);
  manifest_write(o->out_dir, &o->rc); /* same content when it existed (checked above); updates steps */
}

train_result train_run(db_ctx *ctx, const train_opts *o) {
  trainer t = {0};
  t.ctx = ctx;
  t.o = o;
  t.rc = &o->rc;
  const run_config *rc = &o->rc;
  if (o->only_block >= rc->blocks) db_fail("--block %d: the model has blocks 0..%d", o->only_block, rc->blocks - 1);
  if (o->only_block >= 0 && rc->schedule == SCHEDULE_RANDOM) db_fail("--block trains one block: use it with --schedule sequential");
  idx_dataset ds = idx_load(o->data_dir, "train");
  if (ds.rows != rc->model.img_h || ds.cols != rc->model.img_w)
    db_fail("dataset %s has %dx%d images, the model expects %dx%d", o->data_dir ? o->data_dir : idx_default_dir(),
            ds.rows, ds.cols, rc->model.img_h, rc->model.img_w);
  if (ds.n_classes > rc->model.n_classes) db_fail("dataset has %d classes, the model %d", ds.n_classes, rc->model.n_classes);
  prepare_out_dir(o);
  char logpath[1024];
  snprintf(logpath, sizeof logpath, "%s/log.jsonl", o->out_dir);
  t.log = fopen(logpath, o->resume ? "a" : "w");
  if (!t.log) db_fail("cannot write %s", logpath);
  t.N = ds.n;
  t.img = ds.rows * ds.cols;
  t.labels_host = ds.labels;
  db_arena *data_arena = db_arena_new(ctx, "dataset");
  t.data = db_new(data_arena, 2, t.N, t.img, 0, 0);
  db_upload(ctx, t.data, ds.images);
  t.ring_f = malloc((size_t)RING * 6 * rc->batch * sizeof(float));
  t.ring_i = malloc((size_t)RING * 2 * rc->batch * sizeof(int));
  t.t_start = t.t_last = db_now();
  int first = o->only_block >= 0 ? o->only_block : 0, last = o->only_block >= 0 ? o->only_block : rc->blocks - 1;

  if (rc->schedule == SCHEDULE_SEQUENTIAL) {
    /* one block on the device at a time: its parameters, gradients, moments, activations */
    t.steps_total = (long)rc->steps * (last - first + 1);
    for (int b = first; b <= last && budget_left(&t); b++) {
      block_state bs;
      block_state_open(&t, &bs, b);
      t.steps_total -= bs.steps_done;
      if (bs.steps_done >= rc->steps) {
        if (o->progress) fprintf(stderr, "  block %d: %d steps already done\n", b, bs.steps_done);
        block_state_close(&bs);
        continue;
      }
      alloc_run_buffers(&t, &bs.net);
      run_steps(&t, &bs, rc->steps);
      save(&t, &bs);
      if (o->progress) fprintf(stderr, "\n");
      dit_acts_free(&t.acts);
      db_arena_free(t.arena);
      block_state_close(&bs);
    }
  } else {
    /* random: a uniform block each step (the authors' code); all blocks resident */
    block_state *bs = calloc((size_t)rc->blocks, sizeof *bs);
    long done = 0;
    for (int b = 0; b < rc->blocks; b++) { block_state_open(&t, &bs[b], b); done += bs[b].steps_done; }
    t.steps_total = (long)rc->steps * rc->blocks - done;
    alloc_run_buffers(&t, &bs[0].net);
    for (long g = done; g < (long)rc->steps * rc->blocks && budget_left(&t); g++) {
      uint32_t w[4];
      db_philox4x32(key(rc->seed, TAG_SCHED), (uint64_t)g, w);
      int b = (int)((uint64_t)w[0] * (uint64_t)rc->blocks >> 32);
      run_steps(&t, &bs[b], bs[b].steps_done + 1);
      if (o->ckpt_every > 0 && (g + 1) % o->ckpt_every == 0)
        for (int k = 0; k < rc->blocks; k++) save(&t, &bs[k]);
    }
    for (int k = 0; k < rc->blocks; k++) save(&t, &bs[k]);
    if (o->progress) fprintf(stderr, "\n");
    dit_acts_free(&t.acts);
    db_arena_free(t.arena);
    for (int k = 0; k < rc->blocks; k++) block_state_close(&bs[k]);
    free(bs);
  }
  db_finish(ctx);
  t.res.seconds = db_now() - t.t_start;
  t.res.peak_bytes = db_peak_bytes();
  t.res.steps_run = t.steps_run;
  t.res.dataset_bytes = db_arena_bytes(data_arena);
  fclose(t.log);
  db_arena_free(data_arena);
  free(t.ring_f);
  free(t.ring_i);
  idx_free(&ds);
  return t.res;
}
