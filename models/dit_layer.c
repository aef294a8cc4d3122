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
  int C = cfg.C, NH = cfg.NH, hs = C / NH;
  s->B = B;
  s->T = T;
  s->csilu = db_new(a, 2, B, C, 0, 0);
  s->mod = db_new(a, 2, B, 6 * C, 0, 0);
  s->mean1 = db_new(a, 1, B * T, 0, 0, 0);
  s->rstd1 = db_new(a, 1, B * T, 0, 0, 0);
  int qkvr_shape[4] = {3 * B, NH, T, hs};
  s->qkvr = db_alloc(a, DB_F32, 4, qkvr_shape);
  s->att = db_new(a, 4, B, NH, T, T);
  s->atty = db_new(a, 3, B, T, C, 0);
  s->proj = db_new(a, 3, B, T, C, 0);
  s->x1 = db_new(a, 3, B, T, C, 0);
  s->mean2 = db_new(a, 1, B * T, 0, 0, 0);
  s->rstd2 = db_new(a, 1, B * T, 0, 0, 0);
  s->fc1 = db_new(a, 3, B, T, 4 * C, 0);
  s->fc2 = db_new(a, 3, B, T, C, 0);
}

void dit_workspace_alloc(db_arena *a, dit_layer_config cfg, int B, int T, dit_workspace *w) {
  int C = cfg.C, NH = cfg.NH, hs = C / NH;
  w->B = B;
  w->T = T;
  w->ln = db_new(a, 3, B, T, C, 0);
  w->m = db_new(a, 3, B, T, C, 0);
  w->big1 = db_new(a, 3, B, T, 4 * C, 0);
  w->big2 = db_new(a, 3, B, T, 4 * C, 0);
  w->big3 = db_new(a, 3, B, T, 4 * C, 0);
  w->d1 = db_new(a, 3, B, T, C, 0);
  w->d2 = db_new(a, 3, B, T, C, 0);
  w->d3 = db_new(a, 3, B, T, C, 0);
  w->d4 = db_new(a, 3, B, T, C, 0);
  w->att_s = db_new(a, 4, B, NH, T, hs);
  w->datt = db_new(a, 4, B, NH, T, T);
  int qkvr_shape[4] = {3 * B, NH, T, hs};
  w->dqkvr = db_alloc(a, DB_F32, 4, qkvr_shape);
  w->dmod = db_new(a, 2, B, 6 * C, 0, 0);
  w->dcsilu = db_new(a, 2, B, C, 0, 0);
}

/* A view of the first n elements of a scratch buffer with the given shape. */
static db_tensor part(db_tensor t, int ndim, int d0, int d1, int d2) {
  int shape[3] = {d0, d1, d2};
  return db_view(t, 0, ndim, shape);
}

void dit_layer_forward(db_ctx *ctx, db_tensor out, dit_layer_acts *s, db_tensor x, db_tensor c,
                       const dit_layer_params *p, dit_workspace *w, dit_layer_config cfg) {
  int B = s->B, T = s->T, C = cfg.C, N = B * T;
  if (w->B < B || w->T < T) db_fail("DiT layer: workspace for B=%d T=%d is too small for B=%d T=%d", w->B, w->T, B, T);
  db_tensor qkv = part(w->big3, 2, N, 3 * C, 0), gelu = part(w->big1, 2, N, 4 * C, 0);
  db_tensor ln = part(w->ln, 2, N, C, 0), m = part(w->m, 2, N, C, 0);
  /* modulation parameters from the conditioning */
  silu_forward(ctx, s->csilu, c, (size_t)B * C);
  linear_forward(ctx, s->mod, s->csilu, p->t[DIT_ADA_W], p->t[DIT_ADA_B], B, C, 6 * C);
  /* attention branch */
  layernorm_forward(ctx, ln, s->mean1, s->rstd1, x, N, C, 1e-6f);
  modulate_forward(ctx, m, ln, s->mod, 0, C, B, T, C, 6 * C);
  linear_forward(ctx, qkv, m, p->t[DIT_QKV_W], p->t[DIT_QKV_B], N, C, 3 * C);
  attention_forward(ctx, s->atty, s->qkvr, s->att, part(w->att_s, 1, (int)db_numel(s->atty), 0, 0), qkv, DB_NULL,
                    ATTN_BIDIRECTIONAL, B, T, C, cfg.NH);
  linear_forward(ctx, s->proj, s->atty, p->t[DIT_PROJ_W], p->t[DIT_PROJ_B], N, C, C);
  gated_residual_forward(ctx, s->x1, x, s->proj, s->mod, 2 * C, B, T, C, 6 * C);
  /* MLP branch */
  layernorm_forward(ctx, ln, s->mean2, s->rstd2, s->x1, N, C, 1e-6f);
  modulate_forward(ctx, m, ln, s->mod, 3 * C, 4 * C, B, T, C, 6 * C);
  linear_forward(ctx, s->fc1, m, p->t[DIT_FC1_W], p->t[DIT_FC1_B], N, C, 4 * C);
  gelu_forward(ctx, gelu, s->fc1, (size_t)N * 4 * C);
  linear_forward(ctx, s->fc2, gelu, p->t[DIT_FC2_W], p->t[DIT_FC2_B], N, 4 * C, C);
  gated_residual_forward(ctx, out, s->x1, s->fc2, s->mod, 5 * C, B, T, C, 6 * C);
}

