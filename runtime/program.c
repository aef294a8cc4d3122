/* Programs: each cl/<name>.cl is one program, built for OpenCL C 1.2 without
 * fast-math the first time one of its kernels is asked for. Compiled binaries
 * are cached on disk under a key made of source, build options, device name,
 * device version, driver version and platform version. Entries are written to a
 * temp file and renamed, carry a checksum, and any entry that fails to load
 * or build is silently replaced by a fresh compile. */
#include "db.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Slots 0..db_cl_source_count-1: each source with the base options; later
 * slots: a source built with extra -D options (db_kernel_opts). */
struct db_program_slot { cl_program prog; int src; char *opts; };
struct db_kernel_slot { const char *file; char *name; char *opts; cl_kernel k; };

static const char BUILD_OPTIONS[] = "-cl-std=CL1.2";
const char *db_build_options(void) { return BUILD_OPTIONS; }

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
  return h;
}
static uint64_t fnv_str(uint64_t h, const char *s) { return fnv1a(h, s, strlen(s) + 1); }

/* Two independent 64-bit FNV streams make a 128-bit key: a collision would
 * need both to collide. */
static void cache_path(db_ctx *ctx, const db_cl_source *src, const char *options, char *out, size_t n) {
  const db_device_info *d = &ctx->dev;
  uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
  const char *parts[] = {src->name, src->source, options, d->name, d->version,
                         d->driver, d->platform_name, d->platform_version};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    h1 = fnv_str(h1, parts[i]);
    h2 = fnv_str(h2 ^ (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL, parts[i]);
  }
  snprintf(out, n, "%s/%s-%016llx%016llx.bin", db_cache_dir(), src->name,
           (unsigned long long)h1, (unsigned long long)h2);
}

static const char MAGIC[8] = "DBLKBIN1";

/* Returns a built program or NULL (missing, corrupt or rejected entry). */
static cl_program load_cached(db_ctx *ctx, const char *path, const char *options) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char magic[8];
  uint64_t size = 0, sum = 0;
  unsigned char *bin = NULL;
  cl_program prog = NULL;
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, MAGIC, 8) ||
      fread(&size, sizeof size, 1, f) != 1 || fread(&sum, sizeof sum, 1, f) != 1 ||
      size == 0 || size > (1u << 30))
    goto done;
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || (uint64_t)st.st_size != 24 + size) goto done; /* before allocating */
  bin = db_malloc(size);
  if (fread(bin, 1, size, f) != size || fgetc(f) != EOF) goto done;
  if (fnv1a(0xcbf29ce484222325ULL, bin, size) != sum) goto done;
  cl_int status, err;
  size_t sz = size;
  const unsigned char *bins[1] = {bin};
  prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->dev.device, &sz, bins, &status, &err);
  if (err != CL_SUCCESS || status != CL_SUCCESS) { prog = NULL; goto done; }
  if (clBuildProgram(prog, 1, &ctx->dev.device, options, NULL, NULL) != CL_SUCCESS) {
    clReleaseProgram(prog);
    prog = NULL;
  }
done:
  free(bin);
  fclose(f);
  return prog;
}

static void store_cached(db_ctx *ctx, cl_program prog, const char *path) {
  size_t size = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS || !size) return;
  unsigned char *bin = db_malloc(size);
  unsigned char *bins[1] = {bin};
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS) { free(bin); return; }
  db_mkdir_p(db_cache_dir());
  char tmp[1100];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp) { free(bin); return; }
  FILE *f = fopen(tmp, "wb");
  if (f) {
    uint64_t sz = size, sum = fnv1a(0xcbf29ce484222325ULL, bin, size);
    int ok = fwrite(MAGIC, 1, 8, f) == 8 && fwrite(&sz, sizeof sz, 1, f) == 1 &&
             fwrite(&sum, sizeof sum, 1, f) == 1 && fwrite(bin, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) unlink(tmp); /* a failed write never leaves a partial entry */
  }
  (void)ctx;
  free(bin);
}

cl_program db_compile(db_ctx *ctx, const db_cl_source *src) { return db_compile_opts(ctx, src, BUILD_OPTIONS); }

