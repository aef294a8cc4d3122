/* Tensors and arenas. A tensor is (cl_mem, byte offset) plus a shape of up to
 * four dims. An arena owns whole cl_mem allocations (one per tensor, so no
 * single allocation approaches CL_DEVICE_MAX_MEM_ALLOC_SIZE) and frees them as
 * a unit; live and peak device bytes are counted over all arenas. */
#include "db.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct db_arena {
  db_ctx *ctx;
  char name[64];
  cl_mem *mems;
  size_t *sizes;
  int n, cap;
  size_t bytes;
};

static size_t live_bytes, peak_bytes;
static size_t mem_limit; /* 0: none (db_set_mem_limit) */
void db_set_mem_limit(size_t bytes) { mem_limit = bytes; }
size_t db_mem_limit(void) { return mem_limit; }

int db_parse_size(const char *s, size_t *bytes) {
  if (!s || !isdigit((unsigned char)s[0])) return 0; /* no sign, no space, no "inf"/"nan", no ".5" */
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno == ERANGE || !isfinite(v)) return 0;
  for (const char *c = s; c < end; c++)
    if (*c == 'x' || *c == 'X' || *c == 'p' || *c == 'P') return 0; /* decimal only: strtod also reads hex */
  static const struct { const char *suffix; double mul; } units[] = {
      {"", 1},        {"k", 1024.0},       {"kib", 1024.0},       {"m", 1048576.0},
      {"mib", 1048576.0}, {"g", 1073741824.0}, {"gib", 1073741824.0}};
  char low[8];
  size_t n = strlen(end);
  if (n >= sizeof low) return 0;
  for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)end[i]);
  for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
    if (!strcmp(low, units[u].suffix)) {
      double b = floor(v * units[u].mul);
      if (!(b >= 1) || b >= 18446744073709551616.0 || b > (double)SIZE_MAX) return 0;
      *bytes = (size_t)b;
      return 1;
    }
  return 0;
}
size_t db_live_bytes(void) { return live_bytes; }
size_t db_peak_bytes(void) { return peak_bytes; }
void db_reset_peak(void) { peak_bytes = live_bytes; }
void db_restore_peak(size_t peak) { peak_bytes = peak > live_bytes ? peak : live_bytes; }

size_t db_numel(db_tensor t) {
  size_t n = 1;
  for (int i = 0; i < t.ndim; i++) n *= (size_t)t.shape[i];
  return t.ndim ? n : 0;
}
size_t db_dtype_size(db_dtype dt) { return dt == DB_U8 ? 1 : 4; }
size_t db_nbytes(db_tensor t) { return db_numel(t) * db_dtype_size(t.dtype); }

static void format_shape(db_tensor t, char *buf, size_t n) {
  int w = snprintf(buf, n, "(");
  for (int i = 0; i < t.ndim && w < (int)n; i++) w += snprintf(buf + w, n - (size_t)w, i ? ",%d" : "%d", t.shape[i]);
  if (w < (int)n) snprintf(buf + w, n - (size_t)w, ")");
}

static void check_numel(db_tensor t, size_t n, const char *op, const char *arg) {
  if (db_is_null(t)) db_fail("%s: argument %s is missing (null tensor), expected %zu elements", op, arg, n);
  if (db_numel(t) != n) {
    char s[96];
    format_shape(t, s, sizeof s);
    db_fail("%s: argument %s has shape %s = %zu elements, expected %zu", op, arg, s, db_numel(t), n);
  }
}

void db_check_numel(db_tensor t, size_t n, const char *op, const char *arg) {
  if (!db_is_null(t) && t.dtype == DB_U8)
    db_fail("%s: argument %s is a uint8 tensor; this op takes float32 (or int32 indices)", op, arg);
  check_numel(t, n, op, arg);
}

void db_check_numel_u8(db_tensor t, size_t n, const char *op, const char *arg) {
  if (!db_is_null(t) && t.dtype != DB_U8) db_fail("%s: argument %s must be a uint8 tensor", op, arg);
  check_numel(t, n, op, arg);
}

db_tensor db_view(db_tensor t, size_t elem_offset, int ndim, const int *shape) {
  db_tensor v = t;
  v.offset = t.offset + elem_offset * db_dtype_size(t.dtype);
  v.ndim = ndim;
  size_t n = 1;
  for (int i = 0; i < 4; i++) v.shape[i] = i < ndim ? shape[i] : 0;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  if (elem_offset + n > db_numel(t)) db_fail("view of %zu elements at offset %zu exceeds tensor of %zu", n, elem_offset, db_numel(t));
  return v;
}

db_arena *db_arena_new(db_ctx *ctx, const char *name) {
  db_arena *a = db_calloc(1, sizeof *a);
  a->ctx = ctx;
  snprintf(a->name, sizeof a->name, "%s", name ? name : "arena");
  return a;
}

