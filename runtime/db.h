/* dblocks runtime: one OpenCL context and queue per process, embedded kernels
 * with an on-disk binary cache, float32 tensors as (cl_mem, byte offset),
 * arenas that count device bytes, a counter-based RNG and optional profiling.
 * Everything a model or an op needs is declared here. */
#ifndef DB_RUNTIME_H
#define DB_RUNTIME_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <clblast_c.h>
#include "base.h" /* db_fail, checked allocation, db_now, host Philox */

/* ---------------------------------------------------------------- errors */
const char *db_cl_error_name(cl_int err);
const char *db_clblast_error_name(CLBlastStatusCode st);

#define CL_CHECK(expr)                                                          \
  do {                                                                          \
    cl_int db_err_ = (expr);                                                    \
    if (db_err_ != CL_SUCCESS)                                                  \
      db_fail("OpenCL call failed: %s\n  at %s:%d\n  error %d (%s)", #expr,     \
              __FILE__, __LINE__, (int)db_err_, db_cl_error_name(db_err_));     \
  } while (0)

#define CLBLAST_CHECK(expr)                                                     \
  do {                                                                          \
    CLBlastStatusCode db_st_ = (expr);                                          \
    if (db_st_ != CLBlastSuccess)                                               \
      db_fail("CLBlast call failed: %s\n  at %s:%d\n  status %d (%s)", #expr,   \
              __FILE__, __LINE__, (int)db_st_, db_clblast_error_name(db_st_));  \
  } while (0)

/* ---------------------------------------------------------------- devices */
typedef struct {
  cl_platform_id platform;
  cl_device_id device;
  int platform_index, device_index;
  char platform_name[128], platform_version[128];
  char name[256], vendor[128], version[128], driver[128], c_version[64];
  cl_device_type type;
  cl_uint compute_units;
  cl_ulong global_mem, local_mem, max_alloc;
  size_t max_wg;
  int fp64, fp16;
} db_device_info;

/* All devices of all platforms; *count set; caller frees the array. */
db_device_info *db_list_devices(int *count);
/* Parse "P:D" (or NULL/"" = automatic) and pick a device; clear error if absent. */
db_device_info db_select_device(const char *spec);

typedef struct db_ctx db_ctx;
struct db_ctx {
  db_device_info dev;
  cl_context context;
  cl_command_queue queue;
  size_t wg;             /* default work-group size for 1-D element kernels */
  size_t row_wg;         /* work-group size cap for one-group-per-row reductions */
  size_t row_wg_device;  /* the device's own choice of row_wg (restored by db_force_row_group_size(ctx, 0)) */
  int row_wg_forced;     /* 1: row_wg is an exact size, forced (tests, DBLOCKS_ROW_WG) */
  struct db_program_slot *programs; /* built lazily, one per cl/ file */
  int n_programs;
  struct db_kernel_slot *kernels;
  int n_kernels, cap_kernels;
  unsigned id;           /* unique per db_init in the process (1, 2, ...): what kernel handles are bound to */
  long kernel_lookups;   /* by-name kernel searches (db_kernel_opts calls): tests check handles skip them */
  int profiling;
  double build_seconds;  /* time spent building/loading programs */
  int cache_hits, cache_misses;
};

/* Create the one context/queue of the process. spec as in db_select_device;
 * if spec is NULL, DBLOCKS_DEVICE is consulted. */
db_ctx *db_init(const char *spec);
void db_shutdown(db_ctx *ctx);
void db_finish(db_ctx *ctx);
/* Work-group size for kernels that reduce one row per group: a power of two
 * <= ctx->row_wg, no larger than the row needs; exactly ctx->row_wg when forced. */
size_t db_row_group_size(db_ctx *ctx, int row_len);
/* Forces the work-group size of every work-group reduction (row reductions and
 * the reduce_* passes) to exactly n, whatever the row length, so that a CPU
 * device runs the GPU code paths (local memory, barriers, idle work-items).
 * n = 0 restores the device's choice. n must be a power of two <= the
 * device's CL_DEVICE_MAX_WORK_GROUP_SIZE (clear error otherwise). Returns the
 * previous forced size (0: none), for restoring. db_init applies the
 * environment variable DBLOCKS_ROW_WG the same way. */
size_t db_force_row_group_size(db_ctx *ctx, size_t n);

/* ---------------------------------------------------------------- programs */
/* Sources from cl/NAME.cl, embedded at build time by tools/embed_cl.c */
typedef struct { const char *name; const char *source; } db_cl_source;
extern const db_cl_source db_cl_sources[];
extern const int db_cl_source_count;

/* The kernel `kernel` of program `file` (e.g. "layernorm", "layernorm_forward").
 * Programs are built once per process (or loaded from the binary cache),
 * kernels created once; later calls return the same object, found by a search
 * over the context's kernels (launch paths use handles, db_kernel_ref, below). */
