/* gelu: elementwise activation, forward and accumulating backward. W floats
 * per work-item (ops/elementwise.c). */
#include "ops.h"

static void launch(db_ctx *ctx, const char *kernel, const db_tensor *t, int nt, size_t n) {
  char name[64];
  db_args a = db_args_begin(ctx, "gelu", elem_kernel(ctx, kernel, name, sizeof name));
  for (int i = 0; i < nt; i++) db_arg_tensor(&a, t[i]);
  db_arg_u64(&a, n);
  elem_launch(&a, n);
}

void gelu_forward(db_ctx *ctx, db_tensor out, db_tensor inp, size_t n) {
  db_check_numel(out, n, "gelu_forward", "out");
  db_check_numel(inp, n, "gelu_forward", "inp");
  launch(ctx, "gelu_forward", (db_tensor[]){out, inp}, 2, n);
}

void gelu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, size_t n) {
  db_check_numel(dinp, n, "gelu_backward", "dinp");
  db_check_numel(dout, n, "gelu_backward", "dout");
  db_check_numel(inp, n, "gelu_backward", "inp");
  launch(ctx, "gelu_backward", (db_tensor[]){dinp, dout, inp}, 3, n);
}

void gelu_backward_inplace(db_ctx *ctx, db_tensor d, db_tensor inp, size_t n) {
  db_check_numel(d, n, "gelu_backward_inplace", "d");
  db_check_numel(inp, n, "gelu_backward_inplace", "inp");
  launch(ctx, "gelu_backward_inplace", (db_tensor[]){d, inp}, 2, n);
}
