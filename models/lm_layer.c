#include "lm_layer.h"
#include <math.h>

const char *const lm_param_names[LM_NPARAMS] = {"adaLN.weight", "adaLN.bias", "attn.qkv.weight",
                                                "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight"};

#define EPS 1e-6f

int lm_hidden_width(int C) { return ((8 * C + 2) / 3 + 31) / 32 * 32; }

void lm_param_shape(lm_layer_config cfg, int which, int *ndim, int shape[2]) {
  int C = cfg.C, H = cfg.H;
  *ndim = 2;
  switch (which) {
    case LM_ADA_W: shape[0] = 6 * C; shape[1] = C; break;
    case LM_ADA_B: shape[0] = 6 * C; shape[1] = 0; *ndim = 1; break;
    case LM_QKV_W: shape[0] = 3 * C; shape[1] = C; break;
    case LM_PROJ_W: shape[0] = C; shape[1] = C; break;
    case LM_FC1_W: shape[0] = 2 * H; shape[1] = C; break;
    default: shape[0] = C; shape[1] = H; break;
  }
}

static int qkv_width(lm_layer_config cfg) { return 2 * cfg.H > 3 * cfg.C ? 2 * cfg.H : 3 * cfg.C; }

void lm_layer_alloc_acts(db_arena *a, lm_layer_config cfg, int S, int T, lm_layer_acts *s) {
  int C = cfg.C, N = S * T;
  s->S = S;
  s->T = T;
  s->csilu = db_new(a, 2, S, C, 0, 0);
  s->mod = db_new(a, 2, S, 6 * C, 0, 0);
  s->rstd1 = db_new(a, 1, N, 0, 0, 0);
  s->rstd2 = db_new(a, 1, N, 0, 0, 0);
  s->qkv = db_new(a, 2, N, 3 * C, 0, 0);
  s->lse = db_new(a, 3, S / 2, cfg.NH, 2 * T, 0);
  s->atty = db_new(a, 2, N, C, 0, 0);
  s->proj = db_new(a, 2, N, C, 0, 0);
  s->x1 = db_new(a, 2, N, C, 0, 0);
  s->fc1 = db_new(a, 2, N, 2 * cfg.H, 0, 0);
  s->fc2 = db_new(a, 2, N, C, 0, 0);
}

void lm_workspace_alloc(db_arena *a, lm_layer_config cfg, int S, int T, lm_workspace *w) {
  int C = cfg.C, N = S * T;
  w->S = S;
  w->T = T;
  w->n = db_new(a, 2, N, C, 0, 0);
  w->m = db_new(a, 2, N, C, 0, 0);
  w->dm = db_new(a, 2, N, C, 0, 0);
  w->dbranch = db_new(a, 2, N, C, 0, 0);
  w->datty = db_new(a, 2, N, C, 0, 0);
  w->sw = db_new(a, 2, N, cfg.H, 0, 0);
  w->dsw = db_new(a, 2, N, cfg.H, 0, 0);
  w->big = db_new(a, 2, N, qkv_width(cfg), 0, 0);
  w->dsum = db_new(a, 3, S / 2, cfg.NH, 2 * T, 0);
  w->dmod = db_new(a, 2, S, 6 * C, 0, 0);
  w->dcsilu = db_new(a, 2, S, C, 0, 0);
}

static db_tensor view2(db_tensor t, int rows, int cols) {
  int shape[2] = {rows, cols};
  return db_view(t, 0, 2, shape);
}

/* n = RMSNorm(x) (saves rstd), m = n (1 + scale) + shift for the segment's row of mod */
static void norm_modulate(db_ctx *ctx, db_tensor m, db_tensor n, db_tensor rstd, db_tensor x, db_tensor mod,
                          int shift_col, int S, int T, int C) {
  rmsnorm_forward(ctx, n, rstd, x, S * T, C, EPS);
  modulate_forward(ctx, m, n, mod, shift_col, shift_col + C, S, T, C, 6 * C);
}

