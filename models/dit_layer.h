/* One DiT transformer layer with AdaLN-Zero (docs/method.md §4), forward and
 * hand-written backward composed from ops/:
 *   (sh1,sc1,g1,sh2,sc2,g2) = Linear(SiLU(c))            c: (B,C) conditioning
 *   x1  = x  + g1 ⊙ Proj(Attn(Qkv(LN(x)(1+sc1)+sh1)))
 *   out = x1 + g2 ⊙ Fc2(GELU(Fc1(LN(x1)(1+sc2)+sh2)))
 * The backward is the reverse walk over these ops. Layer norms, modulated
 * inputs and the GELU output are recomputed in the backward instead of being
 * saved: they are cheap elementwise work and would cost 6 x (B,T,C) floats per
 * layer. Saved per layer: 12 (B,T,C) + the attention log-sum-exp (B,NH,T):
 * the fused attention keeps no (T,T) matrix. */
#ifndef DB_DIT_LAYER_H
#define DB_DIT_LAYER_H
#include "../ops/ops.h"

enum {
  DIT_ADA_W, DIT_ADA_B,   /* (6C, C), (6C)  modulation: shift1 scale1 gate1 shift2 scale2 gate2 */
  DIT_QKV_W, DIT_QKV_B,   /* (3C, C), (3C) */
  DIT_PROJ_W, DIT_PROJ_B, /* (C, C), (C) */
  DIT_FC1_W, DIT_FC1_B,   /* (4C, C), (4C) */
  DIT_FC2_W, DIT_FC2_B,   /* (C, 4C), (C) */
  DIT_NPARAMS
};
extern const char *const dit_param_names[DIT_NPARAMS];

typedef struct { int C, NH; } dit_layer_config;
typedef struct { db_tensor t[DIT_NPARAMS]; } dit_layer_params; /* also used for gradients */

/* What the backward needs from the forward, per layer. x (the input) is not
 * copied: the caller keeps it alive (it is the previous layer's output). */
typedef struct {
  int B, T;
  db_tensor csilu;              /* (B,C)   SiLU(c) */
  db_tensor mod;                /* (B,6C)  */
  db_tensor mean1, rstd1;       /* (B*T)   */
  db_tensor qkv, lse;           /* (B,T,3C) attention input, (B,NH,T) its log-sum-exp */
  db_tensor atty;               /* (B,T,C) attention output, before the projection */
  db_tensor proj;               /* (B,T,C) */
  db_tensor x1;                 /* (B,T,C) after the attention residual */
  db_tensor mean2, rstd2;       /* (B*T) */
  db_tensor fc1;                /* (B,T,4C) fc1 output before its bias: bias_gelu adds the bias inside the GELU pass */
  db_tensor fc2;                /* (B,T,C) */
} dit_layer_acts;

/* Scratch shared by every layer of a block (and the block's final layer),
 * sized for the largest B,T. Two (B,T,4C) buffers are carved into (B,T,C)
 * slices whose lifetimes do not overlap (the map is in dit_layer.c): with them
 * the scratch is 12 (B,T,C) + (B,NH,T), less than one layer's saved
 * activations, so one block of L/B layers needs about 1/B of the memory of L. */
typedef struct {
  int B, T;
  db_tensor big1, big2;         /* (B,T,4C) */
  db_tensor d1;                 /* (B,T,C)  */
  db_tensor dsum;               /* (B,NH,T) attention backward scratch */
  db_tensor dmod, dcsilu;       /* (B,6C), (B,C) */
} dit_workspace;
/* Slice k (of width m) of a (B,T,4C) scratch buffer, as a (B*T, m*C) tensor. */
db_tensor dit_ws_slice(db_tensor big, int k, int m, int B, int T, int C);

void dit_param_shape(dit_layer_config cfg, int which, int *ndim, int shape[2]);
void dit_layer_alloc_params(db_arena *a, dit_layer_config cfg, dit_layer_params *p);
/* docs/method.md §4 init: Xavier-uniform linears, zero biases, zero modulation (AdaLN-Zero). */
void dit_layer_init_params(db_ctx *ctx, dit_layer_config cfg, dit_layer_params *p, uint64_t seed, uint64_t stream);
void dit_layer_alloc_acts(db_arena *a, dit_layer_config cfg, int B, int T, dit_layer_acts *acts);
void dit_workspace_alloc(db_arena *a, dit_layer_config cfg, int B, int T, dit_workspace *ws);

void dit_layer_forward(db_ctx *ctx, db_tensor out /* (B,T,C) */, dit_layer_acts *acts, db_tensor x /* (B,T,C) */,
                       db_tensor c /* (B,C) */, const dit_layer_params *p, dit_workspace *ws, dit_layer_config cfg);
/* Accumulates into dx, dc and every gradient in g (zero them first).
 * dout is consumed: it is reused as the gradient of the attention residual. */
void dit_layer_backward(db_ctx *ctx, db_tensor dx, db_tensor dc, dit_layer_params *g, db_tensor dout,
                        const dit_layer_acts *acts, db_tensor x, db_tensor c, const dit_layer_params *p,
                        dit_workspace *ws, dit_layer_config cfg);

#endif
