#include "dit_layer.h"
#include <math.h>
#include <stdlib.h>

const char *const dit_param_names[DIT_NPARAMS] = {"adaLN.weight", "adaLN.bias", "attn.qkv.weight", "attn.qkv.bias",
                                                  "attn.proj.weight", "attn.proj.bias", "mlp.fc1.weight",
                                                  "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"};

void dit_param_shape(dit_layer_config cfg, int which, int *ndim, int shape[2]) {
  int C = cfg.C;
  static const int rows[DIT_NPARAMS] = {6, 6, 3, 3, 1, 1, 4, 4, 1, 1};
  shape[0] = rows[which] * C;
  shape[1] = which == DIT_FC2_W ? 4 * C : C;
  *ndim = (which % 2 == 0) ? 2 : 1;
}

void dit_layer_alloc_params(db_arena *a, dit_layer_config cfg, dit_layer_params *p) {
  if (cfg.C <= 0 || cfg.NH <= 0 || cfg.C % cfg.NH)
    db_fail("DiT layer: width %d must be a positive multiple of the head count %d", cfg.C, cfg.NH);
  for (int i = 0; i < DIT_NPARAMS; i++) {
    int nd, shape[2];
    dit_param_shape(cfg, i, &nd, shape);
    p->t[i] = db_alloc(a, DB_F32, nd, shape);
  }
}

void dit_layer_init_params(db_ctx *ctx, dit_layer_config cfg, dit_layer_params *p, uint64_t seed, uint64_t stream) {
  for (int i = 0; i < DIT_NPARAMS; i++) {
    int nd, shape[2];
    dit_param_shape(cfg, i, &nd, shape);
    if (nd == 1 || i == DIT_ADA_W) {
      db_zero(ctx, p->t[i]); /* biases, and AdaLN-Zero: every layer starts as the identity */
      continue;
    }
    float bound = sqrtf(6.0f / (float)(shape[0] + shape[1])); /* Xavier uniform */
    db_rng_uniform(ctx, p->t[i], seed, (stream * DIT_NPARAMS + (uint64_t)i) << 32, -bound, bound);
  }
}

void dit_layer_alloc_acts(db_arena *a, dit_layer_config cfg, int B, int T, dit_layer_acts *s) {
  int C = cfg.C, NH = cfg.NH;
  s->B = B;
  s->T = T;
  s->csilu = db_new(a, 2, B, C, 0, 0);
  s->mod = db_new(a, 2, B, 6 * C, 0, 0);
  s->mean1 = db_new(a, 1, B * T, 0, 0, 0);
  s->rstd1 = db_new(a, 1, B * T, 0, 0, 0);
  s->qkv = db_new(a, 3, B, T, 3 * C, 0);
  s->lse = db_new(a, 3, B, NH, T, 0);
  s->atty = db_new(a, 3, B, T, C, 0);
  s->proj = db_new(a, 3, B, T, C, 0);
  s->x1 = db_new(a, 3, B, T, C, 0);
  s->mean2 = db_new(a, 1, B * T, 0, 0, 0);
  s->rstd2 = db_new(a, 1, B * T, 0, 0, 0);
  s->fc1 = db_new(a, 3, B, T, 4 * C, 0);
  s->fc2 = db_new(a, 3, B, T, C, 0);
}

void dit_workspace_alloc(db_arena *a, dit_layer_config cfg, int B, int T, dit_workspace *w) {
  int C = cfg.C, NH = cfg.NH;
  w->B = B;
  w->T = T;
  w->big1 = db_new(a, 3, B, T, 4 * C, 0);
  w->big2 = db_new(a, 3, B, T, 4 * C, 0);
  w->d1 = db_new(a, 3, B, T, C, 0);
  w->dsum = db_new(a, 3, B, NH, T, 0);
  w->dmod = db_new(a, 2, B, 6 * C, 0, 0);
  w->dcsilu = db_new(a, 2, B, C, 0, 0);
}

