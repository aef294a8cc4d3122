/* Fused layernorm + modulate: double reference, finite differences and guard
 * bytes at both vector widths; C = 7, 33 leave a partial chunk, C = 64 none;
 * a non-zero mean checks the two-pass variance. */
#include "harness.h"

typedef struct { int B, T, C, ld, shift_col, scale_col; float eps; db_tensor mean, rstd; } lnm_cfg;

/* xhat of row n into xh; returns rstd */
static double normalise(const lnm_cfg *c, const double *x, double *xh) {
  double m = 0, v = 0;
  for (int i = 0; i < c->C; i++) m += x[i];
  m /= c->C;
  for (int i = 0; i < c->C; i++) v += (x[i] - m) * (x[i] - m);
  double r = 1.0 / sqrt(v / c->C + c->eps);
  for (int i = 0; i < c->C; i++) xh[i] = (x[i] - m) * r;
  return r;
}

static void ref_fwd(th_op *op, double **in, double **out) {
  lnm_cfg *c = op->cfg;
  double xh[512];
  for (int n = 0; n < c->B * c->T; n++) {
    normalise(c, in[0] + (size_t)n * c->C, xh);
    const double *md = in[1] + (size_t)(n / c->T) * c->ld;
    for (int i = 0; i < c->C; i++)
      out[0][(size_t)n * c->C + i] = xh[i] * (1 + md[c->scale_col + i]) + md[c->shift_col + i];
  }
}

static void ref_bwd(th_op *op, double **in, double **dout, double **din) {
  lnm_cfg *c = op->cfg;
  double xh[512], g[512];
  for (int n = 0; n < c->B * c->T; n++) {
    double r = normalise(c, in[0] + (size_t)n * c->C, xh);
    const double *md = in[1] + (size_t)(n / c->T) * c->ld, *dy = dout[0] + (size_t)n * c->C;
    double *dmd = din[1] + (size_t)(n / c->T) * c->ld, mg = 0, mgx = 0;
    for (int i = 0; i < c->C; i++) {
      g[i] = dy[i] * (1 + md[c->scale_col + i]);
      mg += g[i] / c->C;
      mgx += g[i] * xh[i] / c->C;
      dmd[c->shift_col + i] += dy[i];
      dmd[c->scale_col + i] += dy[i] * xh[i];
    }
    for (int i = 0; i < c->C; i++) din[0][(size_t)n * c->C + i] += r * (g[i] - mg - xh[i] * mgx);
  }
}

static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  lnm_cfg *c = op->cfg;
  c->mean = th_tensor(op->arena, (size_t)c->B * c->T);
  c->rstd = th_tensor(op->arena, (size_t)c->B * c->T);
  layernorm_modulate_forward(ctx, out[0], c->mean, c->rstd, in[0], in[1], c->shift_col, c->scale_col, c->B, c->T,
                             c->C, c->ld, c->eps);
}

static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  lnm_cfg *c = op->cfg;
  (void)out;
  layernorm_modulate_backward(ctx, din[0], din[1], dout[0], in[0], c->mean, c->rstd, in[1], c->shift_col,
                              c->scale_col, c->B, c->T, c->C, c->ld);
  th_check(th_guards_ok(c->mean) && th_guards_ok(c->rstd), "layernorm_modulate mean/rstd guards",
           "saved statistics written out of bounds");
}

static char wg_label[32];

static void run(int B, int T, int C, double shift) {
  /* shift at column 3C, scale at 4C of a packed (B, 6C) AdaLN output, as the MLP branch */
  lnm_cfg c = {B, T, C, 6 * C, 3 * C, 4 * C, 1e-6f, DB_NULL, DB_NULL};
  th_op op;
  th_op_init(&op, elem_width(th_ctx) == 4 ? "layernorm_modulate W=4" : "layernorm_modulate W=16");
  snprintf(op.shape, sizeof op.shape, "B=%d T=%d C=%d mean=%g%s", B, T, C, shift, wg_label);
  th_add_in(&op, "inp", (size_t)B * T * C, 1);
  th_add_in(&op, "mod", (size_t)B * c.ld, 1);
  op.in_lo[0] = shift - 1;
  op.in_hi[0] = shift + 1;
  th_add_out(&op, "out", (size_t)B * T * C);
  op.ref_fwd = ref_fwd;
  op.ref_bwd = ref_bwd;
  op.dev_fwd = dev_fwd;
  op.dev_bwd = dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

/* The row kernels at the device's choice (one row per work-item, W wide, on
 * PoCL) and one work-group per row at the GPU-style forced sizes 64, 256 and
 * the maximum (rows shorter than the group: idle work-items; C = 300 longer
 * than 256); dmod's W-wide kernel at both widths in each case. */
void tests_layernorm_modulate(void) {
  static const char *const kernels[] = {"layernorm_modulate_forward_group", "layernorm_modulate_backward_inp_group",
                                        NULL};
  size_t wg[4];
  int nwg = th_row_wg_sizes("layernorm_modulate", kernels, wg);
  for (int i = 0; i < nwg; i++) {
    size_t prev = wg[i] ? db_force_row_group_size(th_ctx, wg[i]) : 0;
    th_wg_label(wg_label, sizeof wg_label, wg[i]);
    for (int w = 4; w <= 16; w += 12) {
      elem_force_width(w);
      run(1, 1, 7, 0);
      run(2, 7, 33, 0);
      run(3, 5, 64, 2);
      run(2, 13, 20, 0);
      if (i == 0 || w == 4) run(2, 3, 300, 0);
    }
    elem_force_width(0);
    if (wg[i]) db_force_row_group_size(th_ctx, prev);
  }
  wg_label[0] = 0;
  TH_EXPECT_ERROR("layernorm_modulate rejects a wrong-sized rstd", "layernorm_modulate_forward: argument rstd", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 3, 2, 3, 4, 0), m = db_new(a, 1, 6, 0, 0, 0), r = db_new(a, 1, 5, 0, 0, 0);
    db_tensor md = db_new(a, 2, 2, 24, 0, 0);
    layernorm_modulate_forward(th_ctx, x, m, r, x, md, 0, 4, 2, 3, 4, 24, 1e-6f);
  });
}
