/* One block of the block-diffusion language model (docs/lm.md, METHOD §7):
 * a complete Llama-style denoiser of byte embeddings, trained alone on its
 * σ range. Input per sequence: 2T tokens [noisy | clean],
 *   noisy t: Linear(c_in · z_t),  z_t = E[x_t] + σ ε_t  (E fixed, shared by every block)
 *   clean t: a learned token embedding of x_t,
 * `depth` lm_layers with AdaLN-Zero (noisy half modulated from σ, clean half
 * from a learned "clean" embedding), then on every row
 *   logits = Linear(AdaLN-final(h))  (C -> V),
 * the loss being the cross-entropy of the noisy rows' logits against x_t.
 * The denoised embedding is D(z) = softmax(logits) · E (score interpolation).
 * Nothing is shared between blocks but E. */
#ifndef DB_LM_H
#define DB_LM_H
#include "lm_layer.h"
#include "params.h"

#define LM_VOCAB 256

typedef struct {
  int width, heads, depth; /* C, NH, layers in this block */
  int context;             /* T */
  int embed_dim;           /* d_e of E */
  int freq_dim;            /* sinusoid size of the noise embedding (256) */
  float rope_base;         /* 10000 */
} lm_config;

typedef struct {
  lm_config cfg;
  lm_layer_config lcfg;
  param_set ps;
  int i_in_w, i_in_b, i_tok, i_clean, i_t_w1, i_t_b1, i_t_w2, i_t_b2, i_f_ada_w, i_f_ada_b, i_out_w, i_out_b;
  int *i_layer;
} lm_block;

void lm_config_check(const lm_config *cfg);
void lm_block_create(db_ctx *ctx, lm_block *blk, lm_config cfg, const char *name);
/* Xavier-uniform linears, N(0, 0.02²) embeddings, zero biases, zero modulation and output (AdaLN-Zero). */
void lm_block_init(db_ctx *ctx, lm_block *blk, uint64_t seed, uint64_t stream);
void lm_block_destroy(lm_block *blk);

/* Per-step inputs for B sequences of T tokens (device tensors). */
typedef struct {
  db_tensor z;       /* (B*T, d_e) noisy embeddings */
  db_tensor c_in;    /* (B*T) c_in of each row's σ */
  db_tensor c_noise; /* (B) ln(σ)/4 */
  db_tensor tokens;  /* (B*T) int32 clean bytes */
  db_tensor targets; /* (B*2T) int32: x_t on noisy rows, -1 (ignored) on clean rows */
} lm_inputs;

typedef struct {
  int B, T;
  db_arena *arena;
  db_tensor zc, hn, hc;              /* (B*T,d_e), (B*T,C) x2 */
  db_tensor *h;                      /* depth+1 residual streams (2B*T, C) */
  lm_layer_acts *layer;
  lm_workspace ws;
  db_tensor tfreq, th, ths, temb;    /* (B,freq), (B,C) x3 */
  db_tensor c;                       /* (2B,C): [σ row | clean row] per sequence */
  db_tensor fcs, fmod, frstd;        /* (2B,C), (2B,2C), (2B*T) */
  db_tensor logits, probs, losses;   /* (2B*T,V) x2, (2B*T) */
  /* backward */
  db_tensor dlosses, dlogits, dh0, dh1, dc, dfcs, dfmod, dtemb, dths, dth, dhn, dhc;
} lm_acts;

void lm_acts_alloc(db_ctx *ctx, lm_acts *a, const lm_block *blk, int B, int training);
void lm_acts_free(lm_acts *a);
/* logits and per-row cross-entropy (a->losses: clean rows 0) */
void lm_block_forward(db_ctx *ctx, lm_block *blk, lm_acts *a, const lm_inputs *in);
/* Gradients of L = sum over rows of dlosses[r] * losses[r] (a->dlosses, filled by the caller) into blk->ps.g. */
void lm_block_backward(db_ctx *ctx, lm_block *blk, lm_acts *a, const lm_inputs *in);

/* ---- generation: one token per sequence against per-layer K/V caches */
typedef struct {
  int R, Tcap;                       /* sequences, cache rows (positions) */
  db_arena *arena;
  db_tensor *cache;                  /* depth x (R, Tcap, 3C) */
  lm_decode_ws ws;
  db_tensor x0, x1;                  /* (R,C) residual streams */
  db_tensor zc, tfreq, th, ths, temb;/* (R,d_e), (R,freq), (R,C) x3 */
  db_tensor fcs, fmod, fn, fm;       /* (R,C), (R,2C), (R,C), (R,C) */
  db_tensor logits;                  /* (R,V) */
} lm_decoder;
void lm_decoder_alloc(db_ctx *ctx, lm_decoder *d, const lm_block *blk, int R, int Tcap);
void lm_decoder_free(lm_decoder *d);
/* Appends clean token tokens[r] (int32, (R)) at position pos of every sequence: fills the caches' row pos. */
void lm_decode_clean(db_ctx *ctx, lm_block *blk, lm_decoder *d, db_tensor tokens, int pos);
/* The noisy token at position pos (which sees the clean rows 0..pos-1): z (R,d_e),
 * c_in (R), c_noise (R) -> d->logits (R,V). Overwrites cache row pos (the clean token replaces it). */
void lm_decode_noisy(db_ctx *ctx, lm_block *blk, lm_decoder *d, db_tensor z, db_tensor c_in, db_tensor c_noise,
                     int pos);
#endif
