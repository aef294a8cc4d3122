/* Overlapping image windows as tokens, fused with a batch gather: the input
 * pipeline's patch embedding reshape for windows wider than their stride
 * (w > p), reading the batch's rows straight out of a resident image set.
 * Forward only: its input is data, never differentiated. */
#include "ops.h"
#include <limits.h>

/* Kernel handle (db_kernel_ref, runtime/db.h): resolved once per context. */
static db_kernel_ref K_FORWARD = DB_KERNEL_REF("window_patches", "window_patches_forward");

/* kernel K_FORWARD: one work-item per output element on a (w*w, B*T) grid;
 * cl/window_patches.cl says why per element rather than per window row. */
void window_patches_forward(db_ctx *ctx, db_tensor out, db_tensor images, db_tensor idx, int B, int N_all, int H,
                            int W, int p, int w, float pad) {
  const char *op = "window_patches_forward";
  if (B < 0 || N_all <= 0 || H <= 0 || W <= 0 || p <= 0 || w <= 0)
    db_fail("%s: invalid sizes B=%d N_all=%d H=%d W=%d p=%d w=%d", op, B, N_all, H, W, p, w);
  if (H % p || W % p) db_fail("%s: H=%d and W=%d must be divisible by the patch size p=%d", op, H, W, p);
  if (w < p) db_fail("%s: window w=%d must be at least the patch size p=%d", op, w, p);
  if ((w - p) % 2) db_fail("%s: window w=%d minus patch size p=%d must be even (a centred margin)", op, w, p);
  if (w > 64) db_fail("%s: window w=%d exceeds the maximum 64", op, w);
  size_t T = (size_t)(H / p) * (size_t)(W / p), rows = (size_t)B * T;
  if (rows > INT_MAX) db_fail("%s: B*T = %zu tokens exceed the kernel's int range", op, rows);
  if (db_is_null(idx) && N_all < B)
    db_fail("%s: without idx, N_all=%d must be at least B=%d (row b is image b)", op, N_all, B);
  db_check_numel(out, rows * (size_t)w * (size_t)w, op, "out");
  db_check_numel(images, (size_t)N_all * (size_t)H * (size_t)W, op, "images");
  if (!db_is_null(idx)) {
    db_check_numel(idx, (size_t)B, op, "idx");
    if (idx.dtype != DB_I32) db_fail("%s: argument idx must be an int32 tensor", op);
  }
  if (rows == 0) return;
  /* Work-group: l0 a power of two <= ctx->wg covering the w*w elements of a
   * token (or all of ctx->wg), l1 the rest of ctx->wg, no more than needed.
   * db_launch_2d rounds the grid up; the kernel bound-checks both ids. */
  size_t ee = (size_t)w * (size_t)w, l0 = 1;
  while (l0 * 2 <= ctx->wg && l0 < ee) l0 *= 2;
  size_t l1 = ctx->wg / l0 ? ctx->wg / l0 : 1;
  while (l1 > 1 && l1 / 2 >= rows) l1 /= 2;
  db_args a = db_args_ref(ctx, &K_FORWARD);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, images);
  db_arg_tensor(&a, idx);
  db_arg_i32(&a, !db_is_null(idx));
  db_arg_i32(&a, (int)rows);
  db_arg_i32(&a, N_all);
  db_arg_i32(&a, H);
  db_arg_i32(&a, W);
  db_arg_i32(&a, p);
  db_arg_i32(&a, w);
  db_arg_f32(&a, pad);
  db_launch_2d(&a, ee, rows, l0, l1);
}
