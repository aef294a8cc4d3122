/* Linear layer on CLBlast (row-major, explicit leading dimensions).
 * out = inp @ W^T + b; the weight gradient is one GEMM over all N = batch x
 * tokens rows; the bias gradient is a GEMV of dout^T with a ones vector. */
#include "ops.h"

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
  CLBLAST_CHECK(CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, (size_t)N, (size_t)OC,
                             (size_t)IC, 1.0f, inp.mem, db_eoff(inp), (size_t)IC, weight.mem, db_eoff(weight),
                             (size_t)IC, 0.0f, out.mem, db_eoff(out), (size_t)OC, &ctx->queue,
                             db_profile_event(ctx, "sgemm linear")));
  if (db_is_null(bias)) return;
  db_args a = db_args_begin(ctx, "linear", "add_bias");
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, bias);
  db_arg_i32(&a, N);
  db_arg_i32(&a, OC);
  db_launch_1d(&a, (size_t)N * OC, 0);
}

/* A device vector of at least n ones, grown on demand and kept in ctx. */
static cl_mem ones_vector(db_ctx *ctx, size_t n) {
  if (ctx->ones_len >= n) return ctx->ones;
  if (ctx->ones) clReleaseMemObject(ctx->ones);
  size_t len = n < 4096 ? 4096 : n;
  cl_int err;
  ctx->ones = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, len * sizeof(float), NULL, &err);
  CL_CHECK(err);
  float one = 1.0f;
  CL_CHECK(clEnqueueFillBuffer(ctx->queue, ctx->ones, &one, sizeof one, 0, len * sizeof(float), 0, NULL, NULL));
  ctx->ones_len = len;
  return ctx->ones;
}

void linear_backward(db_ctx *ctx, db_tensor dinp, db_tensor dweight, db_tensor dbias, db_tensor dout, db_tensor inp,
                     db_tensor weight, int N, int IC, int OC) {
  check_shapes("linear_backward", dout, inp, weight, dbias, N, IC, OC, "dout", "inp");
  db_check_numel(dweight, (size_t)OC * IC, "linear_backward", "dweight");
  if (!db_is_null(dinp)) {
    db_check_numel(dinp, (size_t)N * IC, "linear_backward", "dinp");
    /* dinp (N,IC) += dout (N,OC) @ W (OC,IC) */
    CLBLAST_CHECK(CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)N, (size_t)IC,
                               (size_t)OC, 1.0f, dout.mem, db_eoff(dout), (size_t)OC, weight.mem, db_eoff(weight),
                               (size_t)IC, 1.0f, dinp.mem, db_eoff(dinp), (size_t)IC, &ctx->queue,
                               db_profile_event(ctx, "sgemm linear dinp")));
  }
  /* dW (OC,IC) += dout^T (OC,N) @ inp (N,IC) */
  CLBLAST_CHECK(CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeYes, CLBlastTransposeNo, (size_t)OC, (size_t)IC,
                             (size_t)N, 1.0f, dout.mem, db_eoff(dout), (size_t)OC, inp.mem, db_eoff(inp), (size_t)IC,
                             1.0f, dweight.mem, db_eoff(dweight), (size_t)IC, &ctx->queue,
                             db_profile_event(ctx, "sgemm linear dweight")));
  if (db_is_null(dbias)) return;
  /* db (OC) += dout^T (OC,N) @ ones (N) */
  CLBLAST_CHECK(CLBlastSgemv(CLBlastLayoutRowMajor, CLBlastTransposeYes, (size_t)N, (size_t)OC, 1.0f, dout.mem,
                             db_eoff(dout), (size_t)OC, ones_vector(ctx, (size_t)N), 0, 1, 1.0f, dbias.mem,
                             db_eoff(dbias), 1, &ctx->queue, db_profile_event(ctx, "sgemv linear dbias")));
}
