/* Fused multi-head self-attention (FlashAttention-2 style, cl/attention.cl):
 * q, k, v straight from the packed (B,T,3C) qkv, an online softmax that saves
 * only the per-row log-sum-exp, and a backward that recomputes the
 * probabilities. Memory is O(B*T*C): no (B,NH,T,T) matrix, no head permutes.
 *
 * Two launch shapes (see the .cl file): on a CPU device (ctx->row_wg == 1,
 * PoCL) one work-item per row in small groups, without barriers; elsewhere
 * work-groups of db_row_group_size(ctx, T) rows that stage keys/queries in
 * local-memory tiles. attention_force_group_size picks either for tests. */
#include "ops.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define ATTN_HS_MAX 128     /* HS_MAX in cl/attention.cl */
#define ATTN_CPU_GROUP 8    /* rows per work-group of the *_rows kernels */
#define BLOCKED_GROUP 1    /* work-items per group of the blocked kernels: explicit vectors, no
                              * implicit vectorisation across items (as the GEMM's 1x1 groups) */
#define ATTN_TILE_BYTES 16384 /* local memory for one group's tiles, at most */

static size_t forced_group; /* attention_force_group_size; 0 = automatic */

static db_kernel_ref K_FORWARD[2] = {DB_KERNEL_REF("attention", "attention_forward_rows"),
                                     DB_KERNEL_REF("attention", "attention_forward_tiled")};
static db_kernel_ref K_BACKWARD_DSUM = DB_KERNEL_REF("attention", "attention_backward_dsum");
static db_kernel_ref K_BACKWARD[2][2] = { /* [dq, dkv][rows, tiled] */
    {DB_KERNEL_REF("attention", "attention_backward_dq_rows"), DB_KERNEL_REF("attention", "attention_backward_dq_tiled")},
    {DB_KERNEL_REF("attention", "attention_backward_dkv_rows"), DB_KERNEL_REF("attention", "attention_backward_dkv_tiled")}};

size_t attention_force_group_size(size_t n) {
  size_t prev = forced_group;
  forced_group = n;
  return prev;
}

static int head_size(const char *op, int B, int T, int C, int NH) {
  if (B <= 0 || T <= 0 || C <= 0 || NH <= 0)
    db_fail("%s: sizes must be positive (B=%d T=%d C=%d NH=%d)", op, B, T, C, NH);
  if (C % NH != 0) db_fail("%s: C=%d is not divisible by the number of heads NH=%d", op, C, NH);
  if (C / NH > ATTN_HS_MAX)
    db_fail("%s: head size C/NH=%d exceeds the kernels' maximum %d (use more heads)", op, C / NH, ATTN_HS_MAX);
  return C / NH;
}

/* The mask's batch stride: 0 for one (T,T) mask shared by the batch, T*T for
 * a (B,T,T) mask; fails clearly for any other size or a missing mask. */
static size_t mask_stride(const char *op, db_tensor mask, int mode, int B, int T) {
  if (mode == ATTN_BIDIRECTIONAL || mode == ATTN_CAUSAL) return 0;
  if (mode == ATTN_BLOCKDIFF) {
    if (T % 2 != 0) db_fail("%s: ATTN_BLOCKDIFF needs an even T ([noisy | clean] halves), got T=%d", op, T);
    return 0;
  }
  if (mode != ATTN_MASK)
    db_fail("%s: unknown mode %d (expected ATTN_BIDIRECTIONAL, ATTN_CAUSAL, ATTN_MASK or ATTN_BLOCKDIFF)", op, mode);
  size_t tt = (size_t)T * T;
  if (db_is_null(mask)) db_check_numel(mask, tt, op, "mask"); /* "argument mask is missing" */
  size_t n = db_numel(mask);
  if (n == tt) return 0;
  if (n == (size_t)B * tt) return tt;
  db_fail("%s: argument mask has %zu elements; expected T*T = %zu (shared) or B*T*T = %zu (per sample)", op, n, tt,
          (size_t)B * tt);
  return 0;
}

/* The launch: tiled (GPU path) with `wg` rows per group, blocked (CPU path,
 * cl/attention_blocked.cl, head sizes divisible by 4) or rows (CPU path for
 * the other head sizes). */
typedef struct { int tiled, blocked; size_t wg; int tk; } attn_launch;

static int blocked_fits(int hs) { return hs % 4 == 0; }

static attn_launch pick_launch(db_ctx *ctx, db_kernel_ref *tiled, int T, int hs, int tile_row_floats) {
  attn_launch L = {0, 0, ATTN_CPU_GROUP, 0};
  if (forced_group == ATTN_BLOCKED_PATH || (!forced_group && ctx->row_wg == 1)) {
    L.blocked = blocked_fits(hs);
    return L;
  }
  size_t wg = forced_group ? forced_group : db_row_group_size(ctx, T);
  if (wg == 1) return L; /* the rows path */
  size_t kmax = 0;
  CL_CHECK(clGetKernelWorkGroupInfo(db_kernel_ref_get(ctx, tiled), ctx->dev.device,
                                    CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL));
  if (wg > kmax) {
    if (forced_group)
      db_fail("attention: work-group size %zu exceeds kernel %s's maximum %zu (CL_KERNEL_WORK_GROUP_SIZE)", wg,
              tiled->name, kmax);
    while (wg > kmax) wg /= 2;
  }
  size_t budget = ctx->dev.local_mem / 2 < ATTN_TILE_BYTES ? ctx->dev.local_mem / 2 : ATTN_TILE_BYTES;
  size_t tk = budget / ((size_t)tile_row_floats * sizeof(float));
  if (tk > 64) tk = 64;
  if (tk < 1) tk = 1;
  L.tiled = 1;
  L.wg = wg;
  L.tk = (int)tk;
  return L;
}

/* Arguments every attention kernel starts with after its outputs: qkv, mask, sizes, scale, mode. */
static void common_args(db_args *a, db_tensor qkv, db_tensor mask, size_t mstride, int mode, int B, int T, int C,
                        int NH) {
  db_arg_tensor(a, qkv);
  db_arg_tensor(a, mode == ATTN_MASK ? mask : DB_NULL);
  db_arg_u64(a, mstride);
  db_arg_i32(a, B);
  db_arg_i32(a, T);
  db_arg_i32(a, C);
  db_arg_i32(a, NH);
  db_arg_f32(a, (float)(1.0 / sqrt((double)(C / NH))));
  db_arg_i32(a, mode);
}

/* Launches a kernel of B*NH*T rows in the shape L: for tiled kernels, adds the
 * tile size and `ntiles` local tiles of tk*hs floats (+ `nvec` of tk floats). */
static void launch_rows(db_args *a, attn_launch L, int B, int T, int NH, int hs, int ntiles, int nvec) {
  size_t rows = (size_t)B * NH * T;
  if (!L.tiled) {
    db_launch_1d(a, rows, L.wg);
    return;
  }
  db_arg_i32(a, L.tk);
  for (int t = 0; t < ntiles; t++) db_arg_local(a, (size_t)L.tk * hs * sizeof(float));
  for (int t = 0; t < nvec; t++) db_arg_local(a, (size_t)L.tk * sizeof(float));
  size_t blocks = ((size_t)T + L.wg - 1) / L.wg;
  db_launch_1d(a, (size_t)B * NH * blocks * L.wg, L.wg);
}

/* ---- the blocked CPU path (cl/attention_blocked.cl) */
enum { BK_TRANSPOSE, BK_FORWARD, BK_DQ, BK_DKV, BK_COUNT };
static const char *const BK_NAMES[BK_COUNT] = {"attention_transpose_heads", "attention_forward_blocked",
                                               "attention_backward_dq_blocked", "attention_backward_dkv_blocked"};
/* Rows per work-item of each blocked kernel: as many accumulator rows (hs/16
 * zmm each; dk, dv: two) as fit AVX-512's 32 registers beside the score
 * chains (forward: two per row, dq and dk/dv: four) and the loads. */
static int blocked_rows_per_item(int hs, int which) {
  int big = hs > 64;
  return which == BK_FORWARD ? (big ? 2 : 4) : which == BK_DQ ? (big ? 1 : 2) : (big ? 1 : 2);
}
/* Handles per head size met (a model has one), in a fixed table so their
 * option strings never move; past it, the lookup by name. */
#define BLOCKED_HEAD_SIZES 8
static struct { int hs; char opts[64]; db_kernel_ref k[BK_COUNT]; } blk[BLOCKED_HEAD_SIZES];
static int n_blk;

static cl_kernel blocked_kernel(db_ctx *ctx, int which, int hs) {
  for (int i = 0; i < n_blk; i++)
    if (blk[i].hs == hs) return db_kernel_ref_get(ctx, &blk[i].k[which]);
  int vd = hs % 16 == 0 ? 16 : hs % 8 == 0 ? 8 : 4;
  char opts[64];
  snprintf(opts, sizeof opts, "-DHS=%d -DVD=%d -DQB=%d -DQD=%d -DKB=%d", hs, vd, blocked_rows_per_item(hs, BK_FORWARD),
           blocked_rows_per_item(hs, BK_DQ), blocked_rows_per_item(hs, BK_DKV));
  if (n_blk == BLOCKED_HEAD_SIZES) return db_kernel_opts(ctx, "attention_blocked", BK_NAMES[which], opts);
  blk[n_blk].hs = hs;
  memcpy(blk[n_blk].opts, opts, sizeof opts);
  for (int k = 0; k < BK_COUNT; k++)
    blk[n_blk].k[k] = (db_kernel_ref)DB_KERNEL_REF_OPTS("attention_blocked", BK_NAMES[k], blk[n_blk].opts);
  return db_kernel_ref_get(ctx, &blk[n_blk++].k[which]);
}
static int padded_tokens(int T) { return (T + 15) / 16 * 16; }

static db_tensor from_offset(db_tensor t, size_t off) {
  int n = (int)(db_numel(t) - off);
  return db_view(t, off, 1, &n);
}

/* Head h of the (B,T,ld) rows at `src` (element offset into its buffer) into
 * dst (B*NH, hs, tp), zeros past T. */
static void transpose_heads(db_ctx *ctx, db_tensor dst, size_t dst_off, db_tensor src, size_t src_off, size_t ld, int B,
                            int T, int NH, int hs) {
  int tp = padded_tokens(T);
  db_args a = {ctx, blocked_kernel(ctx, BK_TRANSPOSE, hs), 0};
  db_arg_tensor(&a, from_offset(dst, dst_off));
  db_arg_tensor(&a, from_offset(src, src_off));
  db_arg_u64(&a, ld);
  db_arg_i32(&a, B);
  db_arg_i32(&a, T);
  db_arg_i32(&a, NH);
  db_arg_i32(&a, tp);
  db_launch_2d(&a, (size_t)tp / 16, (size_t)B * NH, 1, 1);
}


static void forward_blocked(db_ctx *ctx, db_tensor out, db_tensor lse, db_tensor qkv, db_tensor mask, size_t ms, int mode,
                            int B, int T, int C, int NH) {
  int hs = C / NH, rows = blocked_rows_per_item(hs, BK_FORWARD);
  size_t sec = (size_t)B * C * padded_tokens(T);
  db_tensor kt = db_workspace(ctx, 0, sec); /* K transposed */
  transpose_heads(ctx, kt, 0, qkv, C, 3 * (size_t)C, B, T, NH, hs);
  db_args a = {ctx, blocked_kernel(ctx, BK_FORWARD, hs), 0};
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, lse);
  db_arg_tensor(&a, kt);
  common_args(&a, qkv, mask, ms, mode, B, T, C, NH);
  db_arg_i32(&a, padded_tokens(T));
  db_launch_1d(&a, (size_t)B * NH * ((T + rows - 1) / rows), BLOCKED_GROUP);
}

