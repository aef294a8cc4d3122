/* rowscale_add: out = a ⊙ x + b ⊙ y with a, b one scale per row: EDM's
 * per-sample mixes (z = y + σ ε, D = c_skip z + c_out F). W floats per
 * work-item on a (chunks of D, rows) grid (ops/elementwise.c). */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static elem_ref K_FORWARD = ELEM_REF("rowscale_add", "rowscale_add_forward");
static elem_ref K_BACKWARD = ELEM_REF("rowscale_add", "rowscale_add_backward");

void rowscale_add_forward(db_ctx *ctx, db_tensor out, db_tensor a, db_tensor x, db_tensor b, db_tensor y, int N, int D) {
  const char *op = "rowscale_add_forward";
  db_check_numel(out, (size_t)N * D, op, "out");
  db_check_numel(b, (size_t)N, op, "b");
  db_check_numel(y, (size_t)N * D, op, "y");
  int has_x = !db_is_null(x);
  if (has_x) {
    db_check_numel(a, (size_t)N, op, "a");
    db_check_numel(x, (size_t)N * D, op, "x");
  }
  db_args k = elem_args(ctx, &K_FORWARD);
  db_arg_tensor(&k, out);
  db_arg_tensor(&k, has_x ? a : b);
  db_arg_tensor(&k, has_x ? x : y);
  db_arg_tensor(&k, b);
  db_arg_tensor(&k, y);
  db_arg_i32(&k, has_x);
  db_arg_i32(&k, N);
  db_arg_i32(&k, D);
  elem_launch_rows(&k, D, (size_t)N);
}

void rowscale_add_backward(db_ctx *ctx, db_tensor dx, db_tensor dy, db_tensor dout, db_tensor a, db_tensor b, int N,
                           int D) {
  const char *op = "rowscale_add_backward";
  int has_dx = !db_is_null(dx), has_dy = !db_is_null(dy);
  if (!has_dx && !has_dy) return;
  db_check_numel(dout, (size_t)N * D, op, "dout");
  if (has_dx) { db_check_numel(dx, (size_t)N * D, op, "dx"); db_check_numel(a, (size_t)N, op, "a"); }
  if (has_dy) { db_check_numel(dy, (size_t)N * D, op, "dy"); db_check_numel(b, (size_t)N, op, "b"); }
  db_args k = elem_args(ctx, &K_BACKWARD);
  db_arg_tensor(&k, has_dx ? dx : dy);
  db_arg_tensor(&k, has_dy ? dy : dx);
  db_arg_tensor(&k, dout);
  db_arg_tensor(&k, has_dx ? a : b);
  db_arg_tensor(&k, has_dy ? b : a);
  db_arg_i32(&k, has_dx);
  db_arg_i32(&k, has_dy);
  db_arg_i32(&k, N);
  db_arg_i32(&k, D);
  elem_launch_rows(&k, D, (size_t)N);
}
