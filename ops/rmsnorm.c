/* RMSNorm without affine (the language model's AdaLN supplies the scale). */
#include "ops.h"

static db_kernel_ref K_FORWARD = DB_KERNEL_REF("rmsnorm", "rmsnorm_forward");
static db_kernel_ref K_BACKWARD = DB_KERNEL_REF("rmsnorm", "rmsnorm_backward");

void rmsnorm_forward(db_ctx *ctx, db_tensor out, db_tensor rstd, db_tensor inp, int N, int C, float eps) {
  if (N <= 0 || C <= 0) db_fail("rmsnorm_forward: sizes must be positive, got N=%d C=%d", N, C);
  db_check_numel(out, (size_t)N * C, "rmsnorm_forward", "out");
  db_check_numel(rstd, (size_t)N, "rmsnorm_forward", "rstd");
  db_check_numel(inp, (size_t)N * C, "rmsnorm_forward", "inp");
  db_args a = db_args_ref(ctx, &K_FORWARD);
  size_t wg = db_row_group_size_for(&a, C);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, rstd);
  db_arg_tensor(&a, inp);
  db_arg_i32(&a, C);
  db_arg_f32(&a, eps);
  db_arg_local(&a, wg * sizeof(float));
  db_launch_1d(&a, (size_t)N * wg, wg);
}

void rmsnorm_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, db_tensor rstd, int N, int C) {
  if (N <= 0 || C <= 0) db_fail("rmsnorm_backward: sizes must be positive, got N=%d C=%d", N, C);
  db_check_numel(dinp, (size_t)N * C, "rmsnorm_backward", "dinp");
  db_check_numel(dout, (size_t)N * C, "rmsnorm_backward", "dout");
  db_check_numel(inp, (size_t)N * C, "rmsnorm_backward", "inp");
  db_check_numel(rstd, (size_t)N, "rmsnorm_backward", "rstd");
  db_args a = db_args_ref(ctx, &K_BACKWARD);
  size_t wg = db_row_group_size_for(&a, C);
  db_arg_tensor(&a, dinp);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, inp);
  db_arg_tensor(&a, rstd);
  db_arg_i32(&a, C);
  db_arg_local(&a, wg * sizeof(float));
  db_launch_1d(&a, (size_t)N * wg, wg);
}
