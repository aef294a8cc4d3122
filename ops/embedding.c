/* Embedding lookup (class labels, tokens) with a deterministic backward.
 * Indices outside [0, V) are skipped: they read as a zero row and receive no
 * gradient (nothing is read or written out of bounds). */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static db_kernel_ref K_FORWARD = DB_KERNEL_REF("embedding", "embedding_forward");
static db_kernel_ref K_BACKWARD = DB_KERNEL_REF("embedding", "embedding_backward");

/* Vocabulary rows per work-group in the backward; see cl/embedding.cl. Each
 * group scans all N indices, so the scan costs ceil(V/B) * ceil(C/CT) * N
 * compares in all, while B bounds how many rows share one group's adds. */
#define EMB_ROWS_PER_GROUP 256

static void check_i32(db_tensor t, const char *op, const char *arg) {
  if (t.dtype != DB_I32) db_fail("%s: argument %s must be an int32 tensor", op, arg);
}

/* Element-kernel tile: a power of two <= min(n rounded up, ctx->wg). */
static size_t elem_tile(db_ctx *ctx, int n) {
  size_t l = 1;
  while (l * 2 <= ctx->wg && l < (size_t)n) l *= 2;
  return l;
}

void embedding_forward(db_ctx *ctx, db_tensor out, db_tensor idx, db_tensor table, int N, int C, int V) {
  const char *op = "embedding_forward";
  if (N < 0 || C <= 0 || V <= 0) db_fail("%s: invalid sizes N=%d C=%d V=%d", op, N, C, V);
  db_check_numel(out, (size_t)N * C, op, "out");
  db_check_numel(idx, (size_t)N, op, "idx");
  db_check_numel(table, (size_t)V * C, op, "table");
  check_i32(idx, op, "idx");
  size_t l0 = elem_tile(ctx, C), l1 = ctx->wg / l0 ? ctx->wg / l0 : 1;
  if (N > 0 && l1 > (size_t)N) l1 = (size_t)N;
  db_args a = db_args_ref(ctx, &K_FORWARD);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, idx);
  db_arg_tensor(&a, table);
  db_arg_i32(&a, N);
  db_arg_i32(&a, C);
  db_arg_i32(&a, V);
  db_launch_2d(&a, (size_t)C, (size_t)N, l0, l1);
}

void embedding_backward(db_ctx *ctx, db_tensor dtable, db_tensor dout, db_tensor idx, int N, int C, int V) {
  const char *op = "embedding_backward";
  if (N < 0 || C <= 0 || V <= 0) db_fail("%s: invalid sizes N=%d C=%d V=%d", op, N, C, V);
  db_check_numel(dtable, (size_t)V * C, op, "dtable");
  db_check_numel(dout, (size_t)N * C, op, "dout");
  db_check_numel(idx, (size_t)N, op, "idx");
  check_i32(idx, op, "idx");
  if (N == 0) return;
  /* L: the scan width and work-group size, capped like other grouped
   * reductions (1 on CPU drivers, where a group is a loop and barriers cost
   * more than they save). CT: columns per group; a lone work-item takes
   * whole rows, and its parallelism comes from the vocabulary blocks. */
  size_t L = db_row_group_size(ctx, N > C ? N : C);
  size_t CT = L > 1 ? L : (size_t)C;
  size_t groups_c = ((size_t)C + CT - 1) / CT;
  size_t groups_v = ((size_t)V + EMB_ROWS_PER_GROUP - 1) / EMB_ROWS_PER_GROUP;
  db_args a = db_args_ref(ctx, &K_BACKWARD);
  db_arg_tensor(&a, dtable);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, idx);
  db_arg_i32(&a, N);
  db_arg_i32(&a, C);
  db_arg_i32(&a, V);
  db_arg_i32(&a, EMB_ROWS_PER_GROUP);
  db_arg_i32(&a, (int)CT);
  db_arg_local(&a, L * sizeof(int));
  db_arg_local(&a, L * sizeof(int));
  db_arg_local(&a, L * sizeof(int));
  db_launch_2d(&a, groups_c * L, groups_v, L, 1);
}
