/* Runtime: device listing and selection errors, the program binary cache
 * (miss, hit, corrupt entry, disabled), missing kernels and build failures,
 * kernel handles, arenas and the live/peak byte counters. */
#include "harness.h"
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

static char cache_root[512];

static void set_cache(const char *sub) {
  char dir[700];
  snprintf(dir, sizeof dir, "%s/%s", cache_root, sub);
  setenv("DBLOCKS_CACHE_DIR", dir, 1);
}

/* Runs a tiny kernel from a program that may have come from the cache. */
static int silu_works(db_ctx *ctx) {
  db_arena *a = db_arena_new(ctx, "probe");
  db_tensor x = db_new(a, 1, 3, 0, 0, 0), y = db_new(a, 1, 3, 0, 0, 0);
  float in[3] = {-1, 0, 2}, out[3];
  db_upload(ctx, x, in);
  silu_forward(ctx, y, x, 3);
  db_download(ctx, y, out);
  db_arena_free(a);
  return fabsf(out[0] + 0.268941f) < 1e-5f && out[1] == 0 && fabsf(out[2] - 1.761594f) < 1e-5f;
}

static int count_entries(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name), s = strlen(suffix);
    if (l > s && !strcmp(e->d_name + l - s, suffix)) n++;
  }
  closedir(d);
  return n;
}

static void test_cache(void) {
  const char *saved = getenv("DBLOCKS_CACHE_DIR");
  char *saved_copy = saved ? db_strdup(saved) : NULL;
  snprintf(cache_root, sizeof cache_root, "%s/dblocks-test-%d", saved ? saved : "/tmp", (int)getpid());
  set_cache("a");

  db_ctx *c1 = db_init(NULL);
  db_build_all(c1);
  th_check(c1->cache_misses == db_cl_source_count && c1->cache_hits == 0, "cache: first build compiles every program",
           "%d misses, %d hits, %d programs", c1->cache_misses, c1->cache_hits, db_cl_source_count);
  double cold = c1->build_seconds;
  db_shutdown(c1);
  char dir[700];
  snprintf(dir, sizeof dir, "%s/a", cache_root);
  th_check(count_entries(dir, ".bin") == db_cl_source_count && count_entries(dir, ".tmp") == 0,
           "cache: one entry per program, no temp files left", "%d entries", count_entries(dir, ".bin"));

  db_ctx *c2 = db_init(NULL);
  db_build_all(c2);
  th_check(c2->cache_hits == db_cl_source_count && c2->cache_misses == 0, "cache: second start loads every program",
           "%d hits, %d misses", c2->cache_hits, c2->cache_misses);
  th_check(c2->build_seconds < 1.0, "cache: second start builds all programs in under a second",
           "%.3f s (cold %.3f s)", c2->build_seconds, cold);
  printf("        cold build %.2f s, cached %.3f s, %d programs\n", cold, c2->build_seconds, db_cl_source_count);
  th_check(silu_works(c2), "cache: kernels from cached binaries compute correctly", "wrong silu values");
  db_shutdown(c2);

  /* corrupt every entry in a different way: flipped byte, truncation, garbage */
  DIR *d = opendir(dir);
  struct dirent *e;
  int k = 0;
  while (d && (e = readdir(d))) {
    if (!strstr(e->d_name, ".bin")) continue;
    char path[1000];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r+b");
    if (!f) continue;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (k % 3 == 0) { fseek(f, size / 2, SEEK_SET); int c = fgetc(f); fseek(f, size / 2, SEEK_SET); fputc(c ^ 0x5a, f); }
    fclose(f);
    if (k % 3 == 1 && truncate(path, size / 3) != 0) perror("truncate");
    if (k % 3 == 2) { f = fopen(path, "wb"); fputs("not a program binary", f); fclose(f); }
    k++;
  }
  if (d) closedir(d);
  db_ctx *c3 = db_init(NULL);
  db_build_all(c3);
  th_check(c3->cache_misses == db_cl_source_count, "cache: corrupt entries fall back to compiling",
           "%d misses of %d", c3->cache_misses, db_cl_source_count);
  th_check(silu_works(c3), "cache: kernels correct after corrupt-entry fallback", "wrong silu values");
  db_shutdown(c3);
  db_ctx *c4 = db_init(NULL);
  db_build_all(c4);
  th_check(c4->cache_hits == db_cl_source_count, "cache: corrupt entries were rewritten", "%d hits", c4->cache_hits);
  db_shutdown(c4);

  setenv("DBLOCKS_CACHE_DIR", "off", 1);
  th_check(db_cache_dir() == NULL, "cache: DBLOCKS_CACHE_DIR=off disables it", "still %s", db_cache_dir());
  if (saved_copy) setenv("DBLOCKS_CACHE_DIR", saved_copy, 1);
  else unsetenv("DBLOCKS_CACHE_DIR");
  free(saved_copy);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache_root);
  if (system(cmd) != 0) printf("        could not remove %s\n", cache_root);
}

