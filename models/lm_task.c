/* The language-model task: what one DiffusionBlocks training step computes for
 * a block-diffusion LM block (lm_task.h). */
#include "lm_task.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  db_ctx *ctx;
  const run_config *rc;
  const text_corpus *corpus;
  lm_config cfg;
  lm_block *nets;
  int *open;
  db_arena *fixed_arena;
  db_tensor E;                 /* (V, d_e) the fixed diffusion embedding */
  /* step buffers */
  db_arena *arena;
  lm_acts acts;
  db_tensor y, eps, z, ones, coef, cnoise, tok, tgt, sum, invT;
  float *ring_f;               /* TRAIN_RING x (2BT + B): σ per row, c_in per row, c_noise */
  int *ring_i;                 /* TRAIN_RING x 3BT: tokens, targets */
  train_task task;
} lm_task;

static lm_task *self_of(train_task *t) { return (lm_task *)t->self; }

lm_config lm_config_of(const run_config *rc) {
  return (lm_config){rc->model.width, rc->model.heads, rc->layers / rc->blocks, rc->lm.context, rc->lm.embed_dim,
                     rc->model.freq_dim, 10000.0f};
}

float *lm_embedding_host(const run_config *rc) {
  float *E = db_malloc(sizeof(float) * (size_t)LM_VOCAB * rc->lm.embed_dim);
  lm_embedding_table(E, LM_VOCAB, rc->lm.embed_dim, rc->edm.sigma_data, LM_EMBED_SEED);
  return E;
}

void lm_prepare_config(run_config *rc, const text_corpus *corpus) {
  rc->task = TASK_LM;
  if (rc->lm.noise == LM_NOISE_EQUIDIFF) {
    double freq[256];
    text_byte_freq(corpus->train, corpus->n_train, freq);
    float *E = lm_embedding_host(rc);
    lm_entropy_curve_estimate(&rc->curve, E, LM_VOCAB, rc->lm.embed_dim, freq, LM_EMBED_SEED, LM_CURVE_SAMPLES,
                              LM_CURVE_SIGMA_LO, LM_CURVE_SIGMA_HI);
    free(E);
  }
  run_config_finish(rc);
}

double lm_draw_sigma(const run_config *rc, int block, double u01) {
  double lo, hi;
  edm_block_train_range(rc->edm, rc->bounds, rc->blocks, block, rc->gamma, &lo, &hi);
  if (rc->lm.noise == LM_NOISE_EQUIDIFF) return lm_sample_sigma_equidiff(&rc->curve, lo, hi, u01);
  return edm_sample_sigma(rc->edm, lo, hi, u01);
}

/* ---------------------------------------------------------------- blocks */
static param_set *block_open(train_task *t, int block) {
  lm_task *lt = self_of(t);
  char name[32];
  snprintf(name, sizeof name, "block %d", block);
  lm_block_create(lt->ctx, &lt->nets[block], lt->cfg, name);
  lm_block_init(lt->ctx, &lt->nets[block], train_key(lt->rc->seed, TAG_INIT), (uint64_t)block);
  lt->open[block] = 1;
  return &lt->nets[block].ps;
}

static void block_close(train_task *t, int block) {
  lm_task *lt = self_of(t);
  if (!lt->open[block]) return;
  lm_block_destroy(&lt->nets[block]);
  lt->open[block] = 0;
}

