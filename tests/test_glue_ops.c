/* The three small glue ops (ops/rowscale_add.c, ops/add_broadcast.c,
 * ops/mean_tokens.c) against double references and finite differences. */
#include "harness.h"

typedef struct { int N, D, has_x; size_t n, m; int B, T, C; } sa_cfg;

/* in: a (N), x (N,D), b (N), y (N,D) — a and b are not differentiated */
static void rs_fwd(th_op *op, double **in, double **out) {
  sa_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++)
    for (int d = 0; d < c->D; d++) {
      size_t i = (size_t)n * c->D + d;
      out[0][i] = in[2][n] * in[3][i] + (c->has_x ? in[0][n] * in[1][i] : 0);
    }
}
static void rs_bwd(th_op *op, double **in, double **dout, double **din) {
  sa_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++)
    for (int d = 0; d < c->D; d++) {
      size_t i = (size_t)n * c->D + d;
      if (c->has_x) din[1][i] += in[0][n] * dout[0][i];
      din[3][i] += in[2][n] * dout[0][i];
    }
}
static void rs_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  sa_cfg *c = op->cfg;
  rowscale_add_forward(ctx, out[0], in[0], c->has_x ? in[1] : DB_NULL, in[2], in[3], c->N, c->D);
}
static void rs_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  sa_cfg *c = op->cfg;
  (void)out;
  rowscale_add_backward(ctx, c->has_x ? din[1] : DB_NULL, din[3], dout[0], in[0], in[2], c->N, c->D);
}

static void ab_fwd(th_op *op, double **in, double **out) {
  sa_cfg *c = op->cfg;
  for (size_t i = 0; i < c->n; i++) out[0][i] = in[0][i] + in[1][i % c->m];
}
static void ab_bwd(th_op *op, double **in, double **dout, double **din) {
  sa_cfg *c = op->cfg;
  (void)in;
  for (size_t i = 0; i < c->n; i++) { din[0][i] += dout[0][i]; din[1][i % c->m] += dout[0][i]; }
}
static void ab_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  sa_cfg *c = op->cfg;
  add_broadcast_forward(ctx, out[0], in[0], in[1], c->n, c->m);
}
static void ab_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  sa_cfg *c = op->cfg;
  (void)in; (void)out;
  add_broadcast_backward(ctx, din[0], din[1], dout[0], c->n, c->m);
}

static void mt_fwd(th_op *op, double **in, double **out) {
  sa_cfg *c = op->cfg;
  for (int b = 0; b < c->B; b++)
    for (int k = 0; k < c->C; k++) {
      double s = 0;
      for (int t = 0; t < c->T; t++) s += in[0][((size_t)b * c->T + t) * c->C + k];
      out[0][(size_t)b * c->C + k] = s / c->T;
    }
}
static void mt_bwd(th_op *op, double **in, double **dout, double **din) {
  sa_cfg *c = op->cfg;
  (void)in;
  for (int b = 0; b < c->B; b++)
    for (int t = 0; t < c->T; t++)
      for (int k = 0; k < c->C; k++) din[0][((size_t)b * c->T + t) * c->C + k] += dout[0][(size_t)b * c->C + k] / c->T;
}
static void mt_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  sa_cfg *c = op->cfg;
  mean_tokens_forward(ctx, out[0], in[0], c->B, c->T, c->C);
}
static void mt_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  sa_cfg *c = op->cfg;
  (void)in; (void)out;
  mean_tokens_backward(ctx, din[0], dout[0], c->B, c->T, c->C);
}