static void test_devices(void) {
  int n = 0;
  db_device_info *list = db_list_devices(&n);
  th_check(n >= 1 && list && list[0].name[0] && list[0].compute_units > 0 && list[0].global_mem > 0,
           "devices: at least one device with a name, compute units and memory", "%d devices", n);
  free(list);
  db_device_info d = db_select_device("0:0");
  th_check(d.platform_index == 0 && d.device_index == 0, "devices: --device 0:0 selects 0:0", "got %d:%d",
           d.platform_index, d.device_index);
  TH_EXPECT_ERROR("devices: index out of range is a clear error", "no device 9:9", db_select_device("9:9"));
  TH_EXPECT_ERROR("devices: malformed spec is a clear error", "expected P:D", db_select_device("gpu"));
  TH_EXPECT_ERROR("devices: trailing garbage is a clear error", "expected P:D", db_select_device("0:0x"));
}

static void test_kernels(void) {
  TH_EXPECT_ERROR("kernels: unknown kernel name", "kernel no_such_kernel not found in cl/silu.cl",
                  db_kernel(th_ctx, "silu", "no_such_kernel"));
  TH_EXPECT_ERROR("kernels: unknown program", "no kernel source cl/nope.cl", db_kernel(th_ctx, "nope", "k"));
  db_cl_source bad = {"broken", "__kernel void f(__global float *x) { x[0] = undeclared_thing; }"};
  printf("        (a build log for the deliberately broken kernel follows)\n");
  TH_EXPECT_ERROR("kernels: build failure names the file and device", "kernel build failed: cl/broken.cl",
                  db_compile(th_ctx, &bad));
  th_check(db_kernel(th_ctx, "silu", "silu_forward_w4") == db_kernel(th_ctx, "silu", "silu_forward_w4"),
           "kernels: created once, the same object on every lookup", "different kernel objects");
}

/* Kernel handles (db_kernel_ref): one lookup per (handle, context), none on
 * later gets or launches; a new context re-resolves (db_shutdown + db_init may
 * hand out the same address, so handles compare context ids, not pointers);
 * a bad name fails with the by-name path's message and leaves the handle
 * unresolved. */
static db_kernel_ref K_PROBE = DB_KERNEL_REF("silu", "silu_forward_w4");
static db_kernel_ref K_MISSING = DB_KERNEL_REF("silu", "no_such_kernel");
static db_kernel_ref K_NO_FILE = DB_KERNEL_REF("nope", "k");
static elem_ref K_PROBE_W = ELEM_REF("silu", "silu_forward");

static cl_context kernel_context(cl_kernel k) {
  cl_context c = NULL;
  CL_CHECK(clGetKernelInfo(k, CL_KERNEL_CONTEXT, sizeof c, &c, NULL));
  return c;
}
static const char *kernel_fn(cl_kernel k, char *buf, size_t n) {
  buf[0] = 0;
  CL_CHECK(clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, n, buf, NULL));
  return buf;
}