static void buffers_alloc(train_task *t, int block) {
  lm_task *lt = self_of(t);
  int B = t->batch, T = lt->cfg.context, BT = B * T, de = lt->cfg.embed_dim; /* this process's slice (train.h) */
  lt->arena = db_arena_new(lt->ctx, "training batch");
  lt->y = db_new(lt->arena, 2, BT, de, 0, 0);
  lt->eps = db_new(lt->arena, 2, BT, de, 0, 0);
  lt->z = db_new(lt->arena, 2, BT, de, 0, 0);
  lt->ones = db_new(lt->arena, 1, BT, 0, 0, 0);
  db_fill(lt->ctx, lt->ones, 1.0f);
  lt->coef = db_new(lt->arena, 2, 2, BT, 0, 0);
  lt->cnoise = db_new(lt->arena, 1, B, 0, 0, 0);
  lt->tok = db_alloc(lt->arena, DB_I32, 1, (int[]){BT});
  lt->tgt = db_alloc(lt->arena, DB_I32, 1, (int[]){2 * BT});
  lt->sum = db_new(lt->arena, 1, 1, 0, 0, 0);
  lt->invT = db_new(lt->arena, 1, 1, 0, 0, 0);
  db_fill(lt->ctx, lt->invT, 1.0f / (float)T); /* loss per sequence = mean over its T tokens */
  lm_acts_alloc(lt->ctx, &lt->acts, &lt->nets[block], B, 1);
  /* the loss is the mean over the WHOLE batch's tokens (replicas' gradients are summed) */
  db_fill(lt->ctx, lt->acts.dlosses, 1.0f / ((float)lt->rc->batch * (float)T));
  lt->ring_f = db_malloc(db_mul_size((size_t)TRAIN_RING, ((size_t)2 * BT + B) * sizeof(float), "staging ring"));
  lt->ring_i = db_malloc(db_mul_size((size_t)TRAIN_RING, (size_t)3 * BT * sizeof(int), "staging ring"));
}

static void buffers_free(train_task *t) {
  lm_task *lt = self_of(t);
  lm_acts_free(&lt->acts);
  db_arena_free(lt->arena);
  lt->arena = NULL;
  free(lt->ring_f);
  free(lt->ring_i);
  lt->ring_f = NULL;
  lt->ring_i = NULL;
}

/* ---------------------------------------------------------------- one step */
/* Host part: B windows of T bytes at seeded positions of the training text,
 * one σ per sequence, written into ring slot `slot` and uploaded without blocking. */
static void stage(train_task *t, int block, int step, int slot, sigma_stats *sig) {
  lm_task *lt = self_of(t);
  const run_config *rc = lt->rc;
  int B = t->batch, T = lt->cfg.context, BT = B * T;
  float *f = lt->ring_f + (size_t)slot * (2 * BT + B);
  int *tok = lt->ring_i + (size_t)slot * 3 * BT, *tgt = tok + BT;
  size_t span = lt->corpus->n_train - (size_t)T + 1; /* window starts */
  uint64_t seq0 = (uint64_t)step * (uint64_t)rc->batch + (uint64_t)t->batch_offset; /* global sequence numbers */
  uint32_t w[4], ws[4];
  for (int i = 0; i < B; i++) {
    uint64_t s = seq0 + (uint64_t)i;
    if (i % 4 == 0) {
      db_philox4x32(train_key(rc->seed, TAG_DATA), ((uint64_t)block << 44) + s / 4, w);
      db_philox4x32(train_key(rc->seed, TAG_SIGMA), ((uint64_t)block << 44) + s / 4, ws);
    }
    size_t start = (size_t)((uint64_t)w[i % 4] * (uint64_t)span >> 32); /* span < 2^32: corpora under 4 GiB */
    double sigma = lm_draw_sigma(rc, block, db_u01(ws[i % 4]));
    edm_precond pc = edm_preconditioning(rc->edm, sigma);
    sigma_stats_add(sig, sigma);
    f[2 * BT + i] = (float)pc.c_noise;
    for (int k = 0; k < T; k++) {
      int x = lt->corpus->train[start + (size_t)k];
      tok[i * T + k] = x;
      tgt[i * 2 * T + k] = x;      /* noisy row: predict x_t */
      tgt[i * 2 * T + T + k] = -1; /* clean row: no loss */
      f[i * T + k] = (float)sigma;
      f[BT + i * T + k] = (float)pc.c_in;
    }
  }
  db_upload_async(lt->ctx, lt->coef, f);
  db_upload_async(lt->ctx, lt->cnoise, f + 2 * BT);
  db_upload_async(lt->ctx, lt->tok, tok);
  db_upload_async(lt->ctx, lt->tgt, tgt);
}

static db_tensor coef_row(lm_task *lt, int k) {
  int BT = lt->task.batch * lt->cfg.context;
  return db_view(lt->coef, (size_t)k * BT, 1, (int[]){BT});
}

