/* The language-model "judge" (docs/method.md §7, "Evaluation without a hub";
 * docs/metrics.md): a byte-level (V = 256) causal transformer trained once by
 * this runtime with next-byte cross-entropy by plain backprop (it is not a
 * diffusion model), shipped as data/judge-kjv.safetensors. Its bits per byte
 * on held-out text are the reference; on generated continuations, the
 * generative perplexity of a language model's samples.
 *
 *   x (B,T bytes) -> wte[x] + wpe (learned (T,C) positions)
 *   -> layers x { h += Proj(CausalAttn(Qkv(LN1(h))));  h += Fc2(GELU(Fc1(LN2(h)))) }
 *   -> LNf -> Linear(C, 256) -> softmax cross-entropy against the next byte.
 * Every LN is layernorm_modulate with one learned (2C) row [shift | scale]
 * (the LayerNorm affine as 1 + scale), the whole batch seen as one "sample".
 * Pre-LN GPT-2 style: linears N(0, 0.02), the residual projections (proj, fc2)
 * N(0, 0.02/sqrt(2 layers)), positions N(0, 0.01), biases and LN rows 0. */
#ifndef DB_JUDGE_H
#define DB_JUDGE_H
#include "params.h"
#include <stdint.h>

typedef struct { int width, heads, layers, context; } judge_config;

judge_config judge_default_config(void); /* what data/judge-kjv.safetensors uses: 128, 4, 4, 128 */
void judge_config_check(const judge_config *cfg); /* db_fail naming the bad field */

typedef struct judge judge;

/* Parameters allocated and initialised (Philox, deterministic for a seed). */
judge *judge_create(db_ctx *ctx, judge_config cfg, uint64_t seed);
void judge_destroy(judge *j);
judge_config judge_get_config(const judge *j);
param_set *judge_params(judge *j); /* for tests and tools */

/* safetensors; metadata: "format": "dblocks-judge", the config, and the notes
 * added with judge_note (e.g. "heldout_bits_per_byte", "trained"). */
void judge_save(judge *j, const char *path);
/* A clear db_fail on a missing or malformed file, another format, a bad
 * configuration, or a tensor missing, of the wrong shape or not finite. */
judge *judge_load(db_ctx *ctx, const char *path);
void judge_note(judge *j, const char *key, const char *value); /* replaces an earlier value */
const char *judge_get_note(const judge *j, const char *key);   /* NULL if absent */

/* Next-byte CE training on text: every step a batch of `batch` windows of
 * context+1 bytes at uniformly drawn offsets (Philox, deterministic for a
 * seed); AdamW (betas 0.9/0.95, weight decay 0.1 on matrices, global clip 1),
 * linear warm-up then cosine decay of lr to lr/10. Progress on stderr every
 * 100 steps. Returns the mean training loss (nats) over the last 10 % of steps. */
double judge_train(judge *j, const unsigned char *text, size_t n, int steps, int batch, double lr, uint64_t seed);

/* One batch, for tests: `windows` holds B windows of context+1 bytes; the
 * mean next-byte cross-entropy (nats) over the B*context predictions. With
 * backward, the gradients of that mean (zeroed first) are left in judge_params(j)->g. */
double judge_loss(judge *j, const unsigned char *windows, int B, int backward);

/* Bits per byte of predicting byte i of every text from its own preceding
 * bytes, for from <= i < len (and i >= 1: the first byte has no context):
 * sum of -log2 p(x_i | x_<i) / number of bytes scored. Contexts longer than the
 * model's are cut by a sliding window of stride context/2, so every byte but
 * those of the first window sees at least context/2 preceding bytes. `from` =
 * 50 scores only the continuations of 50-byte prompts. Fails clearly when no
 * byte is scored. _n also returns the number of bytes scored (n_scored may be NULL). */
double judge_bits_per_byte(judge *j, const unsigned char *const *texts, const size_t *lens, int n_texts, int from);
double judge_bits_per_byte_n(judge *j, const unsigned char *const *texts, const size_t *lens, int n_texts, int from,
                             size_t *n_scored);
#endif