static void backward_blocked(db_ctx *ctx, db_tensor dqkv, db_tensor dsum, db_tensor dout, db_tensor lse, db_tensor qkv,
                             db_tensor mask, size_t ms, int mode, int B, int T, int C, int NH) {
  int hs = C / NH;
  size_t sec = (size_t)B * C * padded_tokens(T);
  db_tensor tr = db_workspace(ctx, 0, 4 * sec); /* Q, K, V, dO transposed */
  for (int s = 0; s < 3; s++) transpose_heads(ctx, tr, s * sec, qkv, (size_t)s * C, 3 * (size_t)C, B, T, NH, hs);
  transpose_heads(ctx, tr, 3 * sec, dout, 0, (size_t)C, B, T, NH, hs);
  for (int k = 0; k < 2; k++) { /* k = 0: dq per query rows; 1: dk, dv per key rows */
    int rows = blocked_rows_per_item(hs, k ? BK_DKV : BK_DQ);
    db_args a = {ctx, blocked_kernel(ctx, k ? BK_DKV : BK_DQ, hs), 0};
    db_arg_tensor(&a, dqkv);
    db_arg_tensor(&a, dout);
    db_arg_tensor(&a, lse);
    db_arg_tensor(&a, dsum);
    db_arg_tensor(&a, tr);
    common_args(&a, qkv, mask, ms, mode, B, T, C, NH);
    db_arg_i32(&a, padded_tokens(T));
    db_launch_1d(&a, (size_t)B * NH * ((T + rows - 1) / rows), BLOCKED_GROUP);
  }
}

