/* Evaluating a trained language model without a hub (docs/metrics.md):
 * the paper's protocol (prompts = the first bytes of held-out passages,
 * several continuations per prompt) and the held-out denoising cross-entropy.
 * The judge's scores and the n-gram statistics come from models/judge.h and
 * models/text_metrics.h. */
#ifndef DB_LM_EVAL_H
#define DB_LM_EVAL_H
#include "../data/text.h"
#include "lm_sampler.h"

/* n passages of len bytes from the held-out text, each starting at a line
 * start, at evenly spaced offsets (deterministic); out: n x len bytes. Fails
 * clearly if the text is too short for n distinct passages. */
void lm_passages(const text_corpus *c, int n, int len, unsigned char *out);

/* Held-out denoising cross-entropy (nats/token): n_seq windows of T bytes at
 * seeded positions of the held-out text, σ drawn from the run's whole noise law
 * (block b's share of sequences from its own range, as in training, γ = 0),
 * each scored by the block that owns its σ. per_block[b] (optional) gets each
 * block's mean over its own sequences. */
double lm_heldout_ce(db_ctx *ctx, lm_model *m, const text_corpus *c, int n_seq, uint64_t seed, double *per_block);
#endif