cl_kernel db_kernel(db_ctx *ctx, const char *file, const char *kernel);
/* The same for the program built with extra build options (e.g. "-DMWG=64
 * -DNWG=64"): one program per (file, options), in memory and in the binary
 * cache (whose key includes the options). A build failure fails clearly. */
cl_kernel db_kernel_opts(db_ctx *ctx, const char *file, const char *kernel, const char *options);

/* Kernel handles: a kernel named once, resolved on its first use in a context
 * and then launched without any lookup (ggml style). An op file declares one
 * per kernel at file scope and launches through it:
 *
 *   static db_kernel_ref K_FORWARD = DB_KERNEL_REF("layernorm", "layernorm_forward");
 *   ...
 *   db_args a = db_args_ref(ctx, &K_FORWARD);
 *
 * The first db_kernel_ref_get in a context resolves the name through
 * db_kernel_opts (program build or binary cache, and its clear errors for a
 * missing file or kernel) and stores the kernel; later calls in that context
 * return it after one integer compare. A handle records the id of the
 * context it was resolved in (ctx->id, never reused in the process), not the
 * context's address, so after db_shutdown and a new db_init (even at the same
 * address) it resolves again instead of returning a released kernel. Using
 * one handle with two live contexts in turn is correct, only slower (each
 * switch resolves by name again). Handles are plain mutable statics: the
 * runtime is single-threaded, as is everything else in the context.
 *
 * Kernels built with extra build options (db_kernel_opts) take
 * DB_KERNEL_REF_OPTS(file, kernel, options); `options` must outlive the
 * handle (a literal, or a string stored beside the handle, e.g. one handle
 * per entry of a configuration table). */
typedef struct {
  const char *file, *name, *opts; /* what to resolve; opts NULL: the base program */
  unsigned ctx_id;                /* ctx->id of the context k belongs to; 0 = not resolved */
  cl_kernel k;
} db_kernel_ref;
#define DB_KERNEL_REF(file, kernel) {(file), (kernel), NULL, 0, NULL}
#define DB_KERNEL_REF_OPTS(file, kernel, options) {(file), (kernel), (options), 0, NULL}
cl_kernel db_kernel_ref_get(db_ctx *ctx, db_kernel_ref *r);

void db_build_all(db_ctx *ctx);
void db_programs_release(db_ctx *ctx); /* db_shutdown's part: kernels and programs */
/* Compile one source now (no cache); a failure prints the build log and fails. */
cl_program db_compile(db_ctx *ctx, const db_cl_source *src);
cl_program db_compile_opts(db_ctx *ctx, const db_cl_source *src, const char *options); /* full options */
/* db_cache_dir (base.h): where the binaries are cached. */
const char *db_build_options(void);

/* ---------------------------------------------------------------- tensors */
/* DB_F32 (every activation, parameter and gradient), DB_I32 (indices), DB_U8
 * (bytes: resident image datasets, read only by gather_bytes_forward). Ops
 * take float32/int32 tensors; db_check_numel refuses a DB_U8 tensor, so a
 * byte tensor handed to any other op is a clear error, never a misread. */
typedef enum { DB_F32 = 0, DB_I32 = 1, DB_U8 = 2 } db_dtype;
/* Bytes per element: 4 for DB_F32 and DB_I32, 1 for DB_U8. */
size_t db_dtype_size(db_dtype dt);
typedef struct db_arena db_arena;
typedef struct {
  cl_mem mem;
  size_t offset;   /* bytes from the start of mem */
  int ndim;
  int shape[4];
  db_dtype dtype;
} db_tensor;

size_t db_numel(db_tensor t);
size_t db_nbytes(db_tensor t);
/* element offset, as passed to kernels (in elements of the tensor's dtype) */
static inline cl_ulong db_eoff(db_tensor t) { return (cl_ulong)(t.offset / (t.dtype == DB_U8 ? 1 : 4)); }
static inline int db_is_null(db_tensor t) { return t.mem == NULL; }
static const db_tensor DB_NULL = {0};
/* A view of n elements starting `elem_offset` elements into t, with a new shape. */
db_tensor db_view(db_tensor t, size_t elem_offset, int ndim, const int *shape);
/* Fail with a clear message naming op and argument unless t has exactly n
 * elements of 4 bytes (float32 or int32: a DB_U8 tensor fails, naming it). */
void db_check_numel(db_tensor t, size_t n, const char *op, const char *arg);
/* The same for a byte tensor: fails unless t is DB_U8 with exactly n elements. */
void db_check_numel_u8(db_tensor t, size_t n, const char *op, const char *arg);

/* Arenas own device allocations and free them as a unit. The runtime counts
 * live and peak device bytes over all arenas; every device buffer the runtime
 * makes is an arena's (the ops' scratch too: db_workspace), so the counters
 * and the memory limit below see all of them. */
