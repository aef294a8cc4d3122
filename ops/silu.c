/* silu: elementwise activation, forward and accumulating backward. W floats
 * per work-item (ops/elementwise.c). */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static elem_ref K_FORWARD = ELEM_REF("silu", "silu_forward");
static elem_ref K_BACKWARD = ELEM_REF("silu", "silu_backward");

static void launch(db_ctx *ctx, elem_ref *kernel, const db_tensor *t, int nt, size_t n) {
  db_args a = elem_args(ctx, kernel);
  for (int i = 0; i < nt; i++) db_arg_tensor(&a, t[i]);
  db_arg_u64(&a, n);
  elem_launch(&a, n);
}

void silu_forward(db_ctx *ctx, db_tensor out, db_tensor inp, size_t n) {
  db_check_numel(out, n, "silu_forward", "out");
  db_check_numel(inp, n, "silu_forward", "inp");
  launch(ctx, &K_FORWARD, (db_tensor[]){out, inp}, 2, n);
}

void silu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, size_t n) {
  db_check_numel(dinp, n, "silu_backward", "dinp");
  db_check_numel(dout, n, "silu_backward", "dout");
  db_check_numel(inp, n, "silu_backward", "inp");
  launch(ctx, &K_BACKWARD, (db_tensor[]){dinp, dout, inp}, 3, n);
}