static void expect_ref_errors(void) {
  TH_EXPECT_ERROR("kernel handles: unknown kernel name, the by-name message",
                  "kernel no_such_kernel not found in cl/silu.cl", db_kernel_ref_get(th_ctx, &K_MISSING));
  TH_EXPECT_ERROR("kernel handles: a failed handle fails again (not a NULL kernel)",
                  "kernel no_such_kernel not found in cl/silu.cl", db_args_ref(th_ctx, &K_MISSING));
  TH_EXPECT_ERROR("kernel handles: unknown program", "no kernel source cl/nope.cl", db_kernel_ref_get(th_ctx, &K_NO_FILE));
}

static void test_kernel_refs(void) {
  db_ctx *c = th_ctx;
  long l0 = c->kernel_lookups;
  cl_kernel k1 = db_kernel_ref_get(c, &K_PROBE);
  long l1 = c->kernel_lookups;
  cl_kernel k2 = db_kernel_ref_get(c, &K_PROBE);
  db_args a = db_args_ref(c, &K_PROBE);
  th_check(l1 == l0 + 1 && k1 && k2 == k1 && a.k == k1 && a.ctx == c && a.n == 0 && c->kernel_lookups == l1,
           "kernel handles: the first get looks up once, a second get and db_args_ref look up nothing",
           "lookups %ld -> %ld -> %ld, kernels %p %p %p", l0, l1, c->kernel_lookups, (void *)k1, (void *)k2,
           (void *)a.k);
  th_check(k1 == db_kernel(c, "silu", "silu_forward_w4"), "kernel handles: the same object as the by-name lookup",
           "different kernel objects");

  /* Ops launch through handles: once warm, no lookups at all. */
  db_arena *ar = db_arena_new(c, "probe");
  db_tensor r = db_new(ar, 1, 8, 0, 0, 0);
  silu_works(c);
  db_rng_uniform(c, r, 1, 0, 0.0f, 1.0f);
  long warm = c->kernel_lookups;
  int ok = silu_works(c);
  db_rng_uniform(c, r, 1, 0, 0.0f, 1.0f);
  db_finish(c);
  db_arena_free(ar);
  th_check(ok && c->kernel_lookups == warm, "kernel handles: warm ops (silu, rng) launch without a lookup",
           "%ld lookups more", c->kernel_lookups - warm);

  /* ... and so do linear (own GEMM with build options, bias kernel) and
   * attention (blocked, rows and tiled paths, per head size) */
  {
    db_arena *la = db_arena_new(c, "probe linear attention");
    int B = 2, T = 5, C = 16, NH = 2;
    db_tensor x = db_new(la, 1, B * T * C, 0, 0, 0), w = db_new(la, 1, 3 * C * C, 0, 0, 0),
              b = db_new(la, 1, 3 * C, 0, 0, 0), qkv = db_new(la, 1, B * T * 3 * C, 0, 0, 0),
              out = db_new(la, 1, B * T * C, 0, 0, 0), lse = db_new(la, 1, B * NH * T, 0, 0, 0);
    db_rng_uniform(c, x, 1, 0, -1.0f, 1.0f);
    db_rng_uniform(c, w, 2, 0, -1.0f, 1.0f);
    db_zero(c, b);
    static const size_t paths[3] = {ATTN_BLOCKED_PATH, 1, 4};
    long before = 0;
    for (int round = 0; round < 2; round++) {
      if (round) before = c->kernel_lookups;
      linear_forward(c, qkv, x, w, b, B * T, C, 3 * C);
      for (int p = 0; p < 3; p++) {
        size_t prev = attention_force_group_size(paths[p]);
        attention_forward(c, out, lse, qkv, DB_NULL, ATTN_CAUSAL, B, T, C, NH);
        attention_force_group_size(prev);
      }
    }
    db_finish(c);
    db_arena_free(la);
    th_check(c->kernel_lookups == before, "kernel handles: warm linear and attention launch without a lookup",
             "%ld lookups more", c->kernel_lookups - before);
  }

  /* elem_args follows elem_force_width between calls. */
  char n4[64], n16[64];
  elem_force_width(16);
  kernel_fn(elem_args(c, &K_PROBE_W).k, n16, sizeof n16);
  elem_force_width(4);
  kernel_fn(elem_args(c, &K_PROBE_W).k, n4, sizeof n4);
  elem_force_width(0);
  th_check(!strcmp(n16, "silu_forward_w16") && !strcmp(n4, "silu_forward_w4"),
           "kernel handles: elem_args picks the forced width's kernel", "got %s and %s", n16, n4);

  /* A second context resolves again; after its shutdown a new context (maybe
   * at the same address) resolves again, never returning a released kernel. */
  db_ctx *d = db_init(NULL);
  cl_kernel kd = db_kernel_ref_get(d, &K_PROBE);
  th_check(d->id != c->id && d->kernel_lookups == 1 && kd != k1 && kernel_context(kd) == d->context,
           "kernel handles: another context resolves its own kernel", "ids %u %u, lookups %ld", c->id, d->id,
           d->kernel_lookups);
  unsigned old_id = d->id;
  db_shutdown(d);
  db_ctx *e = db_init(NULL);
  cl_kernel ke = db_kernel_ref_get(e, &K_PROBE);
  int works = silu_works(e); /* the ops' own handles re-resolve too */
  th_check(e->id != old_id && e->kernel_lookups >= 1 && kernel_context(ke) == e->context && works,
           "kernel handles: after db_shutdown + db_init the handle resolves in the new context",
           "ids %u -> %u, lookups %ld, silu %s", old_id, e->id, e->kernel_lookups, works ? "ok" : "wrong");
  long le = e->kernel_lookups;
  th_check(db_kernel_ref_get(e, &K_PROBE) == ke && e->kernel_lookups == le,
           "kernel handles: resolved once in the new context", "lookups %ld -> %ld", le, e->kernel_lookups);
  db_shutdown(e);
  l0 = c->kernel_lookups;
  th_check(db_kernel_ref_get(c, &K_PROBE) == k1 && c->kernel_lookups == l0 + 1,
           "kernel handles: back in the first context, one lookup finds its kernel again", "lookups %ld -> %ld", l0,
           c->kernel_lookups);

  expect_ref_errors();
  th_check(K_MISSING.ctx_id == 0 && K_MISSING.k == NULL, "kernel handles: a failed lookup leaves the handle unresolved",
           "ctx_id %u", K_MISSING.ctx_id);
}

