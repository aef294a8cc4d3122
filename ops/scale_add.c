/* Glue ops of the denoiser: EDM's per-sample scaling, broadcast adds
 * (position embeddings, t_emb + y_emb) and the token mean of the classifier. */
#include "ops.h"

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
  db_args k = db_args_begin(ctx, "scale_add", "rowscale_add_forward");
  db_arg_tensor(&k, out);
  db_arg_tensor(&k, has_x ? a : b);
  db_arg_tensor(&k, has_x ? x : y);
  db_arg_tensor(&k, b);
  db_arg_tensor(&k, y);
  db_arg_i32(&k, has_x);
  db_arg_i32(&k, N);
  db_arg_i32(&k, D);
  db_launch_1d(&k, (size_t)N * D, 0);
}

void rowscale_add_backward(db_ctx *ctx, db_tensor dx, db_tensor dy, db_tensor dout, db_tensor a, db_tensor b, int N,
                           int D) {
  const char *op = "rowscale_add_backward";
  int has_dx = !db_is_null(dx), has_dy = !db_is_null(dy);
  if (!has_dx && !has_dy) return;
  db_check_numel(dout, (size_t)N * D, op, "dout");
  if (has_dx) { db_check_numel(dx, (size_t)N * D, op, "dx"); db_check_numel(a, (size_t)N, op, "a"); }
  if (has_dy) { db_check_numel(dy, (size_t)N * D, op, "dy"); db_check_numel(b, (size_t)N, op, "b"); }
  db_args k = db_args_begin(ctx, "scale_add", "rowscale_add_backward");
  db_arg_tensor(&k, has_dx ? dx : dy);
  db_arg_tensor(&k, has_dy ? dy : dx);
  db_arg_tensor(&k, dout);
  db_arg_tensor(&k, has_dx ? a : b);
  db_arg_tensor(&k, has_dy ? b : a);
  db_arg_i32(&k, has_dx);
  db_arg_i32(&k, has_dy);
  db_arg_i32(&k, N);
  db_arg_i32(&k, D);
  db_launch_1d(&k, (size_t)N * D, 0);
}

void add_broadcast_forward(db_ctx *ctx, db_tensor out, db_tensor x, db_tensor y, size_t n, size_t m) {
  const char *op = "add_broadcast_forward";
  if (m == 0 || n % m) db_fail("%s: %zu elements are not a whole number of repeats of %zu", op, n, m);
  db_check_numel(out, n, op, "out");
  db_check_numel(x, n, op, "x");
  db_check_numel(y, m, op, "y");
  db_args k = db_args_begin(ctx, "scale_add", "add_broadcast_forward");
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
    db_args k = db_args_begin(ctx, "scale_add", "add_broadcast_backward_x");
    db_arg_tensor(&k, dx);
    db_arg_tensor(&k, dout);
    db_arg_u64(&k, n);
    db_launch_1d(&k, n, 0);
  }
  if (!db_is_null(dy)) {
    db_check_numel(dy, m, op, "dy");
    db_args k = db_args_begin(ctx, "scale_add", "add_broadcast_backward_y");
    db_arg_tensor(&k, dy);
    db_arg_tensor(&k, dout);
    db_arg_u64(&k, n);
    db_arg_u64(&k, m);
    db_launch_1d(&k, m, 0);
  }
}

void mean_tokens_forward(db_ctx *ctx, db_tensor out, db_tensor x, int B, int T, int C) {
  db_check_numel(out, (size_t)B * C, "mean_tokens_forward", "out");
  db_check_numel(x, (size_t)B * T * C, "mean_tokens_forward", "x");
  db_args k = db_args_begin(ctx, "scale_add", "mean_tokens_forward");
  db_arg_tensor(&k, out);
  db_arg_tensor(&k, x);
  db_arg_i32(&k, B);
  db_arg_i32(&k, T);
  db_arg_i32(&k, C);
  db_launch_1d(&k, (size_t)B * C, 0);
}

void mean_tokens_backward(db_ctx *ctx, db_tensor dx, db_tensor dout, int B, int T, int C) {
  db_check_numel(dx, (size_t)B * T * C, "mean_tokens_backward", "dx");
  db_check_numel(dout, (size_t)B * C, "mean_tokens_backward", "dout");
  db_args k = db_args_begin(ctx, "scale_add", "mean_tokens_backward");
  db_arg_tensor(&k, dx);
  db_arg_tensor(&k, dout);
  db_arg_i32(&k, B);
  db_arg_i32(&k, T);
  db_arg_i32(&k, C);
  db_launch_1d(&k, (size_t)B * T * C, 0);
}