cl_program db_compile_opts(db_ctx *ctx, const db_cl_source *src, const char *options) {
  cl_int err;
  cl_program prog = clCreateProgramWithSource(ctx->context, 1, (const char **)&src->source, NULL, &err);
  CL_CHECK(err);
  err = clBuildProgram(prog, 1, &ctx->dev.device, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    size_t len = 0;
    clGetProgramBuildInfo(prog, ctx->dev.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
    char *log = db_calloc(len + 1, 1);
    clGetProgramBuildInfo(prog, ctx->dev.device, CL_PROGRAM_BUILD_LOG, len, log, NULL);
    fprintf(stderr, "dblocks: build log of cl/%s.cl (%s) on %s:\n%s\n", src->name, options, ctx->dev.name, log);
    free(log);
    clReleaseProgram(prog);
    db_fail("kernel build failed: cl/%s.cl (%s) on %s: %s", src->name, options, ctx->dev.name, db_cl_error_name(err));
  }
  return prog;
}

static void programs_init(db_ctx *ctx) {
  if (ctx->programs) return;
  ctx->n_programs = db_cl_source_count;
  ctx->programs = db_calloc((size_t)db_cl_source_count, sizeof *ctx->programs);
  for (int i = 0; i < db_cl_source_count; i++) ctx->programs[i].src = i;
}

/* Builds (or loads from the binary cache) the program of slot `index`. */
static cl_program get_program(db_ctx *ctx, int index) {
  programs_init(ctx);
  struct db_program_slot *slot = &ctx->programs[index];
  if (slot->prog) return slot->prog;
  const db_cl_source *src = &db_cl_sources[slot->src];
  char options[1024];
  if ((size_t)snprintf(options, sizeof options, "%s%s%s", BUILD_OPTIONS, slot->opts ? " " : "",
                       slot->opts ? slot->opts : "") >= sizeof options)
    db_fail("build options of cl/%s.cl too long: %s", src->name, slot->opts);
  double t0 = db_now();
  cl_program prog = NULL;
  char path[1100] = "";
  if (db_cache_dir()) {
    cache_path(ctx, src, options, path, sizeof path);
    prog = load_cached(ctx, path, options);
  }
  if (prog) ctx->cache_hits++;
  else {
    ctx->cache_misses++;
    prog = db_compile_opts(ctx, src, options);
    if (path[0]) store_cached(ctx, prog, path);
  }
  ctx->build_seconds += db_now() - t0;
  slot->prog = prog;
  return prog;
}

/* The slot of source `src` built with `opts` (NULL: the base program). */
static int program_slot(db_ctx *ctx, int src, const char *opts) {
  programs_init(ctx);
  if (!opts || !*opts) return src;
  for (int i = db_cl_source_count; i < ctx->n_programs; i++)
    if (ctx->programs[i].src == src && !strcmp(ctx->programs[i].opts, opts)) return i;
  ctx->programs = db_realloc(ctx->programs, (size_t)(ctx->n_programs + 1) * sizeof *ctx->programs);
  ctx->programs[ctx->n_programs] = (struct db_program_slot){NULL, src, db_strdup(opts)};
  return ctx->n_programs++;
}

static int find_source(const char *file) {
  for (int i = 0; i < db_cl_source_count; i++)
    if (!strcmp(db_cl_sources[i].name, file)) return i;
  return -1;
}

static int same_opts(const char *a, const char *b) {
  return (!a || !*a) ? (!b || !*b) : (b && !strcmp(a, b));
}

cl_kernel db_kernel_opts(db_ctx *ctx, const char *file, const char *kernel, const char *options) {
  ctx->kernel_lookups++;
  for (int i = 0; i < ctx->n_kernels; i++)
    if (!strcmp(ctx->kernels[i].name, kernel) && !strcmp(ctx->kernels[i].file, file) &&
        same_opts(ctx->kernels[i].opts, options))
      return ctx->kernels[i].k;
  int idx = find_source(file);
  if (idx < 0) db_fail("no kernel source cl/%s.cl is embedded in this binary (wanted kernel %s)", file, kernel);
  cl_program prog = get_program(ctx, program_slot(ctx, idx, options));
  cl_int err;
  cl_kernel k = clCreateKernel(prog, kernel, &err);
  if (err == CL_INVALID_KERNEL_NAME) db_fail("kernel %s not found in cl/%s.cl", kernel, file);
  CL_CHECK(err);
  if (ctx->n_kernels == ctx->cap_kernels) {
    ctx->cap_kernels = ctx->cap_kernels ? 2 * ctx->cap_kernels : 64;
    ctx->kernels = db_realloc(ctx->kernels, (size_t)ctx->cap_kernels * sizeof *ctx->kernels);
  }
  ctx->kernels[ctx->n_kernels++] = (struct db_kernel_slot){db_cl_sources[idx].name, db_strdup(kernel),
                                                           options && *options ? db_strdup(options) : NULL, k};
  return k;
}

cl_kernel db_kernel(db_ctx *ctx, const char *file, const char *kernel) {
  return db_kernel_opts(ctx, file, kernel, NULL);
}

/* The slow path runs once per (handle, context): a handle bound to another
 * context (or to none) is rebound here. r->k is written only after the
 * lookup returned, so a failed lookup (db_fail, trapped in tests) leaves the
 * handle unresolved rather than half-bound. */
cl_kernel db_kernel_ref_get(db_ctx *ctx, db_kernel_ref *r) {
  if (r->ctx_id == ctx->id) return r->k;
  cl_kernel k = db_kernel_opts(ctx, r->file, r->name, r->opts);
  r->k = k;
  r->ctx_id = ctx->id;
  return k;
}

void db_build_all(db_ctx *ctx) {
  for (int i = 0; i < db_cl_source_count; i++) get_program(ctx, i);
}

/* ---- workspaces: device scratch owned by the runtime for ops that need
 * temporary space (GEMM's transposed operand, CLBlast's temp buffer, the
 * reductions' partials). They live in an arena so the live/peak byte counters
 * and the memory limit (db_set_mem_limit) see them, grow on demand (never
 * shrink) and are freed by db_programs_release. One table entry per context;
 * a process normally has one. */
#define DB_WORKSPACES 5
static struct { db_ctx *ctx; db_arena *arena[DB_WORKSPACES]; db_tensor t[DB_WORKSPACES]; size_t n[DB_WORKSPACES]; }
    workspaces[8];

db_tensor db_workspace(db_ctx *ctx, int which, size_t n) {
  if (which < 0 || which >= DB_WORKSPACES) db_fail("db_workspace: slot %d out of range", which);
  int e = -1;
  for (int i = 0; i < 8 && e < 0; i++) if (workspaces[i].ctx == ctx) e = i;
  for (int i = 0; i < 8 && e < 0; i++) if (!workspaces[i].ctx) { e = i; workspaces[i].ctx = ctx; }
  if (e < 0) db_fail("db_workspace: too many contexts");
  if (n == 0) n = 1;
  if (workspaces[e].n[which] < n) {
    if (workspaces[e].arena[which]) db_arena_free(workspaces[e].arena[which]);
    workspaces[e].t[which] = DB_NULL; /* until the new one exists: an allocation that fails (the memory */
    workspaces[e].n[which] = 0;       /* limit, a trapped db_fail) must not leave the freed buffer behind */
    workspaces[e].arena[which] = db_arena_new(ctx, "workspace");
    int shape[1] = {(int)n};
    if (n > 0x7fffffff) db_fail("db_workspace: %zu elements is too large", n);
    workspaces[e].t[which] = db_alloc(workspaces[e].arena[which], DB_F32, 1, shape);
    workspaces[e].n[which] = n;
  }
  return workspaces[e].t[which];
}

static void workspaces_release(db_ctx *ctx) {
  for (int i = 0; i < 8; i++) {
    if (workspaces[i].ctx != ctx) continue;
    for (int w = 0; w < DB_WORKSPACES; w++)
      if (workspaces[i].arena[w]) db_arena_free(workspaces[i].arena[w]);
    memset(&workspaces[i], 0, sizeof workspaces[i]);
  }
}

/* Releases every kernel and program of the context (db_shutdown). */
void db_programs_release(db_ctx *ctx) {
  workspaces_release(ctx);
  for (int i = 0; i < ctx->n_kernels; i++) {
    clReleaseKernel(ctx->kernels[i].k);
    free(ctx->kernels[i].name);
    free(ctx->kernels[i].opts);
  }
  free(ctx->kernels);
  for (int i = 0; i < ctx->n_programs; i++) {
    if (ctx->programs[i].prog) clReleaseProgram(ctx->programs[i].prog);
    free(ctx->programs[i].opts);
  }
  free(ctx->programs);
  ctx->kernels = NULL;
  ctx->programs = NULL;
  ctx->n_kernels = ctx->n_programs = 0;
}
