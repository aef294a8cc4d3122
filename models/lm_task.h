/* Language modelling as a training task (train.h): each block a block-diffusion
 * LM denoiser (lm.h) trained on [noisy | clean] byte sequences of its σ range
 * with the cross-entropy of score interpolation (docs/lm.md). The data source
 * is a byte corpus on the host (data/text.h): windows of T bytes at seeded
 * positions. The fixed diffusion embedding E is made once, on the device. */
#ifndef DB_LM_TASK_H
#define DB_LM_TASK_H
#include "../data/text.h"
#include "lm.h"
#include "train.h"

/* The seed of E (models/lm_noise.h): fixed, so every run, block and B share one diffusion space. */
#define LM_EMBED_SEED 0x5eedULL
/* σ grid of the entropy curve and its Monte Carlo draws per σ */
#define LM_CURVE_SIGMA_LO 1e-2
#define LM_CURVE_SIGMA_HI 1e3
#define LM_CURVE_SAMPLES 4096

/* One block's model configuration from the run's. */
lm_config lm_config_of(const run_config *rc);
/* The host copy of E (V x d_e). */
float *lm_embedding_host(const run_config *rc);
/* For the equi-difficulty law: estimates h(σ) of the corpus' training bytes
 * into rc->curve, then run_config_finish (bounds, σ_min, σ_max). */
void lm_prepare_config(run_config *rc, const text_corpus *corpus);
/* A σ drawn for `block` from u01 by the run's noise law within its training range. */
double lm_draw_sigma(const run_config *rc, int block, double u01);

train_task *lm_task_create(db_ctx *ctx, const run_config *rc, const text_corpus *corpus);
void lm_task_destroy(train_task *t);
#endif
