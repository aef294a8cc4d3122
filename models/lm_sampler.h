/* Generation with a trained block-diffusion language model (docs/lm.md):
 * prompts become clean tokens (every block caches its own clean K/V); each new
 * token starts at z = σ_max ε and takes M Euler steps of the probability-flow
 * ODE over the EDM ρ = 7 schedule, each step evaluated by the block that owns
 * its σ on ONE token against that block's cache, D(z) = softmax(logits) · E;
 * the token is the argmax (or a temperature sample) of the last step's logits,
 * then appended as clean to every block. A token costs M single-token block
 * evaluations plus one clean pass, never a pass over the prefix. The model saw
 * positions 0..T-1 only (T = --context): a longer text slides its window, the
 * last T/2 bytes cached again when the cache is full. */
#ifndef DB_LM_SAMPLER_H
#define DB_LM_SAMPLER_H
#include "lm.h"
#include "run_config.h"

/* Where the M noise levels of a token sit: EDM's ρ schedule (most steps at
 * small σ), or equally spaced in the training law's CDF (for equi-difficulty:
 * equal steps of h, the posterior entropy; for the log-normal: its quantiles). */
enum { LM_STEPS_RHO = 0, LM_STEPS_LAW = 1 };
typedef struct {
  int steps;          /* M noise levels (50) */
  double rho;         /* 7 (LM_STEPS_RHO) */
  double temperature; /* 0: argmax */
  uint64_t seed;
  int spacing;        /* LM_STEPS_RHO or LM_STEPS_LAW */
} lm_sample_opts;
/* "rho" or "law" (db_fail naming `where` otherwise). */
int lm_spacing_parse(const char *name, const char *where);
/* The M+1 noise levels of a token, σ_max .. σ_min, then 0. */
void lm_sigma_steps(const run_config *rc, lm_sample_opts o, double *sig);

/* A trained run: its configuration and every block, loaded from dir. */
typedef struct {
  run_config rc;
  lm_block *blocks;
  float *E;           /* host copy of the diffusion embedding (V x d_e) */
} lm_model;
void lm_model_load(db_ctx *ctx, lm_model *m, const char *dir);
void lm_model_free(lm_model *m);

/* Called after every generated token: token k (0-based) of each of the R sequences. */
typedef void (*lm_token_fn)(void *user, int k, const unsigned char *tokens, int R);

/* R prompts of equal length P (prompts[r*P + i]); writes R x n_tokens bytes to out
 * (out[r*n_tokens + k]). Returns the seconds spent generating (after the prompts). */
double lm_generate(db_ctx *ctx, lm_model *m, const unsigned char *prompts, int R, int P, int n_tokens,
                   lm_sample_opts o, unsigned char *out, lm_token_fn fn, void *user);

/* A look inside the denoising of one token (dblocks report's generation
 * trace): called at every step j (0..M-1) of token k, after the block that
 * owns σ_j has run, with a host copy (R x LM_VOCAB, valid during the call) of
 * that step's logits: softmax(logits) is the denoised byte distribution whose
 * mean embedding is D(z) (the last step's logits choose the token). */
typedef void (*lm_step_fn)(void *user, int k, int step, double sigma, int block, const float *logits, int R);
/* lm_generate with both hooks (either may be NULL) sharing `user`; the bytes
 * generated are those of lm_generate (the hooks only read). */
double lm_generate_traced(db_ctx *ctx, lm_model *m, const unsigned char *prompts, int R, int P, int n_tokens,
                          lm_sample_opts o, unsigned char *out, lm_token_fn fn, lm_step_fn step_fn, void *user);
#endif
