/* Gated residual x + g ⊙ y of AdaLN-Zero, g per sample and channel.
 * W floats per work-item on a (chunks of C, rows) grid (ops/elementwise.c). */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static elem_ref K_FORWARD = ELEM_REF("gated_residual", "gated_residual_forward");
static elem_ref K_BACKWARD_XY = ELEM_REF("gated_residual", "gated_residual_backward_xy");
static elem_ref K_BACKWARD_GATE = ELEM_REF("gated_residual", "gated_residual_backward_gate");

static void check(const char *op, db_tensor a, db_tensor b, db_tensor c3, db_tensor mod, int gate_col, int B, int T,
                  int C, int ld, const char *an, const char *bn, const char *cn, const char *mn) {
  if (B <= 0 || T <= 0 || C <= 0) db_fail("%s: sizes must be positive, got B=%d T=%d C=%d", op, B, T, C);
  if (gate_col < 0 || gate_col + C > ld) db_fail("%s: gate column %d of width %d does not fit rows of %d", op, gate_col, C, ld);
  size_t n = (size_t)B * T * C;
  db_check_numel(a, n, op, an);
  db_check_numel(b, n, op, bn);
  db_check_numel(c3, n, op, cn);
  db_check_numel(mod, (size_t)B * ld, op, mn);
}

void gated_residual_forward(db_ctx *ctx, db_tensor out, db_tensor x, db_tensor y, db_tensor mod, int gate_col, int B,
                            int T, int C, int ld) {
  check("gated_residual_forward", out, x, y, mod, gate_col, B, T, C, ld, "out", "x", "y", "mod");
  db_args a = elem_args(ctx, &K_FORWARD);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, x);
  db_arg_tensor(&a, y);
  db_arg_tensor(&a, mod);
  db_arg_i32(&a, gate_col);
  db_arg_i32(&a, B);
  db_arg_i32(&a, T);
  db_arg_i32(&a, C);
  db_arg_i32(&a, ld);
  elem_launch_rows(&a, C, (size_t)B * T);
}

void gated_residual_backward(db_ctx *ctx, db_tensor dx, db_tensor dy, db_tensor dmod, db_tensor dout, db_tensor y,
                             db_tensor mod, int gate_col, int B, int T, int C, int ld) {
  int has_dx = !db_is_null(dx);
  check("gated_residual_backward", has_dx ? dx : dy, dy, dout, dmod, gate_col, B, T, C, ld, "dx", "dy", "dout", "dmod");
  db_check_numel(y, (size_t)B * T * C, "gated_residual_backward", "y");
  db_check_numel(mod, (size_t)B * ld, "gated_residual_backward", "mod");
  db_args a = elem_args(ctx, &K_BACKWARD_XY);
  db_arg_tensor(&a, has_dx ? dx : dy);
  db_arg_tensor(&a, dy);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, mod);
  db_arg_i32(&a, has_dx);
  db_arg_i32(&a, gate_col);
  db_arg_i32(&a, B);
  db_arg_i32(&a, T);
  db_arg_i32(&a, C);
  db_arg_i32(&a, ld);
  elem_launch_rows(&a, C, (size_t)B * T);
  db_args r = elem_args(ctx, &K_BACKWARD_GATE);
  db_arg_tensor(&r, dmod);
  db_arg_tensor(&r, dout);
  db_arg_tensor(&r, y);
  db_arg_i32(&r, gate_col);
  db_arg_i32(&r, B);
  db_arg_i32(&r, T);
  db_arg_i32(&r, C);
  db_arg_i32(&r, ld);
  elem_launch_rows(&r, C, (size_t)B);
}
