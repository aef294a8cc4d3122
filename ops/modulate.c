/* AdaLN modulate: x * (1 + scale) + shift with per-sample scale and shift.
 * W floats per work-item on a (chunks of C, rows) grid (ops/elementwise.c). */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static elem_ref K_FORWARD = ELEM_REF("modulate", "modulate_forward");
static elem_ref K_BACKWARD_INP = ELEM_REF("modulate", "modulate_backward_inp");
static elem_ref K_BACKWARD_MOD = ELEM_REF("modulate", "modulate_backward_mod");

static void check(const char *op, db_tensor x, db_tensor y, db_tensor mod, int c1, int c2, int B, int T, int C,
                  int ld, const char *xn, const char *yn, const char *mn) {
  if (B <= 0 || T <= 0 || C <= 0) db_fail("%s: sizes must be positive, got B=%d T=%d C=%d", op, B, T, C);
  if (c1 < 0 || c2 < 0 || c1 + C > ld || c2 + C > ld)
    db_fail("%s: columns %d and %d of width %d do not fit in rows of %d", op, c1, c2, C, ld);
  db_check_numel(x, (size_t)B * T * C, op, xn);
  db_check_numel(y, (size_t)B * T * C, op, yn);
  db_check_numel(mod, (size_t)B * ld, op, mn);
}

void modulate_forward(db_ctx *ctx, db_tensor out, db_tensor inp, db_tensor mod, int shift_col, int scale_col, int B,
                      int T, int C, int ld) {
  check("modulate_forward", out, inp, mod, shift_col, scale_col, B, T, C, ld, "out", "inp", "mod");
  db_args a = elem_args(ctx, &K_FORWARD);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, inp);
  db_arg_tensor(&a, mod);
  db_arg_i32(&a, shift_col);
  db_arg_i32(&a, scale_col);
  db_arg_i32(&a, B);
  db_arg_i32(&a, T);
  db_arg_i32(&a, C);
  db_arg_i32(&a, ld);
  elem_launch_rows(&a, C, (size_t)B * T);
}

void modulate_backward(db_ctx *ctx, db_tensor dinp, db_tensor dmod, db_tensor dout, db_tensor inp, db_tensor mod,
                       int shift_col, int scale_col, int B, int T, int C, int ld) {
  check("modulate_backward", dinp, dout, dmod, shift_col, scale_col, B, T, C, ld, "dinp", "dout", "dmod");
  db_check_numel(inp, (size_t)B * T * C, "modulate_backward", "inp");
  db_check_numel(mod, (size_t)B * ld, "modulate_backward", "mod");
  db_args a = elem_args(ctx, &K_BACKWARD_INP);
  db_arg_tensor(&a, dinp);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, mod);
  db_arg_i32(&a, scale_col);
  db_arg_i32(&a, B);
  db_arg_i32(&a, T);
  db_arg_i32(&a, C);
  db_arg_i32(&a, ld);
  elem_launch_rows(&a, C, (size_t)B * T);
  db_args r = elem_args(ctx, &K_BACKWARD_MOD);
  db_arg_tensor(&r, dmod);
  db_arg_tensor(&r, dout);
  db_arg_tensor(&r, inp);
  db_arg_i32(&r, shift_col);
  db_arg_i32(&r, scale_col);
  db_arg_i32(&r, B);
  db_arg_i32(&r, T);
  db_arg_i32(&r, C);
  db_arg_i32(&r, ld);
  elem_launch_rows(&r, C, (size_t)B);
}
