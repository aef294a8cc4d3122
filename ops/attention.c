/* Multi-head self-attention, llm.c style: permute qkv into (3,B,NH,T,hs),
 * batched GEMMs through CLBlast (one batch per (b,h)), an in-place row
 * softmax, and a permute back. Backward is written by hand; every GEMM
 * writes (beta = 0) into scratch and only the final permute-add touches dinp. */
#include "ops.h"
#include <math.h>

static int head_size(const char *op, int B, int T, int C, int NH) {
  if (B <= 0 || T <= 0 || C <= 0 || NH <= 0)
    db_fail("%s: sizes must be positive (B=%d T=%d C=%d NH=%d)", op, B, T, C, NH);
  if (C % NH != 0) db_fail("%s: C=%d is not divisible by the number of heads NH=%d", op, C, NH);
  return C / NH;
}

/* Row-major strided-batched C = op(A) @ op(B) (beta = 0) over B*NH batches.
 * Offsets are element offsets into the tensors, added to the tensors' own. */
static void gemm_batched(db_ctx *ctx, int ta, int tb, int m, int n, int k, db_tensor A, size_t a_off, size_t lda,
                         size_t a_stride, db_tensor Bm, size_t b_off, size_t ldb, size_t b_stride, db_tensor Cm,
                         size_t c_off, size_t ldc, size_t c_stride, size_t batch) {
  CLBLAST_CHECK(CLBlastSgemmStridedBatched(
      CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo, tb ? CLBlastTransposeYes : CLBlastTransposeNo,
      (size_t)m, (size_t)n, (size_t)k, 1.0f, A.mem, (size_t)db_eoff(A) + a_off, lda, a_stride, Bm.mem,
      (size_t)db_eoff(Bm) + b_off, ldb, b_stride, 0.0f, Cm.mem, (size_t)db_eoff(Cm) + c_off, ldc, c_stride, batch,
      &ctx->queue, db_profile_event(ctx, "sgemm_batched")));
}

static void gather_heads(db_ctx *ctx, db_tensor dst, db_tensor src, int S, int B, int T, int C, int NH, int ld) {
  db_args a = db_args_begin(ctx, "attention", "attention_gather_heads");
  db_arg_tensor(&a, dst);
  db_arg_tensor(&a, src);
  db_arg_i32(&a, S);
  db_arg_i32(&a, B);
  db_arg_i32(&a, T);
  db_arg_i32(&a, C);
  db_arg_i32(&a, NH);
  db_arg_i32(&a, ld);
  db_launch_1d(&a, (size_t)S * B * T * C, 0);
}

static void scatter_heads(db_ctx *ctx, db_tensor dst, db_tensor src, int S, int B, int T, int C, int NH,
                          int accumulate) {
  db_args a = db_args_begin(ctx, "attention", "attention_scatter_heads");
  db_arg_tensor(&a, dst);
  db_arg_tensor(&a, src);
  db_arg_i32(&a, S);
  db_arg_i32(&a, B);
  db_arg_i32(&a, T);
  db_arg_i32(&a, C);
  db_arg_i32(&a, NH);
  db_arg_i32(&a, accumulate);
  db_launch_1d(&a, (size_t)S * B * T * C, 0);
}

