/* Patch embedding's reshape half and the final-layer un-reshape: images
 * (N,Cin,H,W) <-> tokens (N, T=(H/p)(W/p), p*p*Cin). Pure permutations, so
 * each backward is the other op's gather, accumulating. */
#include "ops.h"

static size_t check_dims(const char *op, int N, int Cin, int H, int W, int p) {
  if (N < 0 || Cin <= 0 || H <= 0 || W <= 0 || p <= 0)
    db_fail("%s: invalid sizes N=%d Cin=%d H=%d W=%d p=%d", op, N, Cin, H, W, p);
  if (H % p || W % p) db_fail("%s: H=%d and W=%d must be divisible by the patch size p=%d", op, H, W, p);
  return (size_t)N * Cin * H * W;
}

/* kernel "patch_to_tokens" or "patch_to_image"; total = elements of dst */
static void launch(db_ctx *ctx, const char *kernel, db_tensor dst, db_tensor src, size_t total, int Cin, int H,
                   int W, int p, int acc) {
  db_args a = db_args_begin(ctx, "patchify", kernel);
  db_arg_tensor(&a, dst);
  db_arg_tensor(&a, src);
  db_arg_u64(&a, (uint64_t)total);
  db_arg_i32(&a, Cin);
  db_arg_i32(&a, H);
  db_arg_i32(&a, W);
  db_arg_i32(&a, p);
  db_arg_i32(&a, acc);
  db_launch_1d(&a, total, 0);
}

void patchify_forward(db_ctx *ctx, db_tensor out, db_tensor img, int N, int Cin, int H, int W, int p) {
  const char *op = "patchify_forward";
  size_t n = check_dims(op, N, Cin, H, W, p);
  db_check_numel(out, n, op, "out");
  db_check_numel(img, n, op, "img");
  launch(ctx, "patch_to_tokens", out, img, n, Cin, H, W, p, 0);
}

void patchify_backward(db_ctx *ctx, db_tensor dimg, db_tensor dout, int N, int Cin, int H, int W, int p) {
  const char *op = "patchify_backward";
  size_t n = check_dims(op, N, Cin, H, W, p);
  db_check_numel(dimg, n, op, "dimg");
  db_check_numel(dout, n, op, "dout");
  launch(ctx, "patch_to_image", dimg, dout, n, Cin, H, W, p, 1);
}

void unpatchify_forward(db_ctx *ctx, db_tensor img, db_tensor inp, int N, int Cin, int H, int W, int p) {
  const char *op = "unpatchify_forward";
  size_t n = check_dims(op, N, Cin, H, W, p);
  db_check_numel(img, n, op, "img");
  db_check_numel(inp, n, op, "inp");
  launch(ctx, "patch_to_image", img, inp, n, Cin, H, W, p, 0);
}

void unpatchify_backward(db_ctx *ctx, db_tensor dinp, db_tensor dimg, int N, int Cin, int H, int W, int p) {
  const char *op = "unpatchify_backward";
  size_t n = check_dims(op, N, Cin, H, W, p);
  db_check_numel(dinp, n, op, "dinp");
  db_check_numel(dimg, n, op, "dimg");
  launch(ctx, "patch_to_tokens", dinp, dimg, n, Cin, H, W, p, 1);
}