static void run_rowscale(int N, int D, int has_x) {
  sa_cfg c = {.N = N, .D = D, .has_x = has_x};
  th_op op;
  th_op_init(&op, elem_width(th_ctx) == 4 ? "rowscale_add W=4" : "rowscale_add W=16");
  snprintf(op.shape, sizeof op.shape, "N=%d D=%d%s", N, D, has_x ? "" : " no x");
  th_add_in(&op, "a", (size_t)N, 0);
  th_add_in(&op, "x", (size_t)N * D, has_x);
  th_add_in(&op, "b", (size_t)N, 0);
  th_add_in(&op, "y", (size_t)N * D, 1);
  th_add_out(&op, "out", (size_t)N * D);
  op.ref_fwd = rs_fwd; op.ref_bwd = rs_bwd; op.dev_fwd = rs_dev_fwd; op.dev_bwd = rs_dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

static void run_broadcast(size_t n, size_t m) {
  sa_cfg c = {.n = n, .m = m};
  th_op op;
  th_op_init(&op, elem_width(th_ctx) == 4 ? "add_broadcast W=4" : "add_broadcast W=16");
  snprintf(op.shape, sizeof op.shape, "n=%zu m=%zu", n, m);
  th_add_in(&op, "x", n, 1);
  th_add_in(&op, "y", m, 1);
  th_add_out(&op, "out", n);
  op.ref_fwd = ab_fwd; op.ref_bwd = ab_bwd; op.dev_fwd = ab_dev_fwd; op.dev_bwd = ab_dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

static void run_mean(int B, int T, int C) {
  sa_cfg c = {.B = B, .T = T, .C = C};
  th_op op;
  th_op_init(&op, elem_width(th_ctx) == 4 ? "mean_tokens W=4" : "mean_tokens W=16");
  snprintf(op.shape, sizeof op.shape, "B=%d T=%d C=%d", B, T, C);
  th_add_in(&op, "x", (size_t)B * T * C, 1);
  th_add_out(&op, "out", (size_t)B * C);
  op.ref_fwd = mt_fwd; op.ref_bwd = mt_bwd; op.dev_fwd = mt_dev_fwd; op.dev_bwd = mt_dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}


/* concat_rows: in a (B or 1, Ra, D), c (B or 1, Rc, D) */
typedef struct { int B, Ra, Rc, D, ab, cb; } cr_cfg;
static void cr_fwd(th_op *op, double **in, double **out) {
  cr_cfg *c = op->cfg;
  int R = c->Ra + c->Rc;
  for (int b = 0; b < c->B; b++)
    for (int r = 0; r < R; r++)
      for (int d = 0; d < c->D; d++)
        out[0][((size_t)b * R + r) * c->D + d] =
            r < c->Ra ? in[0][((size_t)(c->ab ? 0 : b) * c->Ra + r) * c->D + d]
                      : in[1][((size_t)(c->cb ? 0 : b) * c->Rc + r - c->Ra) * c->D + d];
}
static void cr_bwd(th_op *op, double **in, double **dout, double **din) {
  cr_cfg *c = op->cfg;
  (void)in;
  int R = c->Ra + c->Rc;
  for (int b = 0; b < c->B; b++)
    for (int r = 0; r < R; r++)
      for (int d = 0; d < c->D; d++) {
        double g = dout[0][((size_t)b * R + r) * c->D + d];
        if (r < c->Ra) din[0][((size_t)(c->ab ? 0 : b) * c->Ra + r) * c->D + d] += g;
        else din[1][((size_t)(c->cb ? 0 : b) * c->Rc + r - c->Ra) * c->D + d] += g;
      }
}
static void cr_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  cr_cfg *c = op->cfg;
  concat_rows_forward(ctx, out[0], in[0], in[1], c->B, c->Ra, c->Rc, c->D, c->ab, c->cb);
}
static void cr_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  cr_cfg *c = op->cfg;
  (void)in; (void)out;
  concat_rows_backward(ctx, din[0], din[1], dout[0], c->B, c->Ra, c->Rc, c->D, c->ab, c->cb);
}
static void run_concat(int B, int Ra, int Rc, int D, int ab, int cb) {
  cr_cfg c = {B, Ra, Rc, D, ab, cb};
  th_op op;
  th_op_init(&op, "concat_rows");
  snprintf(op.shape, sizeof op.shape, "B=%d Ra=%d%s Rc=%d%s D=%d", B, Ra, ab ? "(shared)" : "", Rc,
           cb ? "(shared)" : "", D);
  th_add_in(&op, "a", (size_t)(ab ? 1 : B) * (Ra ? Ra : 1) * D, Ra > 0);
  th_add_in(&op, "c", (size_t)(cb ? 1 : B) * (Rc ? Rc : 1) * D, Rc > 0);
  th_add_out(&op, "out", (size_t)B * (Ra + Rc) * D);
  op.ref_fwd = cr_fwd; op.ref_bwd = cr_bwd; op.dev_fwd = cr_dev_fwd; op.dev_bwd = cr_dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

/* Both vector widths (16 floats per work-item, CPU; 4, GPU): row lengths 33,
 * 7, 197*5 leave a partial chunk, 784 and 64 none. */
void tests_glue_ops(void) {
  for (int w = 4; w <= 16; w += 12) {
    elem_force_width(w);
    run_rowscale(1, 1, 1);
    run_rowscale(7, 33, 1);
    run_rowscale(5, 784, 0);
    run_broadcast(1, 1);
    run_broadcast(7 * 33, 33);
    run_broadcast(3 * 197 * 5, 197 * 5);
    run_broadcast(4 * 64, 64);
    run_mean(1, 1, 1);
    run_mean(3, 197, 7);
    run_mean(2, 5, 64);
  }
  elem_force_width(0);
  /* the language model's [noisy | clean] tokens and its (sigma | shared clean) conditioning rows */
  run_concat(3, 5, 5, 7, 0, 0);
  run_concat(4, 1, 1, 33, 0, 1);
  run_concat(2, 3, 4, 64, 1, 0);
  run_concat(5, 0, 1, 9, 0, 1);
  run_concat(1, 2, 0, 5, 0, 0);
  run_concat(th_small ? 130 : 600, 1, 1, 3, 0, 1); /* more samples than one column-sum chunk (128) */
  TH_EXPECT_ERROR("concat_rows rejects a wrong output size", "concat_rows_forward", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 1, 10, 0, 0, 0);
    concat_rows_forward(th_ctx, x, x, x, 2, 1, 1, 3, 0, 0);
  });
  TH_EXPECT_ERROR("add_broadcast rejects a non-dividing repeat", "not a whole number of repeats", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 1, 10, 0, 0, 0), y = db_new(a, 1, 3, 0, 0, 0);
    add_broadcast_forward(th_ctx, x, x, y, 10, 3);
  });
}
