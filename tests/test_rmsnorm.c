/* rmsnorm: plain-C double reference, device forward/backward, finite
 * differences, at the device's work-group size and GPU-style forced sizes. */
#include "harness.h"
#include <stdlib.h>

typedef struct { int N, C; float eps; db_tensor rstd; } rms_cfg;

static double ref_rstd(const double *x, int C, double eps) {
  double ss = 0;
  for (int i = 0; i < C; i++) ss += x[i] * x[i];
  return 1.0 / sqrt(ss / C + eps);
}

static void ref_fwd(th_op *op, double **in, double **out) {
  rms_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++) {
    const double *x = in[0] + (size_t)n * c->C;
    double r = ref_rstd(x, c->C, c->eps);
    for (int i = 0; i < c->C; i++) out[0][(size_t)n * c->C + i] = x[i] * r;
  }
}

/* y_i = x_i r, r = (mean x^2 + eps)^-1/2: dy/dx gives
 * dx_i = r dy_i - x_i r^3 sum_j(dy_j x_j) / C */
static void ref_bwd(th_op *op, double **in, double **dout, double **din) {
  rms_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++) {
    const double *x = in[0] + (size_t)n * c->C, *dy = dout[0] + (size_t)n * c->C;
    double r = ref_rstd(x, c->C, c->eps), s = 0;
    for (int i = 0; i < c->C; i++) s += dy[i] * x[i];
    for (int i = 0; i < c->C; i++) din[0][(size_t)n * c->C + i] += r * dy[i] - x[i] * r * r * r * s / c->C;
  }
}

static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  rms_cfg *c = op->cfg;
  c->rstd = th_tensor(op->arena, (size_t)c->N);
  rmsnorm_forward(ctx, out[0], c->rstd, in[0], c->N, c->C, c->eps);
}

static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  rms_cfg *c = op->cfg;
  (void)out;
  rmsnorm_backward(ctx, din[0], dout[0], in[0], c->rstd, c->N, c->C);
}

static void run(int N, int C, double shift, size_t wg) {
  rms_cfg c = {N, C, 1e-6f, DB_NULL};
  th_op op;
  th_op_init(&op, "rmsnorm");
  char wl[32];
  th_wg_label(wl, sizeof wl, wg);
  snprintf(op.shape, sizeof op.shape, "N=%d C=%d mean=%g%s", N, C, shift, wl);
  th_add_in(&op, "inp", (size_t)N * C, 1);
  op.in_lo[0] = shift - 1;
  op.in_hi[0] = shift + 1;
  th_add_out(&op, "out", (size_t)N * C);
  op.ref_fwd = ref_fwd;
  op.ref_bwd = ref_bwd;
  op.dev_fwd = dev_fwd;
  op.dev_bwd = dev_bwd;
  op.cfg = &c;
  size_t prev = wg ? db_force_row_group_size(th_ctx, wg) : 0;
  th_run_op(&op);
  if (wg) db_force_row_group_size(th_ctx, prev);
}

/* Rows shorter than a group (C = 2, 7, 33), a row with a vector tail (C =
 * 37), C = 2 (C = 1 is degenerate: y = x / |x|, a gradient of eps / |x|^3, all
 * cancellation in float), odd row counts, rows longer than the largest group (C = 5000). */
static void run_shapes(size_t wg) {
  static const struct { int N, C; double shift; } full[] = {
      {1, 7, 0}, {7, 33, 0}, {3, 2, 0.5}, {5, 37, 2}, {197, 384, 0}, {3, 5000, 1}},
    small[] = {{1, 7, 0}, {7, 33, 0}, {3, 2, 0.5}, {5, 37, 2}};
  int n = th_small ? 4 : 6;
  for (int i = 0; i < n; i++) {
    if (th_small) run(small[i].N, small[i].C, small[i].shift, wg);
    else run(full[i].N, full[i].C, full[i].shift, wg);
  }
}

void tests_rmsnorm(void) {
  static const char *const kernels[] = {"rmsnorm_forward", "rmsnorm_backward", NULL};
  size_t wg[4];
  int nwg = th_row_wg_sizes("rmsnorm", kernels, wg);
  for (int i = 0; i < nwg; i++) run_shapes(wg[i]);
  TH_EXPECT_ERROR("rmsnorm rejects a wrong-sized rstd", "rmsnorm_forward: argument rstd", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 2, 4, 8, 0, 0), r = db_new(a, 1, 3, 0, 0, 0);
    rmsnorm_forward(th_ctx, x, r, x, 4, 8, 1e-6f);
  });
  TH_EXPECT_ERROR("rmsnorm rejects a zero row length", "rmsnorm_backward: sizes must be positive", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 2, 4, 8, 0, 0);
    rmsnorm_backward(th_ctx, x, x, x, x, 4, 0);
  });
}