db_arena *db_arena_new(db_ctx *ctx, const char *name);
void db_arena_free(db_arena *a);
size_t db_arena_bytes(const db_arena *a);
db_tensor db_alloc(db_arena *a, db_dtype dt, int ndim, const int *shape);
/* convenience: f32 tensor with dims given inline */
db_tensor db_new(db_arena *a, int ndim, int d0, int d1, int d2, int d3);
size_t db_live_bytes(void);
size_t db_peak_bytes(void);
void db_reset_peak(void);
/* Sets the peak back to `peak` (or the live bytes, if more): for scratch that
 * is not the caller's, e.g. the GEMM tuner's operands. */
void db_restore_peak(size_t peak);

/* The device-memory limit: db_alloc fails, with the out-of-device-memory
 * message naming the limit, when live bytes would exceed `bytes`, as if the
 * device had only that much memory (docs/memory.md). 0: no limit (the
 * default; the device's own allocation failures still apply). db_init sets
 * it from DBLOCKS_MEM_LIMIT when that is set; `--mem-limit` of the training
 * commands sets it after db_init, so it wins. It limits new allocations only:
 * buffers already live stay. */
void db_set_mem_limit(size_t bytes);
size_t db_mem_limit(void); /* the limit in bytes; 0: none */
/* Parses a size: plain bytes ("1048576") or a decimal number with a binary
 * suffix K, M, G, KiB, MiB, GiB (1024-based; "512M", "1.5G", "64KiB"), any
 * case, no spaces. Returns 1 and sets *bytes for a size of at least 1 byte
 * that fits in size_t, else 0 (empty, junk, negative, zero, NaN, too large). */
int db_parse_size(const char *s, size_t *bytes);

void db_upload(db_ctx *ctx, db_tensor t, const void *host);   /* blocking */
/* Non-blocking: host must stay untouched until a later blocking call on the
 * queue (a download or db_finish) has returned. */
void db_upload_async(db_ctx *ctx, db_tensor t, const void *host);
void db_download(db_ctx *ctx, db_tensor t, void *host);       /* blocking */
void db_zero(db_ctx *ctx, db_tensor t);                        /* any dtype: all bits 0 */
void db_fill(db_ctx *ctx, db_tensor t, float v);               /* float32/int32 bit pattern of v; DB_U8: a clear error */
void db_copy(db_ctx *ctx, db_tensor dst, db_tensor src);

/* ---------------------------------------------------------------- launching */
typedef struct {
  db_ctx *ctx;
  cl_kernel k;
  cl_uint n;
} db_args;
db_args db_args_begin(db_ctx *ctx, const char *file, const char *kernel); /* by name: a search per call */
db_args db_args_ref(db_ctx *ctx, db_kernel_ref *r);                       /* through a handle (db_kernel_ref) */
void db_arg_tensor(db_args *a, db_tensor t); /* two args: buffer, element offset (ulong) */
void db_arg_i32(db_args *a, int v);
void db_arg_f32(db_args *a, float v);
void db_arg_u64(db_args *a, uint64_t v);
void db_arg_local(db_args *a, size_t bytes);
/* Global sizes are rounded up to multiples of local; kernels bounds-check. */
void db_launch_1d(db_args *a, size_t global, size_t local);
void db_launch_2d(db_args *a, size_t g0, size_t g1, size_t l0, size_t l1);
/* db_row_group_size for the kernel of a: also within the kernel's own
 * CL_KERNEL_WORK_GROUP_SIZE (rounded down to a power of two; a forced size
 * above it is a clear error naming the kernel). */
size_t db_row_group_size_for(db_args *a, int row_len);

/* ---------------------------------------------------------------- profiling */
/* With DBLOCKS_PROFILE=1 every launch records an event; db_shutdown prints
 * per-kernel counts and total device times. Also used by `dblocks bench`. */
cl_event *db_profile_event(db_ctx *ctx, const char *name); /* NULL when off */
void db_profile_report(db_ctx *ctx);
double db_event_ms(cl_event e);
/* Device-timeline interval between two markers (ms): what `dblocks bench` reports. */
cl_event db_marker(db_ctx *ctx);
double db_marker_interval_ms(cl_event start, cl_event stop); /* waits, releases both */

/* ---------------------------------------------------------------- RNG */
/* Device draws of the Philox streams declared in base.h: bit-identical
 * uniforms to db_rng_uniform_host, normals within a few ulps. */
void db_rng_normal(db_ctx *ctx, db_tensor t, uint64_t seed, uint64_t offset, float mean, float std);
void db_rng_uniform(db_ctx *ctx, db_tensor t, uint64_t seed, uint64_t offset, float lo, float hi);

#endif
