/* Per-sample weighted MSE (the EDM denoising loss, with the per-sigma weight
 * supplied by the caller). Gradients flow to pred only. */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static db_kernel_ref K_FORWARD = DB_KERNEL_REF("edm_mse", "weighted_mse_forward");
static db_kernel_ref K_BACKWARD = DB_KERNEL_REF("edm_mse", "weighted_mse_backward");

/* Element-kernel tile: a power of two <= min(n rounded up, ctx->wg). */
static size_t elem_tile(db_ctx *ctx, int n) {
  size_t l = 1;
  while (l * 2 <= ctx->wg && l < (size_t)n) l *= 2;
  return l;
}

void weighted_mse_forward(db_ctx *ctx, db_tensor losses, db_tensor pred, db_tensor target, db_tensor weight, int N,
                          int D) {
  const char *op = "weighted_mse_forward";
  if (N < 0 || D <= 0) db_fail("%s: invalid sizes N=%d D=%d", op, N, D);
  db_check_numel(losses, (size_t)N, op, "losses");
  db_check_numel(pred, (size_t)N * D, op, "pred");
  db_check_numel(target, (size_t)N * D, op, "target");
  db_check_numel(weight, (size_t)N, op, "weight");
  size_t wg = db_row_group_size(ctx, D);
  db_args a = db_args_ref(ctx, &K_FORWARD);
  db_arg_tensor(&a, losses);
  db_arg_tensor(&a, pred);
  db_arg_tensor(&a, target);
  db_arg_tensor(&a, weight);
  db_arg_i32(&a, D);
  db_arg_local(&a, wg * sizeof(float));
  db_launch_1d(&a, (size_t)N * wg, wg);
}

void weighted_mse_backward(db_ctx *ctx, db_tensor dpred, db_tensor dlosses, db_tensor pred, db_tensor target,
                           db_tensor weight, int N, int D) {
  const char *op = "weighted_mse_backward";
  if (N < 0 || D <= 0) db_fail("%s: invalid sizes N=%d D=%d", op, N, D);
  db_check_numel(dpred, (size_t)N * D, op, "dpred");
  db_check_numel(dlosses, (size_t)N, op, "dlosses");
  db_check_numel(pred, (size_t)N * D, op, "pred");
  db_check_numel(target, (size_t)N * D, op, "target");
  db_check_numel(weight, (size_t)N, op, "weight");
  size_t l0 = elem_tile(ctx, D), l1 = ctx->wg / l0 ? ctx->wg / l0 : 1;
  if (N > 0 && l1 > (size_t)N) l1 = (size_t)N;
  db_args a = db_args_ref(ctx, &K_BACKWARD);
  db_arg_tensor(&a, dpred);
  db_arg_tensor(&a, dlosses);
  db_arg_tensor(&a, pred);
  db_arg_tensor(&a, target);
  db_arg_tensor(&a, weight);
  db_arg_i32(&a, N);
  db_arg_i32(&a, D);
  db_launch_2d(&a, (size_t)D, (size_t)N, l0, l1);
}