size_t db_arena_bytes(const db_arena *a) { return a->bytes; }

db_tensor db_alloc(db_arena *a, db_dtype dt, int ndim, const int *shape) {
  db_tensor t = {0};
  if (ndim < 1 || ndim > 4) db_fail("arena %s: tensors have 1 to 4 dims, got %d", a->name, ndim);
  t.ndim = ndim;
  t.dtype = dt;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] <= 0) db_fail("arena %s: dim %d is %d, must be positive", a->name, i, shape[i]);
    t.shape[i] = shape[i];
  }
  size_t bytes = db_nbytes(t);
  if (bytes > a->ctx->dev.max_alloc)
    db_fail("arena %s: one tensor of %.1f MiB exceeds the device's max allocation of %.1f MiB", a->name,
            bytes / 1048576.0, a->ctx->dev.max_alloc / 1048576.0);
  if (mem_limit && (bytes > mem_limit || live_bytes > mem_limit - bytes))
    db_fail("out of device memory: arena %s wanted %.1f MiB more with %.1f MiB live, over the %.1f MiB memory limit "
            "(DBLOCKS_MEM_LIMIT / --mem-limit) on %s", a->name, bytes / 1048576.0, live_bytes / 1048576.0,
            mem_limit / 1048576.0, a->ctx->dev.name);
  cl_int err;
  t.mem = clCreateBuffer(a->ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
  if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY)
    db_fail("out of device memory: arena %s wanted %.1f MiB more with %.1f MiB live on %s", a->name,
            bytes / 1048576.0, live_bytes / 1048576.0, a->ctx->dev.name);
  CL_CHECK(err);
  if (a->n == a->cap) {
    a->cap = a->cap ? 2 * a->cap : 16;
    a->mems = db_realloc(a->mems, (size_t)a->cap * sizeof *a->mems);
    a->sizes = db_realloc(a->sizes, (size_t)a->cap * sizeof *a->sizes);
  }
  a->mems[a->n] = t.mem;
  a->sizes[a->n++] = bytes;
  a->bytes += bytes;
  live_bytes += bytes;
  if (live_bytes > peak_bytes) peak_bytes = live_bytes;
  return t;
}

db_tensor db_new(db_arena *a, int ndim, int d0, int d1, int d2, int d3) {
  int shape[4] = {d0, d1, d2, d3};
  return db_alloc(a, DB_F32, ndim, shape);
}

void db_arena_free(db_arena *a) {
  if (!a) return;
  for (int i = 0; i < a->n; i++) {
    clReleaseMemObject(a->mems[i]);
    live_bytes -= a->sizes[i];
  }
  free(a->mems);
  free(a->sizes);
  free(a);
}

void db_upload(db_ctx *ctx, db_tensor t, const void *host) {
  CL_CHECK(clEnqueueWriteBuffer(ctx->queue, t.mem, CL_TRUE, t.offset, db_nbytes(t), host, 0, NULL, NULL));
}
void db_upload_async(db_ctx *ctx, db_tensor t, const void *host) {
  CL_CHECK(clEnqueueWriteBuffer(ctx->queue, t.mem, CL_FALSE, t.offset, db_nbytes(t), host, 0, NULL, NULL));
}
void db_download(db_ctx *ctx, db_tensor t, void *host) {
  CL_CHECK(clEnqueueReadBuffer(ctx->queue, t.mem, CL_TRUE, t.offset, db_nbytes(t), host, 0, NULL, NULL));
}
void db_fill(db_ctx *ctx, db_tensor t, float v) {
  if (!db_numel(t)) return;
  if (t.dtype == DB_U8) {
    if (v != 0.0f) db_fail("db_fill: a uint8 tensor cannot hold the float %g (db_zero clears one)", v);
    cl_uchar z = 0;
    CL_CHECK(clEnqueueFillBuffer(ctx->queue, t.mem, &z, 1, t.offset, db_nbytes(t), 0, NULL, db_profile_event(ctx, "fill")));
    return;
  }
  CL_CHECK(clEnqueueFillBuffer(ctx->queue, t.mem, &v, sizeof v, t.offset, db_nbytes(t), 0, NULL,
                               db_profile_event(ctx, "fill")));
}
void db_zero(db_ctx *ctx, db_tensor t) { db_fill(ctx, t, 0.0f); }
void db_copy(db_ctx *ctx, db_tensor dst, db_tensor src) {
  if (db_numel(dst) != db_numel(src)) db_fail("copy: %zu elements into %zu", db_numel(src), db_numel(dst));
  if (db_dtype_size(dst.dtype) != db_dtype_size(src.dtype)) db_fail("copy: uint8 and 4-byte tensors do not mix");
  CL_CHECK(clEnqueueCopyBuffer(ctx->queue, src.mem, dst.mem, src.offset, dst.offset, db_nbytes(src), 0, NULL,
                               db_profile_event(ctx, "copy")));
}