static void test_arenas(void) {
  size_t live0 = db_live_bytes();
  db_reset_peak();
  db_arena *a = db_arena_new(th_ctx, "params"), *b = db_arena_new(th_ctx, "acts");
  db_new(a, 2, 100, 10, 0, 0);
  db_new(b, 3, 4, 5, 6, 0);
  th_check(db_arena_bytes(a) == 4000 && db_arena_bytes(b) == 480 && db_live_bytes() == live0 + 4480,
           "arenas: bytes counted per arena and live", "a %zu b %zu live %zu", db_arena_bytes(a), db_arena_bytes(b),
           db_live_bytes() - live0);
  db_arena_free(b);
  th_check(db_live_bytes() == live0 + 4000 && db_peak_bytes() >= live0 + 4480,
           "arenas: freeing an arena lowers live bytes, peak stays", "live %zu peak %zu", db_live_bytes() - live0,
           db_peak_bytes() - live0);
  db_arena_free(a);
  TH_EXPECT_ERROR("arenas: zero-sized dim is a clear error", "must be positive", {
    db_arena *c = db_arena_new(th_ctx, "bad");
    db_new(c, 2, 3, 0, 0, 0);
  });
  TH_EXPECT_ERROR("arenas: allocation beyond the device limit is a clear error", "exceeds the device's max allocation", {
    db_arena *c = db_arena_new(th_ctx, "huge");
    int shape[4] = {1 << 30, 1 << 30, 1, 1};
    db_alloc(c, DB_F32, 2, shape);
  });
}