void attention_forward(db_ctx *ctx, db_tensor out, db_tensor lse, db_tensor qkv, db_tensor mask, int mode, int B,
                       int T, int C, int NH) {
  const char *op = "attention_forward";
  int hs = head_size(op, B, T, C, NH);
  size_t BT = (size_t)B * T;
  db_check_numel(out, BT * C, op, "out");
  db_check_numel(lse, BT * NH, op, "lse");
  db_check_numel(qkv, BT * 3 * C, op, "qkv");
  size_t ms = mask_stride(op, mask, mode, B, T);
  attn_launch L = pick_launch(ctx, &K_FORWARD[1], T, hs, 2 * hs);
  if (L.blocked) {
    forward_blocked(ctx, out, lse, qkv, mask, ms, mode, B, T, C, NH);
    return;
  }
  db_args a = db_args_ref(ctx, &K_FORWARD[L.tiled]);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, lse);
  common_args(&a, qkv, mask, ms, mode, B, T, C, NH);
  launch_rows(&a, L, B, T, NH, hs, 2, 0);
}

void attention_backward(db_ctx *ctx, db_tensor dqkv, db_tensor dsum, db_tensor dout, db_tensor out, db_tensor lse,
                        db_tensor qkv, db_tensor mask, int mode, int B, int T, int C, int NH) {
  const char *op = "attention_backward";
  int hs = head_size(op, B, T, C, NH);
  size_t BT = (size_t)B * T;
  db_check_numel(dqkv, BT * 3 * C, op, "dqkv");
  db_check_numel(dsum, BT * NH, op, "dsum");
  db_check_numel(dout, BT * C, op, "dout");
  db_check_numel(out, BT * C, op, "out");
  db_check_numel(lse, BT * NH, op, "lse");
  db_check_numel(qkv, BT * 3 * C, op, "qkv");
  size_t ms = mask_stride(op, mask, mode, B, T);

  /* D = rowsum(dout * out), per head */
  db_args a = db_args_ref(ctx, &K_BACKWARD_DSUM);
  db_arg_tensor(&a, dsum);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, out);
  db_arg_i32(&a, B);
  db_arg_i32(&a, T);
  db_arg_i32(&a, C);
  db_arg_i32(&a, NH);
  db_launch_1d(&a, BT * NH, 0);

  if (pick_launch(ctx, &K_BACKWARD[0][1], T, hs, 2 * hs).blocked) {
    backward_blocked(ctx, dqkv, dsum, dout, lse, qkv, mask, ms, mode, B, T, C, NH);
    return;
  }
  for (int k = 0; k < 2; k++) { /* k = 0: dq per query row; 1: dk, dv per key row */
    attn_launch L = pick_launch(ctx, &K_BACKWARD[k][1], T, hs, 2 * hs + (k ? 2 : 0));
    a = db_args_ref(ctx, &K_BACKWARD[k][L.tiled]);
    db_arg_tensor(&a, dqkv);
    db_arg_tensor(&a, dout);
    db_arg_tensor(&a, lse);
    db_arg_tensor(&a, dsum);
    common_args(&a, qkv, mask, ms, mode, B, T, C, NH);
    launch_rows(&a, L, B, T, NH, hs, 2, k ? 2 : 0);
  }
}

/* ---- decoding with a K/V cache: one work-group per (sample, head) */
static db_kernel_ref K_DECODE = DB_KERNEL_REF("attention", "attention_decode_forward");

void attention_decode_forward(db_ctx *ctx, db_tensor out, db_tensor qkv, int n, int B, int Tcap, int C, int NH) {
  const char *op = "attention_decode_forward";
  int hs = head_size(op, B, Tcap, C, NH);
  if (n < 1 || n > Tcap) db_fail("%s: n=%d tokens outside the cache's 1..Tcap=%d", op, n, Tcap);
  db_check_numel(out, (size_t)B * C, op, "out");
  db_check_numel(qkv, (size_t)B * Tcap * 3 * C, op, "qkv");
  db_args a = db_args_ref(ctx, &K_DECODE);
  size_t wg = db_row_group_size_for(&a, n);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, qkv);
  db_arg_i32(&a, n);
  db_arg_i32(&a, Tcap);
  db_arg_i32(&a, C);
  db_arg_i32(&a, NH);
  db_arg_f32(&a, (float)(1.0 / sqrt((double)hs)));
  db_arg_local(&a, wg * sizeof(float));
  db_launch_1d(&a, (size_t)B * NH * wg, wg);
}
