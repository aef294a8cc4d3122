/* mean_tokens: the mean over the T tokens of (B,T,C): the classifier's pooling.
 * W floats per work-item on (chunks of C, samples or rows) grids (ops/elementwise.c). */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static elem_ref K_FORWARD = ELEM_REF("mean_tokens", "mean_tokens_forward");
static elem_ref K_BACKWARD = ELEM_REF("mean_tokens", "mean_tokens_backward");

void mean_tokens_forward(db_ctx *ctx, db_tensor out, db_tensor x, int B, int T, int C) {
  db_check_numel(out, (size_t)B * C, "mean_tokens_forward", "out");
  db_check_numel(x, (size_t)B * T * C, "mean_tokens_forward", "x");
  db_args k = elem_args(ctx, &K_FORWARD);
  db_arg_tensor(&k, out);
  db_arg_tensor(&k, x);
  db_arg_i32(&k, B);
  db_arg_i32(&k, T);
  db_arg_i32(&k, C);
  elem_launch_rows(&k, C, (size_t)B);
}

void mean_tokens_backward(db_ctx *ctx, db_tensor dx, db_tensor dout, int B, int T, int C) {
  db_check_numel(dx, (size_t)B * T * C, "mean_tokens_backward", "dx");
  db_check_numel(dout, (size_t)B * C, "mean_tokens_backward", "dout");
  db_args k = elem_args(ctx, &K_BACKWARD);
  db_arg_tensor(&k, dx);
  db_arg_tensor(&k, dout);
  db_arg_i32(&k, B);
  db_arg_i32(&k, T);
  db_arg_i32(&k, C);
  elem_launch_rows(&k, C, (size_t)B * T);
}
