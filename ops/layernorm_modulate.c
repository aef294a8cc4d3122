/* layernorm_modulate: LayerNorm (no affine) and AdaLN modulation fused, as
 * every DiT branch runs them; see cl/layernorm_modulate.cl. The row kernels
 * take one row per work-item, W floats at a time (ops/elementwise.c), where
 * the device's row-reduction group size is 1 (CPUs), else one work-group per
 * row (GPUs; forced in tests with db_force_row_group_size). */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static db_kernel_ref K_FORWARD_GROUP = DB_KERNEL_REF("layernorm_modulate", "layernorm_modulate_forward_group");
static elem_ref K_FORWARD_ROWS = ELEM_REF("layernorm_modulate", "layernorm_modulate_forward");
static db_kernel_ref K_BACKWARD_INP_GROUP = DB_KERNEL_REF("layernorm_modulate", "layernorm_modulate_backward_inp_group");
static elem_ref K_BACKWARD_INP_ROWS = ELEM_REF("layernorm_modulate", "layernorm_modulate_backward_inp");
static elem_ref K_BACKWARD_MOD = ELEM_REF("layernorm_modulate", "layernorm_modulate_backward_mod");

static void check(const char *op, db_tensor a, db_tensor b, db_tensor mean, db_tensor rstd, db_tensor mod,
                  int shift_col, int scale_col, int B, int T, int C, int ld, const char *an, const char *bn) {
  if (B <= 0 || T <= 0 || C <= 0) db_fail("%s: sizes must be positive, got B=%d T=%d C=%d", op, B, T, C);
  if (shift_col < 0 || scale_col < 0 || shift_col + C > ld || scale_col + C > ld)
    db_fail("%s: columns %d and %d of width %d do not fit in rows of %d", op, shift_col, scale_col, C, ld);
  db_check_numel(a, (size_t)B * T * C, op, an);
  db_check_numel(b, (size_t)B * T * C, op, bn);
  db_check_numel(mean, (size_t)B * T, op, "mean");
  db_check_numel(rstd, (size_t)B * T, op, "rstd");
  db_check_numel(mod, (size_t)B * ld, op, "mod");
}

void layernorm_modulate_forward(db_ctx *ctx, db_tensor out, db_tensor mean, db_tensor rstd, db_tensor inp,
                                db_tensor mod, int shift_col, int scale_col, int B, int T, int C, int ld,
                                float eps) {
  check("layernorm_modulate_forward", out, inp, mean, rstd, mod, shift_col, scale_col, B, T, C, ld, "out", "inp");
  db_args g = db_args_ref(ctx, &K_FORWARD_GROUP);
  size_t wg = db_row_group_size_for(&g, C);
  db_args a = wg > 1 ? g : elem_args(ctx, &K_FORWARD_ROWS);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, mean);
  db_arg_tensor(&a, rstd);
  db_arg_tensor(&a, inp);
  db_arg_tensor(&a, mod);
  db_arg_i32(&a, shift_col);
  db_arg_i32(&a, scale_col);
  if (wg == 1) db_arg_i32(&a, B * T);
  db_arg_i32(&a, T);
  db_arg_i32(&a, C);
  db_arg_i32(&a, ld);
  db_arg_f32(&a, eps);
  if (wg > 1) {
    db_arg_local(&a, wg * sizeof(float));
    db_launch_1d(&a, (size_t)B * T * wg, wg);
  } else
    db_launch_1d(&a, (size_t)B * T, 0);
}

void layernorm_modulate_backward(db_ctx *ctx, db_tensor dinp, db_tensor dmod, db_tensor dout, db_tensor inp,
                                 db_tensor mean, db_tensor rstd, db_tensor mod, int shift_col, int scale_col, int B,
                                 int T, int C, int ld) {
  const char *op = "layernorm_modulate_backward";
  check(op, dinp, dout, mean, rstd, mod, shift_col, scale_col, B, T, C, ld, "dinp", "dout");
  db_check_numel(inp, (size_t)B * T * C, op, "inp");
  db_check_numel(dmod, (size_t)B * ld, op, "dmod");
  db_args g = db_args_ref(ctx, &K_BACKWARD_INP_GROUP);
  size_t wg = db_row_group_size_for(&g, C);
  db_args a = wg > 1 ? g : elem_args(ctx, &K_BACKWARD_INP_ROWS);
  db_arg_tensor(&a, dinp);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, inp);
  db_arg_tensor(&a, mean);
  db_arg_tensor(&a, rstd);
  db_arg_tensor(&a, mod);
  db_arg_i32(&a, scale_col);
  if (wg == 1) db_arg_i32(&a, B * T);
  db_arg_i32(&a, T);
  db_arg_i32(&a, C);
  db_arg_i32(&a, ld);
  if (wg > 1) {
    db_arg_local(&a, wg * sizeof(float));
    db_launch_1d(&a, (size_t)B * T * wg, wg);
  } else
    db_launch_1d(&a, (size_t)B * T, 0);
  db_args r = elem_args(ctx, &K_BACKWARD_MOD);
  db_arg_tensor(&r, dmod);
  db_arg_tensor(&r, dout);
  db_arg_tensor(&r, inp);
  db_arg_tensor(&r, mean);
  db_arg_tensor(&r, rstd);
  db_arg_i32(&r, shift_col);
  db_arg_i32(&r, scale_col);
  db_arg_i32(&r, B);
  db_arg_i32(&r, T);
  db_arg_i32(&r, C);
  db_arg_i32(&r, ld);
  elem_launch_rows(&r, C, (size_t)B);
}
