/* crossentropy and weighted MSE: plain-C double references, device
 * forward/backward, finite differences, shape errors. */
#include "harness.h"
#include <stdlib.h>

/* ---------------------------------------------------------------- crossentropy */
typedef struct { int N, V, ignore; } ce_cfg; /* ignore: row whose target is set to -1, or -1 for none */

static void ce_init(th_op *op, double **in) {
  ce_cfg *c = op->cfg;
  if (c->ignore >= 0) in[1][c->ignore] = -1;
}

/* in: logits (N,V), targets (N); out: losses (N), probs (N,V) */
static void ce_ref_fwd(th_op *op, double **in, double **out) {
  ce_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++) {
    const double *x = in[0] + (size_t)n * c->V;
    double *p = out[1] + (size_t)n * c->V, m = x[0], s = 0;
    for (int v = 1; v < c->V; v++) if (x[v] > m) m = x[v];
    for (int v = 0; v < c->V; v++) s += exp(x[v] - m);
    for (int v = 0; v < c->V; v++) p[v] = exp(x[v] - m) / s;
    int t = (int)in[1][n];
    out[0][n] = t < 0 ? 0.0 : log(s) - (x[t] - m);
  }
}

static void ce_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  ce_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++) {
    int t = (int)in[1][n];
    if (t < 0) continue;
    const double *x = in[0] + (size_t)n * c->V;
    double m = x[0], s = 0;
    for (int v = 1; v < c->V; v++) if (x[v] > m) m = x[v];
    for (int v = 0; v < c->V; v++) s += exp(x[v] - m);
    for (int v = 0; v < c->V; v++)
      din[0][(size_t)n * c->V + v] += (exp(x[v] - m) / s - (v == t)) * dout[0][n];
  }
}

static void ce_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  ce_cfg *c = op->cfg;
  crossentropy_forward(ctx, out[0], out[1], in[0], in[1], c->N, c->V);
}

static void ce_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  ce_cfg *c = op->cfg;
  crossentropy_backward(ctx, din[0], dout[0], out[1], in[1], c->N, c->V);
}

static void run_ce(int N, int V, int ignore, size_t wg) {
  ce_cfg c = {N, V, ignore};
  th_op op;
  th_op_init(&op, "crossentropy");
  char wl[32];
  th_wg_label(wl, sizeof wl, wg);
  snprintf(op.shape, sizeof op.shape, "N=%d V=%d%s%s", N, V, ignore >= 0 ? " ignore=1" : "", wl);
  th_add_in(&op, "logits", (size_t)N * V, 1);
  op.in_lo[0] = -4;
  op.in_hi[0] = 4;
  th_add_in(&op, "targets", (size_t)N, 0);
  op.in_int[1] = V;
  th_add_out(&op, "losses", (size_t)N);
  th_add_out(&op, "probs", (size_t)N * V);
  op.out_nondiff[1] = 1; /* saved for backward, compared in forward only */
  op.init = ce_init;
  op.ref_fwd = ce_ref_fwd;
  op.ref_bwd = ce_ref_bwd;
  op.dev_fwd = ce_dev_fwd;
  op.dev_bwd = ce_dev_bwd;
  op.cfg = &c;
  size_t prev = wg ? db_force_row_group_size(th_ctx, wg) : 0;
  th_run_op(&op);
  if (wg) db_force_row_group_size(th_ctx, prev);
}

/* Every shape at the device's own work-group size (1 on PoCL) and at the
 * GPU-style forced sizes 64, 256 and the maximum: rows shorter than the group
 * (V = 1, 7, 10), odd row counts, V = 5000 above the largest group. */
static void run_ce_shapes(size_t wg) {
  static const struct { int N, V, ignore; } full[] = {
      {1, 7, -1}, {33, 10, -1}, {3, 1, -1}, {7, 1000, 3}, {3, 5000, 1}},
    small[] = {{1, 7, -1}, {33, 10, -1}, {3, 1, -1}, {7, 300, 3}};
  int n = th_small ? 4 : 5;
  for (int i = 0; i < n; i++) {
    if (th_small) run_ce(small[i].N, small[i].V, small[i].ignore, wg);
    else run_ce(full[i].N, full[i].V, full[i].ignore, wg);
  }
}