void attention_forward(db_ctx *ctx, db_tensor out, db_tensor qkvr, db_tensor att, db_tensor scratch, db_tensor inp,
                       db_tensor mask, int mode, int B, int T, int C, int NH) {
  const char *op = "attention_forward";
  int hs = head_size(op, B, T, C, NH);
  size_t BT = (size_t)B * T, nh_rows = (size_t)B * NH * T, sec = nh_rows * hs;
  db_check_numel(out, BT * C, op, "out");
  db_check_numel(qkvr, 3 * sec, op, "qkvr");
  db_check_numel(att, nh_rows * T, op, "att");
  db_check_numel(scratch, sec, op, "scratch");
  db_check_numel(inp, BT * 3 * C, op, "inp");
  if (mode == ATTN_MASK) db_check_numel(mask, (size_t)T * T, op, "mask");
  else if (mode != ATTN_BIDIRECTIONAL && mode != ATTN_CAUSAL)
    db_fail("%s: unknown mode %d (expected ATTN_BIDIRECTIONAL, ATTN_CAUSAL or ATTN_MASK)", op, mode);

  size_t batch = (size_t)B * NH, tt = (size_t)T * T, ths = (size_t)T * hs;
  gather_heads(ctx, qkvr, inp, 3, B, T, C, NH, 3 * C);
  /* att = q @ k^T (unscaled; the softmax applies 1/sqrt(hs)) */
  gemm_batched(ctx, 0, 1, T, T, hs, qkvr, 0, hs, ths, qkvr, sec, hs, ths, att, 0, T, tt, batch);
  size_t wg = db_row_group_size(ctx, T);
  db_args a = db_args_begin(ctx, "attention", "attention_softmax_forward");
  db_arg_tensor(&a, att);
  db_arg_tensor(&a, mode == ATTN_MASK ? mask : DB_NULL);
  db_arg_i32(&a, T);
  db_arg_f32(&a, (float)(1.0 / sqrt((double)hs)));
  db_arg_i32(&a, mode);
  db_arg_local(&a, wg * sizeof(float));
  db_launch_1d(&a, nh_rows * wg, wg);
  /* scratch = att @ v */
  gemm_batched(ctx, 0, 0, T, hs, T, att, 0, T, tt, qkvr, 2 * sec, hs, ths, scratch, 0, hs, ths, batch);
  scatter_heads(ctx, out, scratch, 1, B, T, C, NH, 0);
}

void attention_backward(db_ctx *ctx, db_tensor dinp, db_tensor dqkvr, db_tensor datt, db_tensor scratch,
                        db_tensor dout, db_tensor qkvr, db_tensor att, int B, int T, int C, int NH) {
  const char *op = "attention_backward";
  int hs = head_size(op, B, T, C, NH);
  size_t BT = (size_t)B * T, nh_rows = (size_t)B * NH * T, sec = nh_rows * hs;
  db_check_numel(dinp, BT * 3 * C, op, "dinp");
  db_check_numel(dqkvr, 3 * sec, op, "dqkvr");
  db_check_numel(datt, nh_rows * T, op, "datt");
  db_check_numel(scratch, sec, op, "scratch");
  db_check_numel(dout, BT * C, op, "dout");
  db_check_numel(qkvr, 3 * sec, op, "qkvr");
  db_check_numel(att, nh_rows * T, op, "att");

  size_t batch = (size_t)B * NH, tt = (size_t)T * T, ths = (size_t)T * hs;
  /* scratch = dout per head, (B,NH,T,hs) */
  gather_heads(ctx, scratch, dout, 1, B, T, C, NH, C);
  /* datt = dout_h @ v^T */
  gemm_batched(ctx, 0, 1, T, T, hs, scratch, 0, hs, ths, qkvr, 2 * sec, hs, ths, datt, 0, T, tt, batch);
  /* dv = att^T @ dout_h */
  gemm_batched(ctx, 1, 0, T, hs, T, att, 0, T, tt, scratch, 0, hs, ths, dqkvr, 2 * sec, hs, ths, batch);
  /* datt <- dpre = scale * att * (datt - rowsum(att * datt)) */
  size_t wg = db_row_group_size(ctx, T);
  db_args a = db_args_begin(ctx, "attention", "attention_softmax_backward");
  db_arg_tensor(&a, datt);
  db_arg_tensor(&a, att);
  db_arg_i32(&a, T);
  db_arg_f32(&a, (float)(1.0 / sqrt((double)hs)));
  db_arg_local(&a, wg * sizeof(float));
  db_launch_1d(&a, nh_rows * wg, wg);
  /* dq = dpre @ k; dk = dpre^T @ q */
  gemm_batched(ctx, 0, 0, T, hs, T, datt, 0, T, tt, qkvr, sec, hs, ths, dqkvr, 0, hs, ths, batch);
  gemm_batched(ctx, 1, 0, T, hs, T, datt, 0, T, tt, qkvr, 0, hs, ths, dqkvr, sec, hs, ths, batch);
  /* dinp += dqkvr, back in the packed (B,T,3C) layout */
  scatter_heads(ctx, dinp, dqkvr, 3, B, T, C, NH, 1);
}
