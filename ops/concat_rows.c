/* concat_rows: two row blocks per sample joined into one sequence, the
 * language model's [noisy | clean] input and its two conditioning rows per
 * sequence (sigma embedding | learned clean embedding). A broadcast source is
 * one block shared by every sample; its gradient is the sum over samples,
 * taken by gemm_colsum_acc on the strided gradient (no copy, fixed order). */
#include "ops.h"
#include <limits.h>

static db_kernel_ref K_FORWARD = DB_KERNEL_REF("concat_rows", "concat_rows_forward");
static db_kernel_ref K_BACKWARD = DB_KERNEL_REF("concat_rows", "concat_rows_backward");

static void check_dims(const char *op, int B, int Ra, int Rc, int D) {
  if (B <= 0 || Ra < 0 || Rc < 0 || Ra + Rc <= 0 || D <= 0)
    db_fail("%s: B=%d Ra=%d Rc=%d D=%d: want B, D > 0, Ra, Rc >= 0 and Ra + Rc > 0", op, B, Ra, Rc, D);
  if ((size_t)B * (size_t)(Ra + Rc) * (size_t)D > (size_t)INT_MAX * 16)
    db_fail("%s: B=%d R=%d D=%d exceeds the kernel's index range", op, B, Ra + Rc, D);
}

static size_t src_numel(int B, int R, int D, int bcast) { return (size_t)(bcast ? 1 : B) * R * D; }

void concat_rows_forward(db_ctx *ctx, db_tensor out, db_tensor a, db_tensor c, int B, int Ra, int Rc, int D,
                         int a_bcast, int c_bcast) {
  const char *op = "concat_rows_forward";
  check_dims(op, B, Ra, Rc, D);
  db_check_numel(out, (size_t)B * (Ra + Rc) * D, op, "out");
  if (Ra) db_check_numel(a, src_numel(B, Ra, D, a_bcast), op, "a");
  if (Rc) db_check_numel(c, src_numel(B, Rc, D, c_bcast), op, "c");
  if (!Ra) a = c; /* an empty side is never read, but the kernel needs a buffer */
  if (!Rc) c = a;
  db_args k = db_args_ref(ctx, &K_FORWARD);
  db_arg_tensor(&k, out);
  db_arg_tensor(&k, a);
  db_arg_tensor(&k, c);
  db_arg_i32(&k, B);
  db_arg_i32(&k, Ra);
  db_arg_i32(&k, Rc);
  db_arg_i32(&k, D);
  db_arg_u64(&k, a_bcast ? 0 : (uint64_t)Ra * D);
  db_arg_u64(&k, c_bcast ? 0 : (uint64_t)Rc * D);
  db_launch_2d(&k, (size_t)D, (size_t)B * (Ra + Rc), 64, 1);
}

static void backward_part(db_ctx *ctx, db_tensor dsrc, db_tensor dout, int B, int R, int r0, int Rs, int D,
                          int bcast, const char *name) {
  if (db_is_null(dsrc) || Rs == 0) return;
  db_check_numel(dsrc, src_numel(B, Rs, D, bcast), "concat_rows_backward", name);
  if (bcast) { /* (Rs*D) += column sums over the B samples of the strided rows */
    int shape[1] = {(int)(db_numel(dout) - (size_t)r0 * D)};
    gemm_colsum_acc(ctx, dsrc, db_view(dout, (size_t)r0 * D, 1, shape), B, Rs * D, R * D);
    return;
  }
  db_args k = db_args_ref(ctx, &K_BACKWARD);
  db_arg_tensor(&k, dsrc);
  db_arg_tensor(&k, dout);
  db_arg_i32(&k, B);
  db_arg_i32(&k, R);
  db_arg_i32(&k, r0);
  db_arg_i32(&k, Rs);
  db_arg_i32(&k, D);
  db_launch_2d(&k, (size_t)D, (size_t)B * Rs, 64, 1);
}

void concat_rows_backward(db_ctx *ctx, db_tensor da, db_tensor dc, db_tensor dout, int B, int Ra, int Rc, int D,
                          int a_bcast, int c_bcast) {
  const char *op = "concat_rows_backward";
  check_dims(op, B, Ra, Rc, D);
  db_check_numel(dout, (size_t)B * (Ra + Rc) * D, op, "dout");
  backward_part(ctx, da, dout, B, Ra + Rc, 0, Ra, D, a_bcast, "da");
  backward_part(ctx, dc, dout, B, Ra + Rc, Ra, Rc, D, c_bcast, "dc");
}
