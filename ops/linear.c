/* Linear layer on gemm() (row-major, explicit leading dimensions).
 * out = inp @ W^T + b; the weight gradient is one GEMM over all N = batch x
 * tokens rows; the bias gradient is a column sum of dout. */
#include "ops.h"

static elem_ref K_ADD_BIAS = ELEM_REF("linear", "add_bias");

static void check_shapes(const char *op, db_tensor a, db_tensor b, db_tensor w, db_tensor bias, int N, int IC,
                         int OC, const char *an, const char *bn) {
  if (N <= 0 || IC <= 0 || OC <= 0) db_fail("%s: sizes must be positive, got N=%d IC=%d OC=%d", op, N, IC, OC);
  if (!db_is_null(a)) db_check_numel(a, (size_t)N * OC, op, an);
  if (!db_is_null(b)) db_check_numel(b, (size_t)N * IC, op, bn);
  db_check_numel(w, (size_t)OC * IC, op, "weight");
  if (!db_is_null(bias)) db_check_numel(bias, (size_t)OC, op, "bias");
}

void linear_forward(db_ctx *ctx, db_tensor out, db_tensor inp, db_tensor weight, db_tensor bias, int N, int IC,
                    int OC) {
  check_shapes("linear_forward", out, inp, weight, bias, N, IC, OC, "out", "inp");
  gemm(ctx, 0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
  if (db_is_null(bias)) return;
  db_args a = elem_args(ctx, &K_ADD_BIAS);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, bias);
  db_arg_i32(&a, N);
  db_arg_i32(&a, OC);
  elem_launch_rows(&a, OC, (size_t)N);
}

void linear_backward(db_ctx *ctx, db_tensor dinp, db_tensor dweight, db_tensor dbias, db_tensor dout, db_tensor inp,
                     db_tensor weight, int N, int IC, int OC, int dinp_mode) {
  if (dinp_mode != LINEAR_DINP_ADD && dinp_mode != LINEAR_DINP_SET)
    db_fail("linear_backward: dinp_mode %d is neither LINEAR_DINP_ADD nor LINEAR_DINP_SET", dinp_mode);
  check_shapes("linear_backward", dout, inp, weight, dbias, N, IC, OC, "dout", "inp");
  db_check_numel(dweight, (size_t)OC * IC, "linear_backward", "dweight");
  if (!db_is_null(dinp)) {
    db_check_numel(dinp, (size_t)N * IC, "linear_backward", "dinp");
    /* dinp (N,IC) (+)= dout (N,OC) @ W (OC,IC): beta = 1 adds, beta = 0 writes
     * (never reading dinp, so the caller need not zero it first) */
    gemm(ctx, 0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, dinp_mode == LINEAR_DINP_ADD ? 1.0f : 0.0f, dinp, IC);
  }
  /* dW (OC,IC) += dout^T (OC,N) @ inp (N,IC) */
  gemm(ctx, 1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
  /* db (OC) += column sums of dout (N,OC) */
  if (!db_is_null(dbias)) gemm_colsum_acc(ctx, dbias, dout, N, OC, OC);
}
