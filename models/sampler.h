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

/* A look inside the sampler (dblocks report's denoising trajectory): called at
 * every step j of every chunk, after the block that owns σ_j has denoised and
 * before the update, with host copies valid during the call only:
 *   first, m   the chunk: samples first .. first+m-1;
 *   sigma      σ_j, block: the block that evaluated it (edm_block_of_sigma);
 *   z          (m, in_ch, H, W): the state at σ_j;
 *   D          (m, in_ch, H, W): D(z; σ_j) (guided when guidance != 1; with
 *              Heun, the first of the two evaluations).
 * After the last step it is called once more with step = steps, sigma =
 * sigmas[steps], block = -1, z = the result and D = NULL. */
typedef void (*sampler_step_fn)(void *user, int first, int m, int step, double sigma, int block, const float *z,
                                const float *D);
/* sample_images on a given noise grid: sigmas[0..steps] strictly decreasing,
 * sigmas[j] > 0 for j < steps (sigmas[steps] may be 0), steps >= 1; NULL: the
 * EDM ρ schedule of o.steps (then o.steps is used and `steps` ignored) --
 * exactly sample_images, whose images it reproduces bit for bit. fn may be
 * NULL. z starts at sigmas[0] ε with the same noise as sample_images. */
void sample_images_traced(db_ctx *ctx, dit_block *blocks, const run_config *rc, const int *labels, int n,
                          sampler_opts o, const double *sigmas, int steps, sampler_step_fn fn, void *user,
                          float *out);
#endif