/* Checked allocation (runtime/base.h): a clear message instead of a NULL. */
static void test_host_allocation(void) {
  TH_EXPECT_ERROR("base: db_malloc of an impossible size fails naming it", "out of host memory: could not allocate",
                  db_malloc((size_t)-1 / 2));
  TH_EXPECT_ERROR("base: db_calloc whose count x size overflows fails clearly", "overflows the address space",
                  db_calloc((size_t)-1 / 8, 16));
  TH_EXPECT_ERROR("base: db_realloc of an impossible size fails naming it", "out of host memory",
                  db_realloc(NULL, (size_t)-1 / 2));
  char *p = db_malloc(0), *q = db_calloc(0, 4), *s = db_strdup("abc");
  th_check(p && q && p != q && !strcmp(s, "abc"), "base: zero-size allocations are distinct non-NULL pointers; strdup copies",
           "p %p q %p", (void *)p, (void *)q);
  free(p); free(q); free(s);
}

/* db_force_row_group_size: exact sizes, restore, and clear errors; the
 * environment variable DBLOCKS_ROW_WG through a second db_init. */
static void row_wg_env_init(const char *value) {
  setenv("DBLOCKS_ROW_WG", value, 1);
  db_ctx *c = db_init(NULL);
  db_shutdown(c);
}
static void expect_row_wg_env_errors(void) {
  TH_EXPECT_ERROR("row wg: DBLOCKS_ROW_WG=48 is a clear error", "DBLOCKS_ROW_WG=48: want 0", { row_wg_env_init("48"); });
  TH_EXPECT_ERROR("row wg: DBLOCKS_ROW_WG=abc is a clear error", "DBLOCKS_ROW_WG=abc", { row_wg_env_init("abc"); });
}
static void test_row_group_size(void) {
  db_ctx *c = th_ctx;
  size_t dev = db_row_group_size(c, 1 << 20);
  size_t prev = db_force_row_group_size(c, 64);
  th_check(db_row_group_size(c, 7) == 64 && db_row_group_size(c, 100000) == 64,
           "row wg: a forced 64 is used exactly, also for a row of 7", "got %zu and %zu", db_row_group_size(c, 7),
           db_row_group_size(c, 100000));
  size_t back = db_force_row_group_size(c, prev);
  th_check(back == 64 && db_row_group_size(c, 1 << 20) == dev, "row wg: restoring gives back the device's choice",
           "previous %zu, now %zu (device %zu)", back, db_row_group_size(c, 1 << 20), dev);
  TH_EXPECT_ERROR("row wg: a forced 96 is refused (not a power of two)", "not a power of two",
                  { db_force_row_group_size(c, 96); });
  TH_EXPECT_ERROR("row wg: more than CL_DEVICE_MAX_WORK_GROUP_SIZE is refused", "exceeds the device's maximum",
                  { db_force_row_group_size(c, c->dev.max_wg * 2); });
  th_check(db_row_group_size(c, 1 << 20) == dev, "row wg: a refused size leaves the setting alone", "now %zu",
           db_row_group_size(c, 1 << 20));
  const char *saved = getenv("DBLOCKS_ROW_WG");
  char *saved_copy = saved ? strdup(saved) : NULL;
  expect_row_wg_env_errors();
  setenv("DBLOCKS_ROW_WG", "32", 1);
  db_ctx *e = db_init(NULL);
  th_check(e->row_wg_forced && db_row_group_size(e, 3) == 32, "row wg: DBLOCKS_ROW_WG=32 forces 32",
           "forced %d, size %zu", e->row_wg_forced, db_row_group_size(e, 3));
  db_shutdown(e);
  if (saved_copy) setenv("DBLOCKS_ROW_WG", saved_copy, 1);
  else unsetenv("DBLOCKS_ROW_WG");
  free(saved_copy);
}

void tests_runtime(void) {
  test_host_allocation();
  test_devices();
  test_kernels();
  test_kernel_refs();
  test_arenas();
  test_cache();
  test_row_group_size();
}
