/* Deterministic device reductions to a scalar (losses, gradient norms).
 * Pass 1 writes one partial per work-group into a workspace, pass 2 sums the
 * partials with a single work-group. No atomics, no host round trip. */
#include "ops.h"

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static db_kernel_ref K_PARTIALS = DB_KERNEL_REF("reduce", "reduce_partials");
static db_kernel_ref K_FINAL = DB_KERNEL_REF("reduce", "reduce_final");

#define REDUCE_MAX_GROUPS 256

/* Largest power of two <= the context's default work-group size and the
 * kernel's CL_KERNEL_WORK_GROUP_SIZE, or exactly the forced row-reduction
 * size (db_force_row_group_size; above the kernel's maximum it is a clear
 * error), so tests run the tree at 1 and at the device maximum too. */
static size_t reduce_group_size(db_args *a) {
  db_ctx *ctx = a->ctx;
  if (ctx->row_wg_forced) return db_row_group_size_for(a, 0);
  size_t kmax = 0;
  CL_CHECK(clGetKernelWorkGroupInfo(a->k, ctx->dev.device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL));
  size_t wg = 1;
  while (wg * 2 <= ctx->wg && wg * 2 <= kmax) wg *= 2;
  return wg;
}

/* The partials buffer: the runtime's workspace slot 4 (db_workspace), so the
 * live/peak counters and the memory limit see it. A slot of its own, shared
 * with no other op's scratch; its size is fixed (REDUCE_MAX_GROUPS). Growing it
 * releases the old buffer, safe with work in flight: OpenCL defers the free. */
static db_tensor reduce_scratch(db_ctx *ctx, size_t n) {
  int shape[1] = {(int)n};
  return db_view(db_workspace(ctx, 4, n), 0, 1, shape);
}

static void reduce_run(db_ctx *ctx, db_tensor out, db_tensor inp, size_t n, int square, int add) {
  db_args a = db_args_ref(ctx, &K_PARTIALS);
  size_t wg = reduce_group_size(&a);
  size_t groups = (n + wg - 1) / wg;
  if (groups > REDUCE_MAX_GROUPS) groups = REDUCE_MAX_GROUPS;
  db_tensor part = reduce_scratch(ctx, REDUCE_MAX_GROUPS);

  db_arg_tensor(&a, part);
  db_arg_tensor(&a, inp);
  db_arg_u64(&a, (uint64_t)n);
  db_arg_i32(&a, square);
  db_arg_local(&a, wg * sizeof(float));
  db_launch_1d(&a, groups * wg, wg);

  db_args b = db_args_ref(ctx, &K_FINAL);
  wg = reduce_group_size(&b);
  db_arg_tensor(&b, out);
  db_arg_tensor(&b, part);
  db_arg_i32(&b, (int)groups);
  db_arg_i32(&b, add);
  db_arg_local(&b, wg * sizeof(float));
  db_launch_1d(&b, wg, wg);
}

void reduce_sum(db_ctx *ctx, db_tensor out, db_tensor inp, size_t n) {
  db_check_numel(out, 1, "reduce_sum", "out");
  db_check_numel(inp, n, "reduce_sum", "inp");
  if (n == 0) { db_zero(ctx, out); return; }
  reduce_run(ctx, out, inp, n, 0, 0);
}

void reduce_sumsq_add(db_ctx *ctx, db_tensor out, db_tensor inp, size_t n) {
  db_check_numel(out, 1, "reduce_sumsq_add", "out");
  db_check_numel(inp, n, "reduce_sumsq_add", "inp");
  if (n == 0) return;
  reduce_run(ctx, out, inp, n, 1, 1);
}
