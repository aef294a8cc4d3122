/* SwiGLU: out = silu(a) * b over [a | b] rows of one fused linear's output
 * (cl/swiglu.cl). W floats per work-item (ops/elementwise.c). */
#include "ops.h"

static elem_ref K_FORWARD = ELEM_REF("swiglu", "swiglu_forward");
static elem_ref K_BACKWARD = ELEM_REF("swiglu", "swiglu_backward");

static void check_sizes(const char *op, int N, int H) {
  if (N <= 0 || H <= 0) db_fail("%s: sizes must be positive, got N=%d H=%d", op, N, H);
}

void swiglu_forward(db_ctx *ctx, db_tensor out, db_tensor inp, int N, int H) {
  check_sizes("swiglu_forward", N, H);
  db_check_numel(out, (size_t)N * H, "swiglu_forward", "out");
  db_check_numel(inp, (size_t)N * 2 * H, "swiglu_forward", "inp");
  db_args a = elem_args(ctx, &K_FORWARD);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, inp);
  db_arg_i32(&a, N);
  db_arg_i32(&a, H);
  elem_launch_rows(&a, H, (size_t)N);
}

void swiglu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, int N, int H) {
  check_sizes("swiglu_backward", N, H);
  db_check_numel(dinp, (size_t)N * 2 * H, "swiglu_backward", "dinp");
  db_check_numel(dout, (size_t)N * H, "swiglu_backward", "dout");
  db_check_numel(inp, (size_t)N * 2 * H, "swiglu_backward", "inp");
  db_args a = elem_args(ctx, &K_BACKWARD);
  db_arg_tensor(&a, dinp);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, inp);
  db_arg_i32(&a, N);
  db_arg_i32(&a, H);
  elem_launch_rows(&a, H, (size_t)N);
}
