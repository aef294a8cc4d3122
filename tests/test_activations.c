/* SiLU and tanh-GELU, over a range that reaches both tails. */
#include "harness.h"

static const double GK = 0.7978845608028654;
static double sig(double x) { return 1 / (1 + exp(-x)); }

static void silu_ref_fwd(th_op *op, double **in, double **out) {
  for (size_t i = 0; i < op->in_n[0]; i++) out[0][i] = in[0][i] * sig(in[0][i]);
}
static void silu_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  for (size_t i = 0; i < op->in_n[0]; i++) {
    double s = sig(in[0][i]);
    din[0][i] += dout[0][i] * s * (1 + in[0][i] * (1 - s));
  }
}
static void gelu_ref_fwd(th_op *op, double **in, double **out) {
  for (size_t i = 0; i < op->in_n[0]; i++) {
    double x = in[0][i];
    out[0][i] = 0.5 * x * (1 + tanh(GK * (x + 0.044715 * x * x * x)));
  }
}
static void gelu_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  for (size_t i = 0; i < op->in_n[0]; i++) {
    double x = in[0][i], th = tanh(GK * (x + 0.044715 * x * x * x));
    din[0][i] += dout[0][i] * (0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GK * (1 + 3 * 0.044715 * x * x));
  }
}
static void silu_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) { silu_forward(ctx, out[0], in[0], op->in_n[0]); }
static void silu_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  (void)out;
  silu_backward(ctx, din[0], dout[0], in[0], op->in_n[0]);
}
static void gelu_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) { gelu_forward(ctx, out[0], in[0], op->in_n[0]); }
static void gelu_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  (void)out;
  gelu_backward(ctx, din[0], dout[0], in[0], op->in_n[0]);
}

static void run(const char *name, size_t n, int gelu) {
  th_op op;
  th_op_init(&op, name);
  snprintf(op.shape, sizeof op.shape, "n=%zu", n);
  th_add_in(&op, "inp", n, 1);
  op.in_lo[0] = -8;
  op.in_hi[0] = 8;
  th_add_out(&op, "out", n);
  op.ref_fwd = gelu ? gelu_ref_fwd : silu_ref_fwd;
  op.ref_bwd = gelu ? gelu_ref_bwd : silu_ref_bwd;
  op.dev_fwd = gelu ? gelu_dev_fwd : silu_dev_fwd;
  op.dev_bwd = gelu ? gelu_dev_bwd : silu_dev_bwd;
  th_run_op(&op);
}

static void inplace_check(void);

/* Every size at both vector widths (16 floats per work-item, CPU; 4, GPU),
 * sizes that leave a partial last chunk of each. */
void tests_activations(void) {
  size_t sizes[] = {1, 7, 1001, 197 * 33};
  int widths[] = {16, 4};
  for (int w = 0; w < 2; w++) {
    elem_force_width(widths[w]);
    char name[32];
    snprintf(name, sizeof name, "silu W=%d", widths[w]);
    for (int i = 0; i < 4; i++) run(name, sizes[i], 0);
    snprintf(name, sizeof name, "gelu W=%d", widths[w]);
    for (int i = 0; i < 4; i++) run(name, sizes[i], 1);
    inplace_check();
  }
  elem_force_width(0);
  TH_EXPECT_ERROR("gelu rejects a short output", "gelu_forward: argument out", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    gelu_forward(th_ctx, db_new(a, 1, 6, 0, 0, 0), db_new(a, 1, 7, 0, 0, 0), 7);
  });
}

static void inplace_check(void) {
  { /* the in-place backward: d = d * gelu'(x), against the reference derivative */
    int n = 1001;
    double x[1001], d[1001], want[1001];
    th_rand(x, (size_t)n, 31, -8, 8);
    th_rand(d, (size_t)n, 32, -1, 1);
    th_op op;
    th_op_init(&op, "gelu");
    op.in_n[0] = (size_t)n;
    double *in[1] = {x}, *dout[1] = {d}, *din[1] = {want};
    memset(want, 0, sizeof want);
    gelu_ref_bwd(&op, in, dout, din);
    float xf[1001], df[1001];
    for (int i = 0; i < n; i++) { xf[i] = (float)x[i]; df[i] = (float)d[i]; }
    db_arena *a = db_arena_new(th_ctx, "gelu inplace");
    db_tensor tx = th_tensor(a, (size_t)n), td = th_tensor(a, (size_t)n);
    th_upload(tx, xf);
    th_upload(td, df);
    gelu_backward_inplace(th_ctx, td, tx, (size_t)n);
    db_download(th_ctx, td, df);
    double e = th_rel_err(df, want, (size_t)n);
    th_check(e < 1e-5 && th_guards_ok(td), elem_width(th_ctx) == 4 ? "gelu_backward_inplace W=4 n=1001 vs reference" : "gelu_backward_inplace W=16 n=1001 vs reference", "max rel err %.3e", e);
    th_record("gelu_backward_inplace", "n=1001", -1, e, -1);
    db_arena_free(a);
  }
}
