/* Kernel arguments, launches and event profiling. */
#include "db.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

db_args db_args_begin(db_ctx *ctx, const char *file, const char *kernel) {
  db_args a = {ctx, db_kernel(ctx, file, kernel), 0};
  return a;
}

db_args db_args_ref(db_ctx *ctx, db_kernel_ref *r) {
  db_args a = {ctx, db_kernel_ref_get(ctx, r), 0};
  return a;
}

void db_arg_tensor(db_args *a, db_tensor t) {
  cl_ulong off = db_eoff(t);
  if (!t.mem) { /* an optional tensor left out: kernels test the flag they get separately */
    cl_mem none = NULL;
    CL_CHECK(clSetKernelArg(a->k, a->n++, sizeof(cl_mem), &none));
  } else
    CL_CHECK(clSetKernelArg(a->k, a->n++, sizeof(cl_mem), &t.mem));
  CL_CHECK(clSetKernelArg(a->k, a->n++, sizeof off, &off));
}
void db_arg_i32(db_args *a, int v) { CL_CHECK(clSetKernelArg(a->k, a->n++, sizeof(cl_int), &v)); }
void db_arg_f32(db_args *a, float v) { CL_CHECK(clSetKernelArg(a->k, a->n++, sizeof(cl_float), &v)); }
void db_arg_u64(db_args *a, uint64_t v) {
  cl_ulong x = v;
  CL_CHECK(clSetKernelArg(a->k, a->n++, sizeof x, &x));
}
void db_arg_local(db_args *a, size_t bytes) { CL_CHECK(clSetKernelArg(a->k, a->n++, bytes, NULL)); }

static const char *kernel_name(cl_kernel k, char *buf, size_t n) {
  buf[0] = 0;
  clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, n, buf, NULL);
  return buf;
}

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

void db_launch_1d(db_args *a, size_t global, size_t local) {
  if (global == 0) return;
  if (!local) local = a->ctx->wg;
  size_t g = round_up(global, local);
  char name[128];
  cl_event *ev = a->ctx->profiling ? db_profile_event(a->ctx, kernel_name(a->k, name, sizeof name)) : NULL;
  CL_CHECK(clEnqueueNDRangeKernel(a->ctx->queue, a->k, 1, NULL, &g, &local, 0, NULL, ev));
}

void db_launch_2d(db_args *a, size_t g0, size_t g1, size_t l0, size_t l1) {
  if (g0 == 0 || g1 == 0) return;
  size_t g[2] = {round_up(g0, l0), round_up(g1, l1)}, l[2] = {l0, l1};
  char name[128];
  cl_event *ev = a->ctx->profiling ? db_profile_event(a->ctx, kernel_name(a->k, name, sizeof name)) : NULL;
  CL_CHECK(clEnqueueNDRangeKernel(a->ctx->queue, a->k, 2, NULL, g, l, 0, NULL, ev));
}

/* ---- profiling: events are kept until a batch fills, then resolved into
 * per-name totals, so a long run does not hold millions of events. */
typedef struct { char name[64]; long count; double ms; } prof_row;
static prof_row *rows;
static int n_rows;
static cl_event pending[4096];
static const char *pending_name[4096];
static int n_pending;

double db_event_ms(cl_event e) {
  cl_ulong t0 = 0, t1 = 0;
  CL_CHECK(clWaitForEvents(1, &e));
  CL_CHECK(clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL));
  CL_CHECK(clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL));
  return (double)(t1 - t0) * 1e-6;
}

cl_event db_marker(db_ctx *ctx) {
  cl_event e;
  CL_CHECK(clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &e));
  return e;
}

double db_marker_interval_ms(cl_event start, cl_event stop) {
  cl_ulong t0 = 0, t1 = 0;
  CL_CHECK(clWaitForEvents(1, &stop));
  CL_CHECK(clGetEventProfilingInfo(start, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL));
  CL_CHECK(clGetEventProfilingInfo(stop, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL));
  clReleaseEvent(start);
  clReleaseEvent(stop);
  return (double)(t1 - t0) * 1e-6;
}

static void resolve_pending(void) {
  for (int i = 0; i < n_pending; i++) {
    double ms = db_event_ms(pending[i]);
    clReleaseEvent(pending[i]);
    int r = 0;
    while (r < n_rows && strcmp(rows[r].name, pending_name[i])) r++;
    if (r == n_rows) {
      rows = db_realloc(rows, (size_t)(n_rows + 1) * sizeof *rows);
      memset(&rows[r], 0, sizeof *rows);
      snprintf(rows[r].name, sizeof rows[r].name, "%s", pending_name[i]);
      n_rows++;
    }
    rows[r].count++;
    rows[r].ms += ms;
    free((void *)pending_name[i]);
  }
  n_pending = 0;
}

cl_event *db_profile_event(db_ctx *ctx, const char *name) {
  if (!ctx->profiling) return NULL;
  if (n_pending == (int)(sizeof pending / sizeof *pending)) resolve_pending();
  pending_name[n_pending] = db_strdup(name);
  return &pending[n_pending++];
}

static int by_time(const void *a, const void *b) {
  double d = ((const prof_row *)b)->ms - ((const prof_row *)a)->ms;
  return (d > 0) - (d < 0);
}

void db_profile_report(db_ctx *ctx) {
  if (!ctx->profiling) return;
  resolve_pending();
  qsort(rows, (size_t)n_rows, sizeof *rows, by_time);
  double total = 0;
  for (int i = 0; i < n_rows; i++) total += rows[i].ms;
  fprintf(stderr, "\ndblocks profile on %s (device time from events)\n", ctx->dev.name);
  fprintf(stderr, "%-36s %10s %12s %10s %7s\n", "kernel", "calls", "total ms", "ms/call", "share");
  for (int i = 0; i < n_rows; i++)
    fprintf(stderr, "%-36s %10ld %12.3f %10.4f %6.1f%%\n", rows[i].name, rows[i].count, rows[i].ms,
            rows[i].ms / (double)rows[i].count, total > 0 ? 100.0 * rows[i].ms / total : 0.0);
  fprintf(stderr, "%-36s %10s %12.3f\n", "total", "", total);
  free(rows);
  rows = NULL;
  n_rows = 0;
}
