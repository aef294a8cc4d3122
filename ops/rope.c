/* Rotary position embedding (cl/rope.cl), in place on the q and k columns of
 * a packed qkv row; the backward is the inverse rotation, also in place. */
#include "ops.h"
#include <math.h>

static db_kernel_ref K_ROTATE = DB_KERNEL_REF("rope", "rope_rotate");

static void rope(db_ctx *ctx, const char *op, db_tensor x, int N, int ncols, int ld, int hs, int pos0, int period,
                 float base, float sign) {
  if (N <= 0 || ncols <= 0 || ld <= 0 || hs <= 0)
    db_fail("%s: sizes must be positive, got N=%d ncols=%d ld=%d hs=%d", op, N, ncols, ld, hs);
  if (hs % 2 != 0) db_fail("%s: head size hs=%d must be even (pairs i, i + hs/2)", op, hs);
  if (ncols % hs != 0) db_fail("%s: ncols=%d is not a multiple of the head size hs=%d", op, ncols, hs);
  if (ncols > ld) db_fail("%s: ncols=%d exceeds the row length ld=%d", op, ncols, ld);
  if (period <= 0 || pos0 < 0) db_fail("%s: need period >= 1 and pos0 >= 0, got period=%d pos0=%d", op, period, pos0);
  if (!(base > 1.0f) || !isfinite(base)) db_fail("%s: base must be finite and > 1, got %g", op, (double)base);
  /* rows strided by ld, the last one read only up to ncols: a view that starts
   * inside a row works (the decoder rotates row `pos` of every sequence's K/V cache) */
  size_t need = (size_t)(N - 1) * ld + (size_t)ncols;
  if (db_numel(x) < need)
    db_fail("%s: argument x holds %zu elements, %d rows of stride %d and %d columns need %zu", op, db_numel(x), N, ld,
            ncols, need);
  db_args a = db_args_ref(ctx, &K_ROTATE);
  db_arg_tensor(&a, x);
  db_arg_i32(&a, N);
  db_arg_i32(&a, ncols);
  db_arg_i32(&a, ld);
  db_arg_i32(&a, hs);
  db_arg_i32(&a, pos0);
  db_arg_i32(&a, period);
  db_arg_f32(&a, (float)log2((double)base));
  db_arg_f32(&a, sign);
  db_launch_1d(&a, (size_t)N * (ncols / 2), 0);
}

void rope_forward(db_ctx *ctx, db_tensor x, int N, int ncols, int ld, int hs, int pos0, int period, float base) {
  rope(ctx, "rope_forward", x, N, ncols, ld, hs, pos0, period, base, 1.0f);
}

void rope_backward(db_ctx *ctx, db_tensor dx, int N, int ncols, int ld, int hs, int pos0, int period, float base) {
  rope(ctx, "rope_backward", dx, N, ncols, ld, hs, pos0, period, base, -1.0f);
}