db_tensor dit_ws_slice(db_tensor big, int k, int m, int B, int T, int C) {
  int shape[2] = {B * T, m * C};
  return db_view(big, (size_t)k * B * T * C, 2, shape);
}

/* Scratch map (slices of (B,T,C) in big1 | big2):
 *   forward:  m in big1[1]; GELU output in big2[0..3]
 *   backward, MLP: GELU recomputed in big1[0..3]; dGELU -> dfc1 in place in big2[0..3];
 *             then m2, dm in big1[1], big1[3]
 *   backward, attention: datty big1[3]; dqkv big1[0..2];
 *             then m1, dm in big2[1], big2[2] */
void dit_layer_forward(db_ctx *ctx, db_tensor out, dit_layer_acts *s, db_tensor x, db_tensor c,
                       const dit_layer_params *p, dit_workspace *w, dit_layer_config cfg) {
  int B = s->B, T = s->T, C = cfg.C, N = B * T;
  if (w->B != B || w->T != T) db_fail("DiT layer: workspace for B=%d T=%d used with B=%d T=%d", w->B, w->T, B, T);
  db_tensor m = dit_ws_slice(w->big1, 1, 1, B, T, C);
  db_tensor gelu = dit_ws_slice(w->big2, 0, 4, B, T, C);
  /* modulation parameters from the conditioning */
  silu_forward(ctx, s->csilu, c, (size_t)B * C);
  linear_forward(ctx, s->mod, s->csilu, p->t[DIT_ADA_W], p->t[DIT_ADA_B], B, C, 6 * C);
  /* attention branch */
  layernorm_modulate_forward(ctx, m, s->mean1, s->rstd1, x, s->mod, 0, C, B, T, C, 6 * C, 1e-6f);
  linear_forward(ctx, s->qkv, m, p->t[DIT_QKV_W], p->t[DIT_QKV_B], N, C, 3 * C);
  attention_forward(ctx, s->atty, s->lse, s->qkv, DB_NULL, ATTN_BIDIRECTIONAL, B, T, C, cfg.NH);
  linear_forward(ctx, s->proj, s->atty, p->t[DIT_PROJ_W], p->t[DIT_PROJ_B], N, C, C);
  gated_residual_forward(ctx, s->x1, x, s->proj, s->mod, 2 * C, B, T, C, 6 * C);
  /* MLP branch */
  layernorm_modulate_forward(ctx, m, s->mean2, s->rstd2, s->x1, s->mod, 3 * C, 4 * C, B, T, C, 6 * C, 1e-6f);
  /* fc1 is saved before its bias: bias_gelu adds it in the GELU's pass */
  linear_forward(ctx, s->fc1, m, p->t[DIT_FC1_W], DB_NULL, N, C, 4 * C);
  bias_gelu_forward(ctx, gelu, s->fc1, p->t[DIT_FC1_B], N, 4 * C);
  linear_forward(ctx, s->fc2, gelu, p->t[DIT_FC2_W], p->t[DIT_FC2_B], N, 4 * C, C);
  gated_residual_forward(ctx, out, s->x1, s->fc2, s->mod, 5 * C, B, T, C, 6 * C);
}

