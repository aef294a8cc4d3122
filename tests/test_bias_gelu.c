/* Fused bias + GELU: reference, finite differences and guards at both vector
 * widths, at row lengths that leave a partial last chunk (C = 7, 33) and none
 * (C = 64); the in-place backward against the reference derivative. */
#include "harness.h"
#include <stdlib.h>

static const double GK = 0.7978845608028654;
typedef struct { int N, C; } bg_cfg;

static double gelu_d(double z) {
  double th = tanh(GK * (z + 0.044715 * z * z * z));
  return 0.5 * (1 + th) + 0.5 * z * (1 - th * th) * GK * (1 + 3 * 0.044715 * z * z);
}
static void ref_fwd(th_op *op, double **in, double **out) {
  bg_cfg *c = op->cfg;
  for (int r = 0; r < c->N; r++)
    for (int j = 0; j < c->C; j++) {
      double z = in[0][(size_t)r * c->C + j] + in[1][j];
      out[0][(size_t)r * c->C + j] = 0.5 * z * (1 + tanh(GK * (z + 0.044715 * z * z * z)));
    }
}
static void ref_bwd(th_op *op, double **in, double **dout, double **din) {
  bg_cfg *c = op->cfg;
  for (int r = 0; r < c->N; r++)
    for (int j = 0; j < c->C; j++) {
      size_t i = (size_t)r * c->C + j;
      double g = dout[0][i] * gelu_d(in[0][i] + in[1][j]);
      din[0][i] += g;
      din[1][j] += g;
    }
}
static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  bg_cfg *c = op->cfg;
  bias_gelu_forward(ctx, out[0], in[0], in[1], c->N, c->C);
}
static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  bg_cfg *c = op->cfg;
  (void)out;
  bias_gelu_backward(ctx, din[0], din[1], dout[0], in[0], in[1], c->N, c->C);
}

static void run(int N, int C) {
  bg_cfg c = {N, C};
  th_op op;
  th_op_init(&op, elem_width(th_ctx) == 4 ? "bias_gelu W=4" : "bias_gelu W=16");
  snprintf(op.shape, sizeof op.shape, "N=%d C=%d", N, C);
  th_add_in(&op, "inp", (size_t)N * C, 1);
  th_add_in(&op, "bias", (size_t)C, 1);
  op.in_lo[0] = -6;
  op.in_hi[0] = 6;
  th_add_out(&op, "out", (size_t)N * C);
  op.ref_fwd = ref_fwd;
  op.ref_bwd = ref_bwd;
  op.dev_fwd = dev_fwd;
  op.dev_bwd = dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

/* d = d * gelu'(x + b) in place, against the reference derivative. */
static void inplace_check(int N, int C) {
  size_t n = (size_t)N * C;
  double *x = db_calloc(n, sizeof *x), *d = db_calloc(n, sizeof *d), b[64];
  float *xf = db_calloc(n, sizeof *xf), *df = db_calloc(n, sizeof *df), bf[64];
  double *want = db_calloc(n, sizeof *want);
  th_rand(x, n, 41, -6, 6);
  th_rand(d, n, 42, -1, 1);
  th_rand(b, (size_t)C, 43, -1, 1);
  for (size_t i = 0; i < n; i++) {
    xf[i] = (float)x[i];
    df[i] = (float)d[i];
    want[i] = (double)df[i] * gelu_d((double)xf[i] + (double)(float)b[i % C]);
  }
  for (int j = 0; j < C; j++) bf[j] = (float)b[j];
  db_arena *a = db_arena_new(th_ctx, "bias_gelu inplace");
  db_tensor tx = th_tensor(a, n), td = th_tensor(a, n), tb = th_tensor(a, (size_t)C);
  th_upload(tx, xf);
  th_upload(td, df);
  th_upload(tb, bf);
  bias_gelu_backward_inplace(th_ctx, td, tx, tb, N, C);
  db_download(th_ctx, td, df);
  double e = th_rel_err(df, want, n);
  char name[96];
  snprintf(name, sizeof name, "bias_gelu_backward_inplace W=%d N=%d C=%d vs reference", elem_width(th_ctx), N, C);
  th_check(e < 1e-5 && th_guards_ok(td), name, "max rel err %.3e", e);
  db_arena_free(a);
  free(x); free(d); free(xf); free(df); free(want);
}

void tests_bias_gelu(void) {
  for (int w = 4; w <= 16; w += 12) {
    elem_force_width(w);
    run(1, 3);
    run(2, 1);
    run(5, 7);
    run(13, 33);
    run(9, 64);
    inplace_check(11, 37);
    inplace_check(6, 64);
  }
  elem_force_width(0);
  TH_EXPECT_ERROR("bias_gelu rejects a bias of the wrong width", "bias_gelu_forward: argument bias", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    bias_gelu_forward(th_ctx, db_new(a, 2, 3, 4, 0, 0), db_new(a, 2, 3, 4, 0, 0), db_new(a, 1, 5, 0, 0, 0), 3, 4);
  });
}
