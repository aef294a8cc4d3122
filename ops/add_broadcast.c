/* add_broadcast: out = x + y repeated (y of m elements tiled over x's n):
 * position embeddings onto tokens, t_emb + y_emb. */
#include "ops.h"

void add_broadcast_forward(db_ctx *ctx, db_tensor out, db_tensor x, db_tensor y, size_t n, size_t m) {
  const char *op = "add_broadcast_forward";
  if (m == 0 || n % m) db_fail("%s: %zu elements are not a whole number of repeats of %zu", op, n, m);
  db_check_numel(out, n, op, "out");
  db_check_numel(x, n, op, "x");
  db_check_numel(y, m, op, "y");
  db_args k = db_args_begin(ctx, "add_broadcast", "add_broadcast_forward");
  db_arg_tensor(&k, out);
  db_arg_tensor(&k, x);
  db_arg_tensor(&k, y);
  db_arg_u64(&k, n);
  db_arg_u64(&k, m);
  db_launch_1d(&k, n, 0);
}

void add_broadcast_backward(db_ctx *ctx, db_tensor dx, db_tensor dy, db_tensor dout, size_t n, size_t m) {
  const char *op = "add_broadcast_backward";
  if (m == 0 || n % m) db_fail("%s: %zu elements are not a whole number of repeats of %zu", op, n, m);
  db_check_numel(dout, n, op, "dout");
  if (!db_is_null(dx)) {
    db_check_numel(dx, n, op, "dx");
    db_args k = db_args_begin(ctx, "add_broadcast", "add_broadcast_backward_x");
    db_arg_tensor(&k, dx);
    db_arg_tensor(&k, dout);
    db_arg_u64(&k, n);
    db_launch_1d(&k, n, 0);
  }
  if (!db_is_null(dy)) {
    db_check_numel(dy, m, op, "dy");
    db_args k = db_args_begin(ctx, "add_broadcast", "add_broadcast_backward_y");
    db_arg_tensor(&k, dy);
    db_arg_tensor(&k, dout);
    db_arg_u64(&k, n);
    db_arg_u64(&k, m);
    db_launch_1d(&k, m, 0);
  }
}