void lm_layer_forward(db_ctx *ctx, db_tensor out, lm_layer_acts *s, db_tensor x, db_tensor c,
                      const lm_layer_params *p, lm_workspace *w, lm_layer_config cfg) {
  int S = s->S, T = s->T, C = cfg.C, H = cfg.H, N = S * T, hs = C / cfg.NH;
  if (w->S != S || w->T != T) db_fail("LM layer: workspace for S=%d T=%d used with S=%d T=%d", w->S, w->T, S, T);
  silu_forward(ctx, s->csilu, c, (size_t)S * C);
  linear_forward(ctx, s->mod, s->csilu, p->t[LM_ADA_W], p->t[LM_ADA_B], S, C, 6 * C);
  /* attention branch: q, k rotated in place (the saved qkv is the rotated one) */
  norm_modulate(ctx, w->m, w->n, s->rstd1, x, s->mod, 0, S, T, C);
  linear_forward(ctx, s->qkv, w->m, p->t[LM_QKV_W], DB_NULL, N, C, 3 * C);
  rope_forward(ctx, s->qkv, N, 2 * C, 3 * C, hs, 0, T, cfg.rope_base);
  attention_forward(ctx, s->atty, s->lse, s->qkv, DB_NULL, ATTN_BLOCKDIFF, S / 2, 2 * T, C, cfg.NH);
  linear_forward(ctx, s->proj, s->atty, p->t[LM_PROJ_W], DB_NULL, N, C, C);
  gated_residual_forward(ctx, s->x1, x, s->proj, s->mod, 2 * C, S, T, C, 6 * C);
  /* SwiGLU MLP */
  norm_modulate(ctx, w->m, w->n, s->rstd2, s->x1, s->mod, 3 * C, S, T, C);
  linear_forward(ctx, s->fc1, w->m, p->t[LM_FC1_W], DB_NULL, N, C, 2 * H);
  swiglu_forward(ctx, w->sw, s->fc1, N, H);
  linear_forward(ctx, s->fc2, w->sw, p->t[LM_FC2_W], DB_NULL, N, H, C);
  gated_residual_forward(ctx, out, s->x1, s->fc2, s->mod, 5 * C, S, T, C, 6 * C);
}

void lm_layer_backward(db_ctx *ctx, db_tensor dx, db_tensor dc, lm_layer_params *g, db_tensor dout,
                       const lm_layer_acts *s, db_tensor x, db_tensor c, const lm_layer_params *p, lm_workspace *w,
                       lm_layer_config cfg) {
  int S = s->S, T = s->T, C = cfg.C, H = cfg.H, N = S * T, hs = C / cfg.NH;
  if (w->S != S || w->T != T) db_fail("LM layer: workspace for S=%d T=%d used with S=%d T=%d", w->S, w->T, S, T);
  db_tensor dmod = w->dmod, dbranch = w->dbranch;
  db_zero(ctx, dmod);
  /* out = x1 + g2 ⊙ fc2: dout becomes dx1 */
  db_tensor dx1 = dout;
  db_zero(ctx, dbranch);
  gated_residual_backward(ctx, DB_NULL, dbranch, dmod, dout, s->fc2, s->mod, 5 * C, S, T, C, 6 * C);
  /* fc2 = W2 SwiGLU(fc1), SwiGLU recomputed */
  swiglu_forward(ctx, w->sw, s->fc1, N, H);
  linear_backward(ctx, w->dsw, g->t[LM_FC2_W], DB_NULL, dbranch, w->sw, p->t[LM_FC2_W], N, H, C, LINEAR_DINP_SET);
  db_tensor dfc1 = view2(w->big, N, 2 * H);
  db_zero(ctx, dfc1);
  swiglu_backward(ctx, dfc1, w->dsw, s->fc1, N, H);
  /* fc1 = W1 modulate(RMSNorm(x1)), both recomputed */
  norm_modulate(ctx, w->m, w->n, s->rstd2, s->x1, s->mod, 3 * C, S, T, C);
  linear_backward(ctx, w->dm, g->t[LM_FC1_W], DB_NULL, dfc1, w->m, p->t[LM_FC1_W], N, C, 2 * H, LINEAR_DINP_SET);
  db_tensor dn = w->dbranch; /* free again: dn of the MLP norm */
  db_zero(ctx, dn);
  modulate_backward(ctx, dn, dmod, w->dm, w->n, s->mod, 3 * C, 4 * C, S, T, C, 6 * C);
  rmsnorm_backward(ctx, dx1, dn, s->x1, s->rstd2, N, C);

  /* x1 = x + g1 ⊙ proj */
  db_zero(ctx, dbranch);
  gated_residual_backward(ctx, dx, dbranch, dmod, dx1, s->proj, s->mod, 2 * C, S, T, C, 6 * C);
  linear_backward(ctx, w->datty, g->t[LM_PROJ_W], DB_NULL, dbranch, s->atty, p->t[LM_PROJ_W], N, C, C,
                  LINEAR_DINP_SET);
  db_tensor dqkv = view2(w->big, N, 3 * C);
  db_zero(ctx, dqkv);
  attention_backward(ctx, dqkv, w->dsum, w->datty, s->atty, s->lse, s->qkv, DB_NULL, ATTN_BLOCKDIFF, S / 2, 2 * T,
                     C, cfg.NH);
  rope_backward(ctx, dqkv, N, 2 * C, 3 * C, hs, 0, T, cfg.rope_base); /* gradient of the unrotated q, k */
  norm_modulate(ctx, w->m, w->n, s->rstd1, x, s->mod, 0, S, T, C);
  linear_backward(ctx, w->dm, g->t[LM_QKV_W], DB_NULL, dqkv, w->m, p->t[LM_QKV_W], N, C, 3 * C, LINEAR_DINP_SET);
  dn = w->dbranch;
  db_zero(ctx, dn);
  modulate_backward(ctx, dn, dmod, w->dm, w->n, s->mod, 0, C, S, T, C, 6 * C);
  rmsnorm_backward(ctx, dx, dn, x, s->rstd1, N, C);

  /* mod = Linear(SiLU(c)) */
  linear_backward(ctx, w->dcsilu, g->t[LM_ADA_W], g->t[LM_ADA_B], dmod, s->csilu, p->t[LM_ADA_W], S, C, 6 * C,
                  LINEAR_DINP_SET);
  silu_backward(ctx, dc, w->dcsilu, c, (size_t)S * C);
}

