/* The one OpenCL context and in-order queue of the process: created by
 * db_init on the selected device, torn down by db_shutdown. */
#include "db.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void CL_CALLBACK context_error(const char *msg, const void *info, size_t cb, void *user) {
  (void)info; (void)cb; (void)user;
  fprintf(stderr, "dblocks: OpenCL context reports: %s\n", msg);
}

/* DBLOCKS_ROW_WG=n forces the row-reduction work-group size for a manual run
 * (e.g. the GPU sizes on PoCL); empty or 0 leaves the device's choice. */
static void apply_row_wg_env(db_ctx *ctx) {
  const char *s = getenv("DBLOCKS_ROW_WG");
  if (!s || !*s) return;
  char *end;
  unsigned long long n = strtoull(s, &end, 10);
  if (*end || s[0] == '-' || (n & (n - 1)) || n > ctx->dev.max_wg)
    db_fail("DBLOCKS_ROW_WG=%s: want 0 (the device's choice) or a power of two <= %zu "
            "(CL_DEVICE_MAX_WORK_GROUP_SIZE of %s)", s, ctx->dev.max_wg, ctx->dev.name);
  db_force_row_group_size(ctx, (size_t)n);
}

/* DBLOCKS_MEM_LIMIT=SIZE caps the device memory the runtime allocates
 * (db_set_mem_limit; sizes as db_parse_size reads them); unset or empty leaves
 * the limit as it is (none, unless set before). */
static void apply_mem_limit_env(void) {
  const char *s = getenv("DBLOCKS_MEM_LIMIT");
  if (!s || !*s) return;
  size_t bytes;
  if (!db_parse_size(s, &bytes))
    db_fail("DBLOCKS_MEM_LIMIT=%s: want a size in bytes, optionally with a suffix K, M, G, KiB, MiB or GiB "
            "(e.g. 512M, 1.5G)", s);
  db_set_mem_limit(bytes);
}

/* Context ids for kernel handles (db_kernel_ref): unique in the process and
 * never 0, so a handle never mistakes a new context for a freed one that had
 * the same address. */
static unsigned next_ctx_id;

db_ctx *db_init(const char *spec) {
  if (!spec) spec = getenv("DBLOCKS_DEVICE");
  apply_mem_limit_env(); /* first: a bad value fails before anything is made */
  db_ctx *ctx = db_calloc(1, sizeof *ctx);
  ctx->id = ++next_ctx_id;
  ctx->dev = db_select_device(spec);
  ctx->wg = ctx->dev.max_wg < 256 ? ctx->dev.max_wg : 256;
  /* CPU drivers (PoCL) run a work-group as a loop; barriers inside a group
   * cost more than they save, so a row is reduced by one work-item there.
   * Measured on PoCL, layernorm N=784 C=384: 0.9 GB/s at 256, 7.6 GB/s at 1. */
  ctx->row_wg = ctx->row_wg_device = (ctx->dev.type & CL_DEVICE_TYPE_CPU) ? 1 : ctx->wg;
  apply_row_wg_env(ctx); /* before the context: a bad value leaks no OpenCL object */
  cl_int err;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->dev.platform, 0};
  ctx->context = clCreateContext(props, 1, &ctx->dev.device, context_error, NULL, &err);
  CL_CHECK(err);
  /* Profiling is always on: benchmarks time from events, and the cost is
   * paid only when an event is requested. */
  ctx->queue = clCreateCommandQueue(ctx->context, ctx->dev.device, CL_QUEUE_PROFILING_ENABLE, &err);
  CL_CHECK(err);
  const char *prof = getenv("DBLOCKS_PROFILE");
  ctx->profiling = prof && *prof && strcmp(prof, "0") != 0;
  return ctx;
}

size_t db_force_row_group_size(db_ctx *ctx, size_t n) {
  size_t prev = ctx->row_wg_forced ? ctx->row_wg : 0;
  if (n == 0) {
    ctx->row_wg = ctx->row_wg_device;
    ctx->row_wg_forced = 0;
    return prev;
  }
  if (n & (n - 1))
    db_fail("row-reduction work-group size %zu is not a power of two (the tree reductions halve it)", n);
  if (n > ctx->dev.max_wg)
    db_fail("row-reduction work-group size %zu exceeds the device's maximum %zu (CL_DEVICE_MAX_WORK_GROUP_SIZE of %s)",
            n, ctx->dev.max_wg, ctx->dev.name);
  ctx->row_wg = n;
  ctx->row_wg_forced = 1;
  return prev;
}

size_t db_row_group_size(db_ctx *ctx, int row_len) {
  if (ctx->row_wg_forced) return ctx->row_wg;
  size_t wg = 1;
  while (wg * 2 <= ctx->row_wg && wg < (size_t)row_len) wg *= 2;
  return wg;
}

void db_finish(db_ctx *ctx) { CL_CHECK(clFinish(ctx->queue)); }

void db_shutdown(db_ctx *ctx) {
  if (!ctx) return;
  clFinish(ctx->queue);
  db_profile_report(ctx);
  db_programs_release(ctx);
  clReleaseCommandQueue(ctx->queue);
  clReleaseContext(ctx->context);
  free(ctx);
}

size_t db_row_group_size_for(db_args *a, int row_len) {
  size_t wg = db_row_group_size(a->ctx, row_len);
  if (wg == 1) return wg;
  size_t kmax = 0;
  CL_CHECK(clGetKernelWorkGroupInfo(a->k, a->ctx->dev.device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL));
  if (wg <= kmax) return wg;
  if (a->ctx->row_wg_forced) {
    char name[128] = "";
    clGetKernelInfo(a->k, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL);
    db_fail("row-reduction work-group size %zu exceeds kernel %s's maximum %zu (CL_KERNEL_WORK_GROUP_SIZE)", wg,
            name, kmax);
  }
  while (wg > kmax) wg /= 2; /* kmax >= 1 */
  return wg;
}
