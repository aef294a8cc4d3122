/* gelu: elementwise activation, forward and accumulating backward. W floats
 * per work-item (ops/elementwise.c). */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static elem_ref K_FORWARD = ELEM_REF("gelu", "gelu_forward");
static elem_ref K_BACKWARD = ELEM_REF("gelu", "gelu_backward");
static elem_ref K_BACKWARD_INPLACE = ELEM_REF("gelu", "gelu_backward_inplace");

static void launch(db_ctx *ctx, elem_ref *kernel, const db_tensor *t, int nt, size_t n) {
  db_args a = elem_args(ctx, kernel);
  for (int i = 0; i < nt; i++) db_arg_tensor(&a, t[i]);
  db_arg_u64(&a, n);
  elem_launch(&a, n);
}

void gelu_forward(db_ctx *ctx, db_tensor out, db_tensor inp, size_t n) {
  db_check_numel(out, n, "gelu_forward", "out");
  db_check_numel(inp, n, "gelu_forward", "inp");
  launch(ctx, &K_FORWARD, (db_tensor[]){out, inp}, 2, n);
}

void gelu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, size_t n) {
  db_check_numel(dinp, n, "gelu_backward", "dinp");
  db_check_numel(dout, n, "gelu_backward", "dout");
  db_check_numel(inp, n, "gelu_backward", "inp");
  launch(ctx, &K_BACKWARD, (db_tensor[]){dinp, dout, inp}, 3, n);
}

void gelu_backward_inplace(db_ctx *ctx, db_tensor d, db_tensor inp, size_t n) {
  db_check_numel(d, n, "gelu_backward_inplace", "d");
  db_check_numel(inp, n, "gelu_backward_inplace", "inp");
  launch(ctx, &K_BACKWARD_INPLACE, (db_tensor[]){d, inp}, 2, n);
}
