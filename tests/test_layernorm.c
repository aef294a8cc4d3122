/* layernorm: plain-C double reference, device forward/backward, finite differences. */
#include "harness.h"
#include <stdlib.h>

typedef struct { int N, C; float eps; db_tensor mean, rstd; } ln_cfg;

static void ref_fwd(th_op *op, double **in, double **out) {
  ln_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++) {
    const double *x = in[0] + (size_t)n * c->C;
    double m = 0, v = 0;
    for (int i = 0; i < c->C; i++) m += x[i];
    m /= c->C;
    for (int i = 0; i < c->C; i++) v += (x[i] - m) * (x[i] - m);
    double r = 1.0 / sqrt(v / c->C + c->eps);
    for (int i = 0; i < c->C; i++) out[0][(size_t)n * c->C + i] = (x[i] - m) * r;
  }
}

static void ref_bwd(th_op *op, double **in, double **dout, double **din) {
  ln_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++) {
    const double *x = in[0] + (size_t)n * c->C, *dy = dout[0] + (size_t)n * c->C;
    double m = 0, v = 0, mdy = 0, mdyx = 0;
    for (int i = 0; i < c->C; i++) m += x[i];
    m /= c->C;
    for (int i = 0; i < c->C; i++) v += (x[i] - m) * (x[i] - m);
    double r = 1.0 / sqrt(v / c->C + c->eps);
    for (int i = 0; i < c->C; i++) { mdy += dy[i]; mdyx += dy[i] * (x[i] - m) * r; }
    mdy /= c->C;
    mdyx /= c->C;
    for (int i = 0; i < c->C; i++) din[0][(size_t)n * c->C + i] += r * (dy[i] - mdy - (x[i] - m) * r * mdyx);
  }
}

static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  ln_cfg *c = op->cfg;
  c->mean = th_tensor(op->arena, (size_t)c->N);
  c->rstd = th_tensor(op->arena, (size_t)c->N);
  layernorm_forward(ctx, out[0], c->mean, c->rstd, in[0], c->N, c->C, c->eps);
}

static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  ln_cfg *c = op->cfg;
  (void)out;
  layernorm_backward(ctx, din[0], dout[0], in[0], c->mean, c->rstd, c->N, c->C);
}

static void run(int N, int C, double shift, size_t wg) {
  ln_cfg c = {N, C, 1e-6f, DB_NULL, DB_NULL};
  th_op op;
  th_op_init(&op, "layernorm");
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

/* Every shape at the device's own work-group size (1 on PoCL) and at the
 * GPU-style forced sizes 64, 256 and the maximum: rows shorter than the group
 * (C = 1, 7, 33: idle work-items), odd row counts, rows longer than the
 * largest group (C = 5000 > 4096: several elements per work-item). */
static void run_shapes(size_t wg) {
  static const struct { int N, C; double shift; } full[] = {
      {1, 7, 0}, {7, 33, 0}, {3, 1, 0}, {197, 384, 0}, {5, 1000, 3}, {3, 5000, 1}},
    small[] = {{1, 7, 0}, {7, 33, 0}, {3, 1, 0}, {5, 300, 3}};
  int n = th_small ? 4 : 6;
  for (int i = 0; i < n; i++) {
    if (th_small) run(small[i].N, small[i].C, small[i].shift, wg);
    else run(full[i].N, full[i].C, full[i].shift, wg);
  }
}

static void expect_wg_errors(void) {
  TH_EXPECT_ERROR("layernorm: a forced work-group size of 48 is refused (not a power of two)", "not a power of two",
                  { db_force_row_group_size(th_ctx, 48); });
  size_t too_big = th_ctx->dev.max_wg * 2;
  TH_EXPECT_ERROR("layernorm: a forced work-group size above the device maximum is refused",
                  "exceeds the device's maximum", { db_force_row_group_size(th_ctx, too_big); });
}

void tests_layernorm(void) {
  static const char *const kernels[] = {"layernorm_forward", "layernorm_backward", NULL};
  size_t wg[4];
  int nwg = th_row_wg_sizes("layernorm", kernels, wg);
  for (int i = 0; i < nwg; i++) run_shapes(wg[i]);
  expect_wg_errors();
  th_check(!th_ctx->row_wg_forced || getenv("DBLOCKS_ROW_WG"), "layernorm: the forced work-group size is restored",
           "still forced to %zu", th_ctx->row_wg);
  TH_EXPECT_ERROR("layernorm rejects a wrong-sized mean", "layernorm_forward: argument mean", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 2, 4, 8, 0, 0), m = db_new(a, 1, 3, 0, 0, 0);
    layernorm_forward(th_ctx, x, m, m, x, 4, 8, 1e-6f);
  });
}
