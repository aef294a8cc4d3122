/* linear: out = inp W^T + b against a double reference, gradients of all three. */
#include "harness.h"

typedef struct { int N, IC, OC, bias; } lin_cfg;

static void ref_fwd(th_op *op, double **in, double **out) {
  lin_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->OC; o++) {
      double s = c->bias ? in[2][o] : 0;
      for (int i = 0; i < c->IC; i++) s += in[0][(size_t)n * c->IC + i] * in[1][(size_t)o * c->IC + i];
      out[0][(size_t)n * c->OC + o] = s;
    }
}

static void ref_bwd(th_op *op, double **in, double **dout, double **din) {
  lin_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->OC; o++) {
      double g = dout[0][(size_t)n * c->OC + o];
      for (int i = 0; i < c->IC; i++) {
        din[0][(size_t)n * c->IC + i] += g * in[1][(size_t)o * c->IC + i];
        din[1][(size_t)o * c->IC + i] += g * in[0][(size_t)n * c->IC + i];
      }
      if (c->bias) din[2][o] += g;
    }
}

static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  lin_cfg *c = op->cfg;
  linear_forward(ctx, out[0], in[0], in[1], c->bias ? in[2] : DB_NULL, c->N, c->IC, c->OC);
}

static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  lin_cfg *c = op->cfg;
  (void)out;
  linear_backward(ctx, din[0], din[1], c->bias ? din[2] : DB_NULL, dout[0], in[0], in[1], c->N, c->IC, c->OC);
}

static void run(int N, int IC, int OC, int bias) {
  lin_cfg c = {N, IC, OC, bias};
  th_op op;
  th_op_init(&op, "linear");
  snprintf(op.shape, sizeof op.shape, "N=%d IC=%d OC=%d%s W=%d", N, IC, OC, bias ? "" : " nobias", elem_width(th_ctx));
  th_add_in(&op, "inp", (size_t)N * IC, 1);
  th_add_in(&op, "weight", (size_t)OC * IC, 1);
  if (bias) th_add_in(&op, "bias", (size_t)OC, 1);
  th_add_out(&op, "out", (size_t)N * OC);
  op.ref_fwd = ref_fwd;
  op.ref_bwd = ref_bwd;
  op.dev_fwd = dev_fwd;
  op.dev_bwd = dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

void tests_linear(void) {
  static const int widths[] = {4, 16}; /* the bias kernel's GPU and CPU vector widths */
  for (int w = 0; w < 2; w++) {
    elem_force_width(widths[w]);
    run(1, 1, 1, 1);
    run(7, 33, 5, 1);
    run(197, 24, 72, 1);
    run(33, 17, 9, 0);
    run(392, 64, 130, 1); /* weight gradient over many rows; the bias gradient in row chunks */
  }
  elem_force_width(0);
  TH_EXPECT_ERROR("linear rejects a wrong-sized weight", "linear_forward: argument weight", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 2, 4, 8, 0, 0), w = db_new(a, 2, 3, 7, 0, 0), y = db_new(a, 2, 4, 3, 0, 0);
    linear_forward(th_ctx, y, x, w, DB_NULL, 4, 8, 3);
  });
}
