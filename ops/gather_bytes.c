/* gather_bytes: a training batch gathered from a resident uint8 table and
 * converted to float in the same pass (cl/gather_bytes.cl says how the
 * conversion matches the host's `(float)v / div + shift` bit for bit). The
 * image tasks keep their datasets as bytes on the device (a quarter of the
 * float32 size) and gather each batch with it. Forward only: its input is
 * data. */
#include "ops.h"
#include <math.h>

static db_kernel_ref K_FORWARD = DB_KERNEL_REF("gather_bytes", "gather_bytes_forward");

void gather_bytes_forward(db_ctx *ctx, db_tensor out, db_tensor idx, db_tensor table, int B, int D, int V, float div,
                          float shift) {
  const char *op = "gather_bytes_forward";
  if (B < 0 || D <= 0 || V <= 0) db_fail("%s: invalid sizes B=%d D=%d V=%d", op, B, D, V);
  float rcp = 1.0f / div;
  /* the kernel's exact-quotient step needs 1/div and 255/div normal floats (cl/gather_bytes.cl) */
  if (!isfinite(div) || !isnormal(rcp) || !isfinite(255.0f * rcp))
    db_fail("%s: divisor %g must be finite, with 1/div and 255/div normal floats", op, div);
  if (!isfinite(shift)) db_fail("%s: shift %g must be finite", op, shift);
  db_check_numel(out, (size_t)B * D, op, "out");
  db_check_numel(idx, (size_t)B, op, "idx");
  if (idx.dtype != DB_I32) db_fail("%s: argument idx must be an int32 tensor", op);
  db_check_numel_u8(table, (size_t)V * D, op, "table");
  if (B == 0) return;
  /* a power-of-two tile of columns, the rest of ctx->wg over rows (as embedding_forward) */
  size_t l0 = 1;
  while (l0 * 2 <= ctx->wg && l0 < (size_t)D) l0 *= 2;
  size_t l1 = ctx->wg / l0 ? ctx->wg / l0 : 1;
  if (l1 > (size_t)B) l1 = (size_t)B;
  db_args a = db_args_ref(ctx, &K_FORWARD);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, idx);
  db_arg_tensor(&a, table);
  db_arg_i32(&a, B);
  db_arg_i32(&a, D);
  db_arg_i32(&a, V);
  db_arg_f32(&a, div);
  db_arg_f32(&a, rcp);
  db_arg_f32(&a, shift);
  db_launch_2d(&a, (size_t)D, (size_t)B, l0, l1);
}
