/* bias_gelu: out = gelu(inp + bias) row-wise, the DiT MLP's fc1 bias and
 * activation fused into one pass (fc1's linear then runs without bias).
 * W floats per work-item on a (chunks of C, rows) grid (ops/elementwise.c). */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static elem_ref K_FORWARD = ELEM_REF("bias_gelu", "bias_gelu_forward");
static elem_ref K_BACKWARD_INP = ELEM_REF("bias_gelu", "bias_gelu_backward_inp");
static elem_ref K_BACKWARD_BIAS = ELEM_REF("bias_gelu", "bias_gelu_backward_bias");

static void check(const char *op, db_tensor a, db_tensor b, db_tensor x, db_tensor bias, int N, int C,
                  const char *an, const char *bn) {
  if (N <= 0 || C <= 0) db_fail("%s: sizes must be positive, got N=%d C=%d", op, N, C);
  db_check_numel(a, (size_t)N * C, op, an);
  db_check_numel(b, (size_t)N * C, op, bn);
  db_check_numel(x, (size_t)N * C, op, "inp");
  db_check_numel(bias, (size_t)C, op, "bias");
}

void bias_gelu_forward(db_ctx *ctx, db_tensor out, db_tensor inp, db_tensor bias, int N, int C) {
  check("bias_gelu_forward", out, inp, inp, bias, N, C, "out", "inp");
  db_args a = elem_args(ctx, &K_FORWARD);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, inp);
  db_arg_tensor(&a, bias);
  db_arg_i32(&a, N);
  db_arg_i32(&a, C);
  elem_launch_rows(&a, C, (size_t)N);
}

static void launch_inp(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, db_tensor bias, int accumulate,
                       int N, int C) {
  db_args a = elem_args(ctx, &K_BACKWARD_INP);
  db_arg_tensor(&a, dinp);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, inp);
  db_arg_tensor(&a, bias);
  db_arg_i32(&a, accumulate);
  db_arg_i32(&a, N);
  db_arg_i32(&a, C);
  elem_launch_rows(&a, C, (size_t)N);
}

void bias_gelu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dbias, db_tensor dout, db_tensor inp, db_tensor bias,
                        int N, int C) {
  check("bias_gelu_backward", dinp, dout, inp, bias, N, C, "dinp", "dout");
  if (!db_is_null(dbias)) { /* first: it reads dout, which may not alias dinp, but keep the order obvious */
    db_check_numel(dbias, (size_t)C, "bias_gelu_backward", "dbias");
    db_args a = elem_args(ctx, &K_BACKWARD_BIAS);
    db_arg_tensor(&a, dbias);
    db_arg_tensor(&a, dout);
    db_arg_tensor(&a, inp);
    db_arg_tensor(&a, bias);
    db_arg_i32(&a, N);
    db_arg_i32(&a, C);
    elem_launch(&a, (size_t)C);
  }
  launch_inp(ctx, dinp, dout, inp, bias, 1, N, C);
}

void bias_gelu_backward_inplace(db_ctx *ctx, db_tensor d, db_tensor inp, db_tensor bias, int N, int C) {
  check("bias_gelu_backward_inplace", d, d, inp, bias, N, C, "d", "d");
  launch_inp(ctx, d, d, inp, bias, 0, N, C);
}
