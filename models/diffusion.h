/* A DiffusionBlocks model as a whole: its configuration (what the manifest
 * records), the B independent denoiser blocks, their checkpoint files, and
 * the sampler that integrates the probability-flow ODE calling, at each noise
 * level, the block that owns it (METHOD.md §1, §6). */
#ifndef DB_DIFFUSION_H
#define DB_DIFFUSION_H
#include "dit.h"
#include "edm.h"

#define DB_MAX_BLOCKS 64
enum { SCHEDULE_SEQUENTIAL = 0, SCHEDULE_RANDOM = 1 };

typedef struct {
  dit_config model;           /* one block's denoiser; model.depth = layers / blocks */
  int layers, blocks;         /* L and B */
  edm_config edm;
  edm_partition_kind partition;
  double gamma;               /* overlap of the training ranges */
  double bounds[DB_MAX_BLOCKS + 1]; /* ascending partition bounds (derived) */
  /* training: part of the configuration, so a resumed run is the same run */
  int batch;
  double lr, weight_decay, clip, label_dropout;
  uint64_t seed;
  int schedule;               /* SCHEDULE_SEQUENTIAL or SCHEDULE_RANDOM */
  int steps;                  /* optimizer steps per block (equal layer-update budget: same for every B) */
} run_config;

/* Defaults: Fashion-MNIST 1x28x28, 10 classes, patch 2, width 384, 6 heads,
 * L = 12, B = 3, equi-probability, γ = 0.1, batch 256, AdamW 2e-4, wd 0,
 * clip 1, label dropout 0.1, sequential. */
void run_config_defaults(run_config *rc);
/* Validates and derives model.depth and the partition bounds; clear errors. */
void run_config_finish(run_config *rc);
const char *partition_name(edm_partition_kind k);
const char *schedule_name(int s);

/* DIR/manifest.json: configuration, partition and per-block σ ranges, written
 * atomically. manifest_read fails clearly on a missing, corrupt or incomplete file. */
void manifest_write(const char *dir, const run_config *rc);
void manifest_read(const char *dir, run_config *rc);
/* Fails naming the first field of `want` that differs from `have` (the
 * manifest at path). Steps may differ: a run can be extended. */
void manifest_check_match(const run_config *have, const run_config *want, const char *path);

/* DIR/block_<i>.safetensors: the block's parameters under DiT's names, and,
 * with optimizer state, "optim.exp_avg.<name>" / "optim.exp_avg_sq.<name>";
 * metadata: block index, steps done. Written atomically. */
void block_file(char *out, size_t n, const char *dir, int block);
void block_save(db_ctx *ctx, const char *dir, int block, dit_block *b, int steps_done);
/* Loads parameters (and moments when b has training buffers and the file has
 * them). Returns steps done; -1 if the file does not exist. Shape mismatches,
 * missing tensors and corrupt files fail clearly. */
int block_load(db_ctx *ctx, const char *dir, int block, dit_block *b);

typedef struct {
  int steps;        /* N noise levels (50) */
  double rho;       /* 7 */
  int heun;         /* 0: Euler, 1: Heun */
  double guidance;  /* classifier-free guidance scale s (1 = none) */
  uint64_t seed;
  int chunk;        /* samples per device batch */
} sampler_opts;

/* Generates n images (n, in_ch, H, W) for labels[n] with all B blocks loaded. */
void sample_images(db_ctx *ctx, dit_block *blocks, const run_config *rc, const int *labels, int n,
                   sampler_opts o, float *out);
#endif