void lm_decode_ws_alloc(db_arena *a, lm_layer_config cfg, int R, lm_decode_ws *w) {
  int C = cfg.C;
  w->R = R;
  w->csilu = db_new(a, 2, R, C, 0, 0);
  w->mod = db_new(a, 2, R, 6 * C, 0, 0);
  w->rstd = db_new(a, 1, R, 0, 0, 0);
  w->n = db_new(a, 2, R, C, 0, 0);
  w->m = db_new(a, 2, R, C, 0, 0);
  w->atty = db_new(a, 2, R, C, 0, 0);
  w->proj = db_new(a, 2, R, C, 0, 0);
  w->x1 = db_new(a, 2, R, C, 0, 0);
  w->fc1 = db_new(a, 2, R, 2 * cfg.H, 0, 0);
  w->sw = db_new(a, 2, R, cfg.H, 0, 0);
  w->fc2 = db_new(a, 2, R, C, 0, 0);
}

void lm_layer_decode(db_ctx *ctx, db_tensor out, db_tensor x, db_tensor c, int Rc, db_tensor cache, int Tcap,
                     int pos, const lm_layer_params *p, lm_decode_ws *w, lm_layer_config cfg) {
  int R = w->R, C = cfg.C, H = cfg.H, hs = C / cfg.NH;
  if (Rc != R && Rc != 1) db_fail("LM layer decode: %d conditioning rows for %d sequences (want %d or 1)", Rc, R, R);
  if (pos < 0 || pos >= Tcap) db_fail("LM layer decode: position %d outside the cache's %d rows", pos, Tcap);
  db_check_numel(cache, (size_t)R * Tcap * 3 * C, "lm_layer_decode", "cache");
  /* Rc = 1: the R tokens are one "segment" of R rows sharing one modulation row */
  int S = Rc, T = R / Rc;
  db_tensor csilu = view2(w->csilu, Rc, C), mod = view2(w->mod, Rc, 6 * C);
  silu_forward(ctx, csilu, c, (size_t)Rc * C);
  linear_forward(ctx, mod, csilu, p->t[LM_ADA_W], p->t[LM_ADA_B], Rc, C, 6 * C);
  rmsnorm_forward(ctx, w->n, w->rstd, x, R, C, EPS);
  modulate_forward(ctx, w->m, w->n, mod, 0, C, S, T, C, 6 * C);
  /* q,k,v straight into row pos of each sequence's cache (leading dimension Tcap*3C) */
  int rest[1] = {(int)(db_numel(cache) - (size_t)pos * 3 * C)};
  db_tensor row = db_view(cache, (size_t)pos * 3 * C, 1, rest);
  gemm(ctx, 0, 1, R, 3 * C, C, 1.0f, w->m, C, p->t[LM_QKV_W], C, 0.0f, row, Tcap * 3 * C);
  rope_forward(ctx, row, R, 2 * C, Tcap * 3 * C, hs, pos, 1, cfg.rope_base);
  attention_decode_forward(ctx, w->atty, cache, pos + 1, R, Tcap, C, cfg.NH);
  linear_forward(ctx, w->proj, w->atty, p->t[LM_PROJ_W], DB_NULL, R, C, C);
  gated_residual_forward(ctx, w->x1, x, w->proj, mod, 2 * C, S, T, C, 6 * C);
  rmsnorm_forward(ctx, w->n, w->rstd, w->x1, R, C, EPS);
  modulate_forward(ctx, w->m, w->n, mod, 3 * C, 4 * C, S, T, C, 6 * C);
  linear_forward(ctx, w->fc1, w->m, p->t[LM_FC1_W], DB_NULL, R, C, 2 * H);
  swiglu_forward(ctx, w->sw, w->fc1, R, H);
  linear_forward(ctx, w->fc2, w->sw, p->t[LM_FC2_W], DB_NULL, R, H, C);
  gated_residual_forward(ctx, out, w->x1, w->fc2, mod, 5 * C, S, T, C, 6 * C);
}
