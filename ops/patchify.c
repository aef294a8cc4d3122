/* Patch embedding's reshape half and the final-layer un-reshape: images
 * (N,Cin,H,W) <-> tokens (N, T=(H/p)(W/p), p*p*Cin). Pure permutations, so
 * each backward is the other op's gather, accumulating. */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static db_kernel_ref K_TO_TOKENS = DB_KERNEL_REF("patchify", "patch_to_tokens");
static db_kernel_ref K_TO_IMAGE = DB_KERNEL_REF("patchify", "patch_to_image");

static size_t check_dims(const char *op, int N, int Cin, int H, int W, int p) {
  if (N < 0 || Cin <= 0 || H <= 0 || W <= 0 || p <= 0)
    db_fail("%s: invalid sizes N=%d Cin=%d H=%d W=%d p=%d", op, N, Cin, H, W, p);
  if (H % p || W % p) db_fail("%s: H=%d and W=%d must be divisible by the patch size p=%d", op, H, W, p);
  return (size_t)N * Cin * H * W;
}

/* kernel K_TO_TOKENS or K_TO_IMAGE: one work-item per patch row of p pixels,
 * on a (W/p, N*Cin*H) grid. */
static void launch(db_ctx *ctx, db_kernel_ref *kernel, db_tensor dst, db_tensor src, size_t total, int Cin, int H,
                   int W, int p, int acc) {
  size_t rows = total / (size_t)W, gw = (size_t)(W / p), l0 = 1;
  if (rows == 0) return;
  if (rows > 0x7fffffff) db_fail("%s: %zu image rows exceed the kernel's int range", kernel->name, rows);
  while (l0 * 2 <= ctx->wg && l0 < gw) l0 *= 2;
  size_t l1 = ctx->wg / l0;
  while (l1 > 1 && l1 / 2 >= rows) l1 /= 2;
  db_args a = db_args_ref(ctx, kernel);
  db_arg_tensor(&a, dst);
  db_arg_tensor(&a, src);
  db_arg_i32(&a, (int)rows);
  db_arg_i32(&a, Cin);
  db_arg_i32(&a, H);
  db_arg_i32(&a, W);
  db_arg_i32(&a, p);
  db_arg_i32(&a, acc);
  db_launch_2d(&a, gw, rows, l0, l1);
}

void patchify_forward(db_ctx *ctx, db_tensor out, db_tensor img, int N, int Cin, int H, int W, int p) {
  const char *op = "patchify_forward";
  size_t n = check_dims(op, N, Cin, H, W, p);
  db_check_numel(out, n, op, "out");
  db_check_numel(img, n, op, "img");
  launch(ctx, &K_TO_TOKENS, out, img, n, Cin, H, W, p, 0);
}

void patchify_backward(db_ctx *ctx, db_tensor dimg, db_tensor dout, int N, int Cin, int H, int W, int p) {
  const char *op = "patchify_backward";
  size_t n = check_dims(op, N, Cin, H, W, p);
  db_check_numel(dimg, n, op, "dimg");
  db_check_numel(dout, n, op, "dout");
  launch(ctx, &K_TO_IMAGE, dimg, dout, n, Cin, H, W, p, 1);
}

void unpatchify_forward(db_ctx *ctx, db_tensor img, db_tensor inp, int N, int Cin, int H, int W, int p) {
  const char *op = "unpatchify_forward";
  size_t n = check_dims(op, N, Cin, H, W, p);
  db_check_numel(img, n, op, "img");
  db_check_numel(inp, n, op, "inp");
  launch(ctx, &K_TO_IMAGE, img, inp, n, Cin, H, W, p, 0);
}

void unpatchify_backward(db_ctx *ctx, db_tensor dinp, db_tensor dimg, int N, int Cin, int H, int W, int p) {
  const char *op = "unpatchify_backward";
  size_t n = check_dims(op, N, Cin, H, W, p);
  db_check_numel(dinp, n, op, "dinp");
  db_check_numel(dimg, n, op, "dimg");
  launch(ctx, &K_TO_TOKENS, dinp, dimg, n, Cin, H, W, p, 1);
}
