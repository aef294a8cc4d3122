/* Softmax cross-entropy over V classes, with ignored (-1) targets. */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static db_kernel_ref K_FORWARD = DB_KERNEL_REF("crossentropy", "crossentropy_forward");
static db_kernel_ref K_BACKWARD = DB_KERNEL_REF("crossentropy", "crossentropy_backward");

/* Element-kernel tile: a power of two <= min(n rounded up, ctx->wg). */
static size_t elem_tile(db_ctx *ctx, int n) {
  size_t l = 1;
  while (l * 2 <= ctx->wg && l < (size_t)n) l *= 2;
  return l;
}

static void check_i32(db_tensor t, const char *op, const char *arg) {
  if (t.dtype != DB_I32) db_fail("%s: argument %s must be an int32 tensor", op, arg);
}

void crossentropy_forward(db_ctx *ctx, db_tensor losses, db_tensor probs, db_tensor logits, db_tensor targets, int N,
                          int V) {
  const char *op = "crossentropy_forward";
  if (N < 0 || V <= 0) db_fail("%s: invalid sizes N=%d V=%d", op, N, V);
  db_check_numel(losses, (size_t)N, op, "losses");
  db_check_numel(probs, (size_t)N * V, op, "probs");
  db_check_numel(logits, (size_t)N * V, op, "logits");
  db_check_numel(targets, (size_t)N, op, "targets");
  check_i32(targets, op, "targets");
  db_args a = db_args_ref(ctx, &K_FORWARD);
  size_t wg = db_row_group_size_for(&a, V);
  db_arg_tensor(&a, losses);
  db_arg_tensor(&a, probs);
  db_arg_tensor(&a, logits);
  db_arg_tensor(&a, targets);
  db_arg_i32(&a, V);
  db_arg_local(&a, wg * sizeof(float));
  db_launch_1d(&a, (size_t)N * wg, wg);
}

void crossentropy_backward(db_ctx *ctx, db_tensor dlogits, db_tensor dlosses, db_tensor probs, db_tensor targets,
                           int N, int V) {
  const char *op = "crossentropy_backward";
  if (N < 0 || V <= 0) db_fail("%s: invalid sizes N=%d V=%d", op, N, V);
  db_check_numel(dlogits, (size_t)N * V, op, "dlogits");
  db_check_numel(dlosses, (size_t)N, op, "dlosses");
  db_check_numel(probs, (size_t)N * V, op, "probs");
  db_check_numel(targets, (size_t)N, op, "targets");
  check_i32(targets, op, "targets");
  size_t l0 = elem_tile(ctx, V), l1 = ctx->wg / l0 ? ctx->wg / l0 : 1;
  if (l1 > (size_t)N && N > 0) l1 = (size_t)N;
  db_args a = db_args_ref(ctx, &K_BACKWARD);
  db_arg_tensor(&a, dlogits);
  db_arg_tensor(&a, dlosses);
  db_arg_tensor(&a, probs);
  db_arg_tensor(&a, targets);
  db_arg_i32(&a, N);
  db_arg_i32(&a, V);
  db_launch_2d(&a, (size_t)V, (size_t)N, l0, l1);
}
