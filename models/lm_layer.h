/* One layer of the block-diffusion language model (docs/lm.md): Llama-style
 * (RMSNorm, attention with RoPE and no biases, SwiGLU MLP) wrapped in
 * AdaLN-Zero, forward and hand-written backward composed from ops/.
 * Rows are S segments of T tokens, (S,T,C); segment s is modulated by row s
 * of the conditioning c (S,C). Training: S = 2B, sequence b = segments 2b
 * (noisy, modulated from its σ) and 2b+1 (clean, from the learned clean
 * embedding), attention over each 2T-token sequence with the block-diffusion
 * mask (ATTN_BLOCKDIFF), RoPE position = row mod T:
 *   (sh1,sc1,g1,sh2,sc2,g2) = Linear(SiLU(c))
 *   x1  = x  + g1 ⊙ Wo Attn(RoPE(Wqkv (RMSNorm(x)(1+sc1)+sh1)))
 *   out = x1 + g2 ⊙ W2 SwiGLU(W1 (RMSNorm(x1)(1+sc2)+sh2))
 * Generation runs the same layer on one token per sequence (lm_layer_decode)
 * against a K/V cache. Norms, modulated inputs and the SwiGLU output are
 * recomputed in the backward, as in the DiT layer. */
#ifndef DB_LM_LAYER_H
#define DB_LM_LAYER_H
#include "../ops/ops.h"

enum {
  LM_ADA_W, LM_ADA_B, /* (6C, C), (6C) */
  LM_QKV_W,           /* (3C, C) */
  LM_PROJ_W,          /* (C, C) */
  LM_FC1_W,           /* (2H, C): [gate | up] */
  LM_FC2_W,           /* (C, H) */
  LM_NPARAMS
};
extern const char *const lm_param_names[LM_NPARAMS];

typedef struct { int C, NH, H; float rope_base; } lm_layer_config;
/* SwiGLU hidden width: 8C/3 rounded up to a multiple of 32 (Llama's 2/3 of 4C). */
int lm_hidden_width(int C);
typedef struct { db_tensor t[LM_NPARAMS]; } lm_layer_params;

typedef struct {
  int S, T;                     /* segments, tokens per segment */
  db_tensor csilu, mod;         /* (S,C), (S,6C) */
  db_tensor rstd1, rstd2;       /* (S*T) */
  db_tensor qkv, lse;           /* (S*T,3C) after RoPE, (S/2,NH,2T) */
  db_tensor atty, proj, x1;     /* (S*T,C) */
  db_tensor fc1, fc2;           /* (S*T,2H), (S*T,C) */
} lm_layer_acts;

/* Scratch shared by the layers of a block. */
typedef struct {
  int S, T;
  db_tensor n, m, dm, dbranch, datty; /* (S*T,C) */
  db_tensor sw, dsw;                   /* (S*T,H) */
  db_tensor big;                       /* (S*T, max(2H,3C)): dfc1, then dqkv */
  db_tensor dsum;                      /* (S/2,NH,2T) */
  db_tensor dmod, dcsilu;              /* (S,6C), (S,C) */
} lm_workspace;

void lm_param_shape(lm_layer_config cfg, int which, int *ndim, int shape[2]);
void lm_layer_alloc_acts(db_arena *a, lm_layer_config cfg, int S, int T, lm_layer_acts *acts);
void lm_workspace_alloc(db_arena *a, lm_layer_config cfg, int S, int T, lm_workspace *ws);

/* Training forward over S = 2B segments (B sequences of [noisy | clean] T tokens each). */
void lm_layer_forward(db_ctx *ctx, db_tensor out /* (S,T,C) */, lm_layer_acts *acts, db_tensor x /* (S,T,C) */,
                      db_tensor c /* (S,C) */, const lm_layer_params *p, lm_workspace *ws, lm_layer_config cfg);
/* Accumulates into dx, dc and g (zero them first); dout is consumed. */
void lm_layer_backward(db_ctx *ctx, db_tensor dx, db_tensor dc, lm_layer_params *g, db_tensor dout,
                       const lm_layer_acts *acts, db_tensor x, db_tensor c, const lm_layer_params *p,
                       lm_workspace *ws, lm_layer_config cfg);

/* Decode scratch for R rows (one token of each of R sequences). */
typedef struct {
  int R;
  db_tensor csilu, mod;                 /* (R,C), (R,6C) */
  db_tensor rstd, n, m, atty, proj, x1; /* (R), (R,C) x5 */
  db_tensor fc1, sw, fc2;               /* (R,2H), (R,H), (R,C) */
} lm_decode_ws;
void lm_decode_ws_alloc(db_arena *a, lm_layer_config cfg, int R, lm_decode_ws *ws);
/* One token per sequence at position pos: out = layer(x) for R rows, whose q,k,v
 * (after RoPE) are written into row pos of the cache (R, Tcap, 3C) and whose
 * attention sees the cache rows 0..pos. c is (Rc, C) with Rc = R (a row per
 * sequence) or Rc = 1 (one row for all: the clean embedding). */
void lm_layer_decode(db_ctx *ctx, db_tensor out /* (R,C) */, db_tensor x /* (R,C) */, db_tensor c, int Rc,
                     db_tensor cache /* (R,Tcap,3C) */, int Tcap, int pos, const lm_layer_params *p,
                     lm_decode_ws *ws, lm_layer_config cfg);
#endif
