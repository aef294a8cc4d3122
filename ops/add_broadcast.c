/* add_broadcast: out = x + y repeated (y of m elements tiled over x's n):
 * position embeddings onto tokens, t_emb + y_emb. W floats per work-item
 * (ops/elementwise.c); the forward on a (chunks of m, repeats) grid. */
#include "ops.h"
#include <limits.h>

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static elem_ref K_FORWARD = ELEM_REF("add_broadcast", "add_broadcast_forward");
static elem_ref K_BACKWARD_X = ELEM_REF("add_broadcast", "add_broadcast_backward_x");
static elem_ref K_BACKWARD_Y = ELEM_REF("add_broadcast", "add_broadcast_backward_y");

static void check_repeats(const char *op, size_t n, size_t m) {
  if (m == 0 || n % m) db_fail("%s: %zu elements are not a whole number of repeats of %zu", op, n, m);
  if (m > INT_MAX || n / m > INT_MAX) db_fail("%s: %zu repeats of %zu elements exceed the kernels' int range", op, n / m, m);
}

void add_broadcast_forward(db_ctx *ctx, db_tensor out, db_tensor x, db_tensor y, size_t n, size_t m) {
  const char *op = "add_broadcast_forward";
  check_repeats(op, n, m);
  db_check_numel(out, n, op, "out");
  db_check_numel(x, n, op, "x");
  db_check_numel(y, m, op, "y");
  db_args k = elem_args(ctx, &K_FORWARD);
  db_arg_tensor(&k, out);
  db_arg_tensor(&k, x);
  db_arg_tensor(&k, y);
  db_arg_i32(&k, (int)m);
  db_arg_i32(&k, (int)(n / m));
  elem_launch_rows(&k, (int)m, n / m);
}

void add_broadcast_backward(db_ctx *ctx, db_tensor dx, db_tensor dy, db_tensor dout, size_t n, size_t m) {
  const char *op = "add_broadcast_backward";
  check_repeats(op, n, m);
  db_check_numel(dout, n, op, "dout");
  if (!db_is_null(dx)) {
    db_check_numel(dx, n, op, "dx");
    db_args k = elem_args(ctx, &K_BACKWARD_X);
    db_arg_tensor(&k, dx);
    db_arg_tensor(&k, dout);
    db_arg_u64(&k, n);
    elem_launch(&k, n);
  }
  if (!db_is_null(dy)) {
    db_check_numel(dy, m, op, "dy");
    db_args k = elem_args(ctx, &K_BACKWARD_Y);
    db_arg_tensor(&k, dy);
    db_arg_tensor(&k, dout);
    db_arg_i32(&k, (int)m);
    db_arg_i32(&k, (int)(n / m));
    elem_launch(&k, m);
  }
}
