/* Sampling a trained DiffusionBlocks model (docs/method.md §6, Algorithm 2):
 * integrate the probability-flow ODE with Euler or Heun steps on the EDM ρ
 * schedule, calling at each noise level the block that owns it. */
#ifndef DB_SAMPLER_H
#define DB_SAMPLER_H
#include "run_config.h"

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