void dit_layer_backward(db_ctx *ctx, db_tensor dx, db_tensor dc, dit_layer_params *g, db_tensor dout,
                        const dit_layer_acts *s, db_tensor x, db_tensor c, const dit_layer_params *p,
                        dit_workspace *w, dit_layer_config cfg) {
  int B = s->B, T = s->T, C = cfg.C, N = B * T;
  if (w->B != B || w->T != T) db_fail("DiT layer: workspace for B=%d T=%d used with B=%d T=%d", w->B, w->T, B, T);
#define S1(k) dit_ws_slice(w->big1, k, 1, B, T, C)
#define S2(k) dit_ws_slice(w->big2, k, 1, B, T, C)
  db_tensor dbranch = w->d1, dmod = w->dmod, dcsilu = w->dcsilu;
  db_zero(ctx, dmod);

  /* out = x1 + g2 ⊙ fc2. dL/dx1 starts as dout itself: dout becomes dx1. */
  db_tensor dx1 = dout;
  db_zero(ctx, dbranch);
  gated_residual_backward(ctx, DB_NULL, dbranch, dmod, dout, s->fc2, s->mod, 5 * C, B, T, C, 6 * C);
  /* fc2 = Linear(GELU(fc1 + b1)), GELU recomputed */
  db_tensor gelu = dit_ws_slice(w->big1, 0, 4, B, T, C), dfc1 = dit_ws_slice(w->big2, 0, 4, B, T, C);
  bias_gelu_forward(ctx, gelu, s->fc1, p->t[DIT_FC1_B], N, 4 * C);
  linear_backward(ctx, dfc1, g->t[DIT_FC2_W], g->t[DIT_FC2_B], dbranch, gelu, p->t[DIT_FC2_W], N, 4 * C, C,
                  LINEAR_DINP_SET);
  /* dfc1 becomes the gradient of fc1 + b1: linear_backward's dbias sums it */
  bias_gelu_backward_inplace(ctx, dfc1, s->fc1, p->t[DIT_FC1_B], N, 4 * C);
  /* fc1 = Linear(modulate(LN(x1))), both recomputed */
  db_tensor m = S1(1), dm = S1(3);
  layernorm_modulate_forward(ctx, m, s->mean2, s->rstd2, s->x1, s->mod, 3 * C, 4 * C, B, T, C, 6 * C, 1e-6f);
  linear_backward(ctx, dm, g->t[DIT_FC1_W], g->t[DIT_FC1_B], dfc1, m, p->t[DIT_FC1_W], N, C, 4 * C, LINEAR_DINP_SET);
  layernorm_modulate_backward(ctx, dx1, dmod, dm, s->x1, s->mean2, s->rstd2, s->mod, 3 * C, 4 * C, B, T, C, 6 * C);

  /* x1 = x + g1 ⊙ proj */
  db_zero(ctx, dbranch);
  gated_residual_backward(ctx, dx, dbranch, dmod, dx1, s->proj, s->mod, 2 * C, B, T, C, 6 * C);
  db_tensor datty = S1(3), dqkv = dit_ws_slice(w->big1, 0, 3, B, T, C);
  linear_backward(ctx, datty, g->t[DIT_PROJ_W], g->t[DIT_PROJ_B], dbranch, s->atty, p->t[DIT_PROJ_W], N, C, C,
                  LINEAR_DINP_SET);
  db_zero(ctx, dqkv);
  attention_backward(ctx, dqkv, w->dsum, datty, s->atty, s->lse, s->qkv, DB_NULL, ATTN_BIDIRECTIONAL, B, T, C,
                     cfg.NH);
  m = S2(1);
  dm = S2(2);
  layernorm_modulate_forward(ctx, m, s->mean1, s->rstd1, x, s->mod, 0, C, B, T, C, 6 * C, 1e-6f);
  linear_backward(ctx, dm, g->t[DIT_QKV_W], g->t[DIT_QKV_B], dqkv, m, p->t[DIT_QKV_W], N, C, 3 * C, LINEAR_DINP_SET);
  layernorm_modulate_backward(ctx, dx, dmod, dm, x, s->mean1, s->rstd1, s->mod, 0, C, B, T, C, 6 * C);
#undef S1
#undef S2

  /* mod = Linear(SiLU(c)) */
  linear_backward(ctx, dcsilu, g->t[DIT_ADA_W], g->t[DIT_ADA_B], dmod, s->csilu, p->t[DIT_ADA_W], B, C, 6 * C,
                  LINEAR_DINP_SET);
  silu_backward(ctx, dc, dcsilu, c, (size_t)B * C);
}
