/* gelu: elementwise activation, forward and accumulating backward. */
#include "ops.h"

void gelu_forward(db_ctx *ctx, db_tensor out, db_tensor inp, size_t n) {
  db_check_numel(out, n, "gelu_forward", "out");
  db_check_numel(inp, n, "gelu_forward", "inp");
  db_args a = db_args_begin(ctx, "gelu", "gelu_forward");
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, inp);
  db_arg_u64(&a, n);
  db_launch_1d(&a, n, 0);
}

void gelu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, size_t n) {
  db_check_numel(dinp, n, "gelu_backward", "dinp");
  db_check_numel(dout, n, "gelu_backward", "dout");
  db_check_numel(inp, n, "gelu_backward", "inp");
  db_args a = db_args_begin(ctx, "gelu", "gelu_backward");
  db_arg_tensor(&a, dinp);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, inp);
  db_arg_u64(&a, n);
  db_launch_1d(&a, n, 0);
}

void gelu_backward_inplace(db_ctx *ctx, db_tensor d, db_tensor inp, size_t n) {
  db_check_numel(d, n, "gelu_backward_inplace", "d");
  db_check_numel(inp, n, "gelu_backward_inplace", "inp");
  db_args a = db_args_begin(ctx, "gelu", "gelu_backward_inplace");
  db_arg_tensor(&a, d);
  db_arg_tensor(&a, inp);
  db_arg_u64(&a, n);
  db_launch_1d(&a, n, 0);
}
