/* silu: elementwise activation, forward and accumulating backward. W floats
 * per work-item (ops/elementwise.c). */
#include "ops.h"

static void launch(db_ctx *ctx, const char *kernel, const db_tensor *t, int nt, size_t n) {
  char name[64];
  db_args a = db_args_begin(ctx, "silu", elem_kernel(ctx, kernel, name, sizeof name));
  for (int i = 0; i < nt; i++) db_arg_tensor(&a, t[i]);
  db_arg_u64(&a, n);
  elem_launch(&a, n);
}

void silu_forward(db_ctx *ctx, db_tensor out, db_tensor inp, size_t n) {
  db_check_numel(out, n, "silu_forward", "out");
  db_check_numel(inp, n, "silu_forward", "inp");
  launch(ctx, "silu_forward", (db_tensor[]){out, inp}, 2, n);
}

void silu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, size_t n) {
  db_check_numel(dinp, n, "silu_backward", "dinp");
  db_check_numel(dout, n, "silu_backward", "dout");
  db_check_numel(inp, n, "silu_backward", "inp");
  launch(ctx, "silu_backward", (db_tensor[]){dinp, dout, inp}, 3, n);
}