/* Device part: z = E[x] + σ ε, the block's logits, token cross-entropy and its backward. */
static void forward_backward(train_task *t, int block, int step, db_tensor loss) {
  lm_task *lt = self_of(t);
  db_ctx *ctx = lt->ctx;
  const run_config *rc = lt->rc;
  int B = t->batch, T = lt->cfg.context, BT = B * T, de = lt->cfg.embed_dim;
  lm_block *net = &lt->nets[block];
  embedding_forward(ctx, lt->y, lt->tok, lt->E, BT, de, LM_VOCAB);
  /* the noise of the whole batch's step, from this slice's first element on (a multiple of 4: train.c) */
  uint64_t per_step = ((uint64_t)rc->batch * (uint64_t)T * (uint64_t)de + 3) / 4;
  uint64_t slice = (uint64_t)t->batch_offset * (uint64_t)T * (uint64_t)de / 4;
  db_rng_normal(ctx, lt->eps, train_key(rc->seed, TAG_NOISE), ((uint64_t)block << 48) + (uint64_t)step * per_step + slice,
                0.0f, 1.0f);
  rowscale_add_forward(ctx, lt->z, lt->ones, lt->y, coef_row(lt, 0), lt->eps, BT, de); /* z = y + σ ε */
  lm_inputs in = {lt->z, coef_row(lt, 1), lt->cnoise, lt->tok, lt->tgt};
  lm_block_forward(ctx, net, &lt->acts, &in);
  reduce_sum(ctx, lt->sum, lt->acts.losses, (size_t)2 * BT);
  rowscale_add_forward(ctx, loss, DB_NULL, DB_NULL, lt->invT, lt->sum, 1, 1);
  lm_block_backward(ctx, net, &lt->acts, &in);
}

static int checkpoint_meta(train_task *t, const char **kv, int max_pairs, char *buf, size_t n) {
  lm_task *lt = self_of(t);
  if (max_pairs < 3 || n < 48) return 0;
  size_t k = n / 3;
  snprintf(buf, k, "%d", lt->cfg.depth);
  snprintf(buf + k, k, "%d", lt->cfg.width);
  snprintf(buf + 2 * k, k, "%d", lt->cfg.context);
  kv[0] = "layers"; kv[1] = buf;
  kv[2] = "width"; kv[3] = buf + k;
  kv[4] = "context"; kv[5] = buf + 2 * k;
  return 3;
}

train_task *lm_task_create(db_ctx *ctx, const run_config *rc, const text_corpus *corpus) {
  if (rc->task != TASK_LM) db_fail("lm task: the run configuration is not a language model's");
  if (rc->lm.noise == LM_NOISE_EQUIDIFF && rc->curve.n == 0)
    db_fail("lm task: the equi-difficulty noise law needs the corpus' entropy curve (lm_prepare_config)");
  if (corpus->n_train >= ((size_t)1 << 32)) db_fail("lm task: the training text is 4 GiB or more (%zu bytes)", corpus->n_train);
  if (corpus->n_train < (size_t)rc->lm.context + 1)
    db_fail("lm task: the training text (%zu bytes) is shorter than one sequence of --context %d", corpus->n_train,
            rc->lm.context);
  lm_task *lt = db_calloc(1, sizeof *lt);
  lt->ctx = ctx;
  lt->rc = rc;
  lt->corpus = corpus;
  lt->cfg = lm_config_of(rc);
  lm_config_check(&lt->cfg);
  lt->fixed_arena = db_arena_new(ctx, "diffusion embedding");
  lt->E = db_new(lt->fixed_arena, 2, LM_VOCAB, rc->lm.embed_dim, 0, 0);
  float *E = lm_embedding_host(rc);
  db_upload(ctx, lt->E, E);
  free(E);
  lt->nets = db_calloc((size_t)rc->blocks, sizeof *lt->nets);
  lt->open = db_calloc((size_t)rc->blocks, sizeof *lt->open);
  lt->task = (train_task){"lm", lt, rc->batch, "sequences", block_open, block_close, buffers_alloc, buffers_free, stage,
                          forward_backward, checkpoint_meta, 0};
  return &lt->task;
}

void lm_task_destroy(train_task *t) {
  if (!t) return;
  lm_task *lt = self_of(t);
  for (int b = 0; b < lt->rc->blocks; b++) block_close(t, b);
  if (lt->arena) buffers_free(t);
  db_arena_free(lt->fixed_arena);
  free(lt->nets);
  free(lt->open);
  free(lt);
}