void dit_layer_backward(db_ctx *ctx, db_tensor dx, db_tensor dc, dit_layer_params *g, db_tensor dout,
                        const dit_layer_acts *s, db_tensor x, db_tensor c, const dit_layer_params *p,
                        dit_workspace *w, dit_layer_config cfg) {
  int B = s->B, T = s->T, C = cfg.C, N = B * T;
  db_tensor ln = part(w->ln, 2, N, C, 0), m = part(w->m, 2, N, C, 0);
  db_tensor gelu = part(w->big1, 2, N, 4 * C, 0), dgelu = part(w->big2, 2, N, 4 * C, 0);
  db_tensor dfc1 = part(w->big3, 2, N, 4 * C, 0), dqkv = part(w->big3, 2, N, 3 * C, 0);
  db_tensor dx1 = part(w->d1, 2, N, C, 0), dbranch = part(w->d2, 2, N, C, 0);
  db_tensor dm = part(w->d3, 2, N, C, 0), dln = part(w->d4, 2, N, C, 0), datty = dln;
  db_tensor dmod = part(w->dmod, 2, B, 6 * C, 0), dcsilu = part(w->dcsilu, 2, B, C, 0);
  db_zero(ctx, dmod);

  /* out = x1 + g2 ⊙ fc2 */
  db_zero(ctx, dx1);
  db_zero(ctx, dbranch);
  gated_residual_backward(ctx, dx1, dbranch, dmod, dout, s->fc2, s->mod, 5 * C, B, T, C, 6 * C);
  /* fc2 = Linear(GELU(fc1)), GELU recomputed */
  gelu_forward(ctx, gelu, s->fc1, (size_t)N * 4 * C);
  db_zero(ctx, dgelu);
  linear_backward(ctx, dgelu, g->t[DIT_FC2_W], g->t[DIT_FC2_B], dbranch, gelu, p->t[DIT_FC2_W], N, 4 * C, C);
  db_zero(ctx, dfc1);
  gelu_backward(ctx, dfc1, dgelu, s->fc1, (size_t)N * 4 * C);
  /* fc1 = Linear(modulate(LN(x1))), both recomputed */
  layernorm_forward(ctx, ln, s->mean2, s->rstd2, s->x1, N, C, 1e-6f);
  modulate_forward(ctx, m, ln, s->mod, 3 * C, 4 * C, B, T, C, 6 * C);
  db_zero(ctx, dm);
  linear_backward(ctx, dm, g->t[DIT_FC1_W], g->t[DIT_FC1_B], dfc1, m, p->t[DIT_FC1_W], N, C, 4 * C);
  db_zero(ctx, dln);
  modulate_backward(ctx, dln, dmod, dm, ln, s->mod, 3 * C, 4 * C, B, T, C, 6 * C);
  layernorm_backward(ctx, dx1, dln, s->x1, s->mean2, s->rstd2, N, C);

  /* x1 = x + g1 ⊙ proj */
  db_zero(ctx, dbranch);
  gated_residual_backward(ctx, dx, dbranch, dmod, dx1, s->proj, s->mod, 2 * C, B, T, C, 6 * C);
  db_zero(ctx, datty);
  linear_backward(ctx, datty, g->t[DIT_PROJ_W], g->t[DIT_PROJ_B], dbranch, s->atty, p->t[DIT_PROJ_W], N, C, C);
  db_zero(ctx, dqkv);
  attention_backward(ctx, dqkv, w->dqkvr, part(w->datt, 1, (int)db_numel(s->att), 0, 0),
                     part(w->att_s, 1, (int)db_numel(s->atty), 0, 0), datty, s->qkvr, s->att, B, T, C, cfg.NH);
  layernorm_forward(ctx, ln, s->mean1, s->rstd1, x, N, C, 1e-6f);
  modulate_forward(ctx, m, ln, s->mod, 0, C, B, T, C, 6 * C);
  db_zero(ctx, dm);
  linear_backward(ctx, dm, g->t[DIT_QKV_W], g->t[DIT_QKV_B], dqkv, m, p->t[DIT_QKV_W], N, C, 3 * C);
  db_zero(ctx, dln);
  modulate_backward(ctx, dln, dmod, dm, ln, s->mod, 0, C, B, T, C, 6 * C);
  layernorm_backward(ctx, dx, dln, x, s->mean1, s->rstd1, N, C);

  /* mod = Linear(SiLU(c)) */
  db_zero(ctx, dcsilu);
  linear_backward(ctx, dcsilu, g->t[DIT_ADA_W], g->t[DIT_ADA_B], dmod, s->csilu, p->t[DIT_ADA_W], B, C, 6 * C);
  silu_backward(ctx, dc, dcsilu, c, (size_t)B * C);
}
