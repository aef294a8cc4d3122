/* swiglu: plain-C double reference, device forward and accumulating
 * backward, finite differences through th_run_op, at both elementwise widths
 * (4 and 16: vector chunks and the scalar tail of a row), odd N and H, large
 * |a| (the sigmoid's tails: no overflow, no NaN). */
#include "harness.h"

typedef struct { int N, H; } sg_cfg;

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

static void ref_fwd(th_op *op, double **in, double **out) {
  sg_cfg *c = op->cfg;
  for (int r = 0; r < c->N; r++)
    for (int i = 0; i < c->H; i++) {
      double a = in[0][(size_t)r * 2 * c->H + i], b = in[0][(size_t)r * 2 * c->H + c->H + i];
      out[0][(size_t)r * c->H + i] = a * sig(a) * b;
    }
}

static void ref_bwd(th_op *op, double **in, double **dout, double **din) {
  sg_cfg *c = op->cfg;
  for (int r = 0; r < c->N; r++)
    for (int i = 0; i < c->H; i++) {
      size_t ia = (size_t)r * 2 * c->H + i, ib = ia + c->H;
      double a = in[0][ia], b = in[0][ib], s = sig(a), g = dout[0][(size_t)r * c->H + i];
      din[0][ia] += g * b * s * (1 + a * (1 - s));
      din[0][ib] += g * a * s;
    }
}

static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  sg_cfg *c = op->cfg;
  swiglu_forward(ctx, out[0], in[0], c->N, c->H);
}

static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  sg_cfg *c = op->cfg;
  (void)out;
  swiglu_backward(ctx, din[0], dout[0], in[0], c->N, c->H);
}

static void run(int N, int H, double range) {
  sg_cfg c = {N, H};
  th_op op;
  th_op_init(&op, "swiglu");
  snprintf(op.shape, sizeof op.shape, "W=%d N=%d H=%d |x|<=%g", elem_width(th_ctx), N, H, range);
  th_add_in(&op, "inp", (size_t)N * 2 * H, 1);
  op.in_lo[0] = -range;
  op.in_hi[0] = range;
  th_add_out(&op, "out", (size_t)N * H);
  op.ref_fwd = ref_fwd;
  op.ref_bwd = ref_bwd;
  op.dev_fwd = dev_fwd;
  op.dev_bwd = dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

void tests_swiglu(void) {
  for (int w = 4; w <= 16; w += 12) {
    elem_force_width(w);
    run(1, 1, 3);
    run(3, 7, 3);
    run(5, 37, 3);
    run(2, 16, 100); /* the tails: exp(-a) overflows float at a < -88 */
    if (!th_small) {
      run(13, 33, 6);
      run(9, 64, 3);
      run(31, 257, 4);
    }
  }
  elem_force_width(0);
  TH_EXPECT_ERROR("swiglu rejects a wrong-sized inp", "swiglu_forward: argument inp", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor o = db_new(a, 2, 3, 4, 0, 0), x = db_new(a, 2, 3, 4, 0, 0);
    swiglu_forward(th_ctx, o, x, 3, 4);
  });
  TH_EXPECT_ERROR("swiglu_backward rejects H = 0", "swiglu_backward: sizes must be positive", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 2, 3, 4, 0, 0);
    swiglu_backward(th_ctx, x, x, x, 3, 0);
  });
}