/* ---------------------------------------------------------------- weighted MSE */
typedef struct { int N, D; } mse_cfg;

/* in: pred (N,D), target (N,D), weight (N); out: losses (N) */
static void mse_ref_fwd(th_op *op, double **in, double **out) {
  mse_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++) {
    double s = 0;
    for (int d = 0; d < c->D; d++) {
      double e = in[0][(size_t)n * c->D + d] - in[1][(size_t)n * c->D + d];
      s += e * e;
    }
    out[0][n] = in[2][n] * s / c->D;
  }
}

static void mse_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  mse_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++)
    for (int d = 0; d < c->D; d++) {
      size_t i = (size_t)n * c->D + d;
      din[0][i] += dout[0][n] * in[2][n] * 2 * (in[0][i] - in[1][i]) / c->D;
    }
}

static void mse_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  mse_cfg *c = op->cfg;
  weighted_mse_forward(ctx, out[0], in[0], in[1], in[2], c->N, c->D);
}

static void mse_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  mse_cfg *c = op->cfg;
  (void)out;
  weighted_mse_backward(ctx, din[0], dout[0], in[0], in[1], in[2], c->N, c->D);
}

static void run_mse(int N, int D) {
  mse_cfg c = {N, D};
  th_op op;
  th_op_init(&op, "weighted_mse");
  snprintf(op.shape, sizeof op.shape, "N=%d D=%d", N, D);
  th_add_in(&op, "pred", (size_t)N * D, 1);
  th_add_in(&op, "target", (size_t)N * D, 0);
  th_add_in(&op, "weight", (size_t)N, 0);
  op.in_lo[2] = 0.25; /* EDM weights are positive */
  op.in_hi[2] = 4;
  th_add_out(&op, "losses", (size_t)N);
  op.ref_fwd = mse_ref_fwd;
  op.ref_bwd = mse_ref_bwd;
  op.dev_fwd = mse_dev_fwd;
  op.dev_bwd = mse_dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

/* shape errors */
static db_tensor e_x, e_l3, e_l4, e_tgt;
static void err_mse(void) {
  TH_EXPECT_ERROR("weighted_mse rejects a wrong-sized losses", "weighted_mse_forward: argument losses",
                  { weighted_mse_forward(th_ctx, e_l3, e_x, e_x, e_l4, 4, 8); });
}
static void err_ce_probs(void) {
  TH_EXPECT_ERROR("crossentropy rejects a wrong-sized probs", "crossentropy_forward: argument probs",
                  { crossentropy_forward(th_ctx, e_l4, e_l4, e_x, e_tgt, 4, 8); });
}
static void err_ce_dtype(void) {
  TH_EXPECT_ERROR("crossentropy rejects float targets", "crossentropy_backward: argument targets",
                  { crossentropy_backward(th_ctx, e_x, e_l4, e_x, e_l4, 4, 8); });
}
static void shape_errors(void) {
  db_arena *a = db_arena_new(th_ctx, "losses errors");
  int ishape[1] = {4};
  e_x = db_new(a, 2, 4, 8, 0, 0);
  e_l3 = db_new(a, 1, 3, 0, 0, 0);
  e_l4 = db_new(a, 1, 4, 0, 0, 0);
  e_tgt = db_alloc(a, DB_I32, 1, ishape);
  err_mse();
  err_ce_probs();
  err_ce_dtype();
  db_arena_free(a);
}

void tests_losses(void) {
  static const char *const ce_kernels[] = {"crossentropy_forward", NULL};
  size_t wg[4];
  int nwg = th_row_wg_sizes("crossentropy", ce_kernels, wg);
  for (int i = 0; i < nwg; i++) run_ce_shapes(wg[i]);
  run_mse(1, 1);
  run_mse(7, 33);
  run_mse(5, 784);

  shape_errors();
}
