/* silu: elementwise activation, forward and accumulating backward. */
#include "ops.h"

void silu_forward(db_ctx *ctx, db_tensor out, db_tensor inp, size_t n) {
  db_check_numel(out, n, "silu_forward", "out");
  db_check_numel(inp, n, "silu_forward", "inp");
  db_args a = db_args_begin(ctx, "silu", "silu_forward");
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, inp);
  db_arg_u64(&a, n);
  db_launch_1d(&a, n, 0);
}

void silu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, size_t n) {
  db_check_numel(dinp, n, "silu_backward", "dinp");
  db_check_numel(dout, n, "silu_backward", "dout");
  db_check_numel(inp, n, "silu_backward", "inp");
  db_args a = db_args_begin(ctx, "silu", "silu_backward");
  db_arg_tensor(&a, dinp);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, inp);
  db_arg_u64(&a, n);
  db_launch_1d(&a, n, 0);
}
