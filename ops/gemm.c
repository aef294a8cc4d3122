/* GEMM that adapts to the device: every matrix product of linear goes
 * through gemm(), which picks per shape class either one configuration of the
 * parametrised kernel in cl/gemm.cl or CLBlast. The choice comes from, in
 * order: DBLOCKS_GEMM (a forced configuration), the tuning cache written by
 * `dblocks tune` or by the first-use tuner (unless DBLOCKS_TUNE=off), else a
 * fixed default for the device type. A class met for the first time on a
 * device is tuned there and then, capped to a few seconds
 * (DBLOCKS_TUNE_SECONDS), and its winner cached before it is first used, so
 * a run uses one configuration per class throughout and every later run
 * reads the same: a seed gives bit-identical training on a device. */
#include "ops.h"
#include "../data/file_io.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static db_kernel_ref K_TRANSPOSE = DB_KERNEL_REF("gemm", "gemm_transpose");
static db_kernel_ref K_SUM_PARTIALS = DB_KERNEL_REF("gemm", "gemm_sum_partials");
static db_kernel_ref K_COLSUM = DB_KERNEL_REF("gemm", "gemm_colsum");
static db_kernel_ref K_COLSUM_PARTIAL = DB_KERNEL_REF("gemm", "gemm_colsum_partial");
static db_kernel_ref K_COLSUM_FINISH = DB_KERNEL_REF("gemm", "gemm_colsum_finish");

/* ---------------------------------------------------------------- configurations */
int gemm_config_parse(const char *s, gemm_config *c) {
  memset(c, 0, sizeof *c);
  if (!s) return 0;
  if (!strcmp(s, "clblast")) { c->clblast = 1; return 1; }
  if (strncmp(s, "own:", 4)) return 0;
  *c = (gemm_config){0, 4, 4, 4, 2, 4, 16, 0, 0, 0, 0};
  const char *p = s + 4;
  while (*p) {
    char key[16];
    int val, used = 0;
    if (sscanf(p, "%15[A-Z]=%d%n", key, &val, &used) != 2) return 0;
    int *f = !strcmp(key, "MDIMC") ? &c->mdimc : !strcmp(key, "NDIMC") ? &c->ndimc : !strcmp(key, "WPTM") ? &c->wptm
           : !strcmp(key, "WPTN") ? &c->wptn : !strcmp(key, "VW") ? &c->vw : !strcmp(key, "KWG") ? &c->kwg
           : !strcmp(key, "LOCAL") ? &c->local : !strcmp(key, "GROUPM") ? &c->groupm : !strcmp(key, "KPASS") ? &c->kpass
           : !strcmp(key, "FAULT") ? &c->fault : NULL;
    if (!f) return 0;
    *f = val;
    p += used;
    if (*p == ',') p++;
    else if (*p) return 0;
  }
  int vw_ok = c->vw == 1 || c->vw == 2 || c->vw == 4 || c->vw == 8 || c->vw == 16;
  return vw_ok && c->mdimc >= 1 && c->ndimc >= 1 && c->wptm >= 1 && c->wptm <= 16 && c->wptn >= 1 && c->wptn <= 16 &&
         c->kwg >= 1 && c->kwg <= 64 && (c->local == 0 || c->local == 1) && (c->fault == 0 || c->fault == 1) &&
         c->groupm >= 0 && c->groupm <= 64 && c->kpass >= 0;
}

void gemm_config_format(const gemm_config *c, char *out, size_t n) {
  if (c->clblast) { snprintf(out, n, "clblast"); return; }
  char g[48] = "";
  if (c->groupm && c->kpass) snprintf(g, sizeof g, ",GROUPM=%d,KPASS=%d", c->groupm, c->kpass);
  else if (c->groupm) snprintf(g, sizeof g, ",GROUPM=%d", c->groupm);
  else if (c->kpass) snprintf(g, sizeof g, ",KPASS=%d", c->kpass);
  snprintf(out, n, "own:MDIMC=%d,NDIMC=%d,WPTM=%d,WPTN=%d,VW=%d,KWG=%d,LOCAL=%d%s%s", c->mdimc, c->ndimc, c->wptm,
           c->wptn, c->vw, c->kwg, c->local, g, c->fault ? ",FAULT=1" : "");
}

/* Whether the device can run c: work-group size and local memory. */
int gemm_config_fits(db_ctx *ctx, const gemm_config *c) {
  if (c->clblast) return 1;
  size_t items = (size_t)c->mdimc * c->ndimc;
  size_t local = c->local ? (size_t)c->kwg * (c->mdimc * c->wptm + c->ndimc * c->wptn * c->vw) * 4 : 0;
  return items <= ctx->dev.max_wg && local <= ctx->dev.local_mem;
}

static void build_options(const gemm_config *c, int ta, char *out, size_t n) {
  snprintf(out, n, "-DTA=%d -DMDIMC=%d -DNDIMC=%d -DWPTM=%d -DWPTN=%d -DVW=%d -DKWG=%d -DLOCAL=%d -DGROUPM=%d -DFAULT=%d",
           ta, c->mdimc, c->ndimc, c->wptm, c->wptn, c->vw, c->kwg, c->local, c->groupm, c->fault);
}

/* The tuner's candidates. CPU drivers (PoCL) run a work-group as a loop over
 * its work-items, so register tiles of wide vectors straight from the caches
 * win there; GPUs want 64..256-item groups staging tiles in local memory. */
static const char *const CPU_CANDIDATES[] = {
    /* the default: 6 x 64 tile (24 zmm accumulators), grouped order, K in
     * passes of 256; best or within 10 % of it at every class on a 2-core
     * AVX-512 Xeon under PoCL (docs/bench.md) */
    "own:MDIMC=1,NDIMC=1,WPTM=6,WPTN=4,VW=16,KWG=16,LOCAL=0,GROUPM=8,KPASS=256",
    "own:MDIMC=1,NDIMC=1,WPTM=6,WPTN=4,VW=16,KWG=16,LOCAL=0,GROUPM=8,KPASS=512",
    "own:MDIMC=1,NDIMC=1,WPTM=7,WPTN=4,VW=16,KWG=16,LOCAL=0,GROUPM=8,KPASS=256",
    "own:MDIMC=1,NDIMC=1,WPTM=4,WPTN=6,VW=16,KWG=16,LOCAL=0,GROUPM=8,KPASS=256",
    "own:MDIMC=1,NDIMC=1,WPTM=12,WPTN=2,VW=16,KWG=16,LOCAL=0,GROUPM=8,KPASS=512",
    "own:MDIMC=1,NDIMC=1,WPTM=12,WPTN=2,VW=16,KWG=16,LOCAL=0,GROUPM=8,KPASS=256",
    "own:MDIMC=1,NDIMC=1,WPTM=14,WPTN=2,VW=16,KWG=16,LOCAL=0,GROUPM=8,KPASS=256",
    "own:MDIMC=1,NDIMC=1,WPTM=12,WPTN=2,VW=16,KWG=16,LOCAL=0",
    "own:MDIMC=1,NDIMC=1,WPTM=4,WPTN=4,VW=16,KWG=16,LOCAL=0,KPASS=256",
    "own:MDIMC=1,NDIMC=1,WPTM=8,WPTN=2,VW=16,KWG=16,LOCAL=0,GROUPM=8,KPASS=128",
};
static const char *const GPU_CANDIDATES[] = {
    "own:MDIMC=16,NDIMC=16,WPTM=4,WPTN=1,VW=4,KWG=16,LOCAL=1",
    "own:MDIMC=16,NDIMC=16,WPTM=8,WPTN=2,VW=2,KWG=16,LOCAL=1",
    "own:MDIMC=8,NDIMC=16,WPTM=8,WPTN=1,VW=4,KWG=16,LOCAL=1",
    "own:MDIMC=8,NDIMC=8,WPTM=4,WPTN=2,VW=4,KWG=32,LOCAL=1,GROUPM=8",
    "own:MDIMC=16,NDIMC=16,WPTM=2,WPTN=2,VW=1,KWG=16,LOCAL=0",
    "own:MDIMC=8,NDIMC=32,WPTM=4,WPTN=1,VW=2,KWG=8,LOCAL=1",
};
static int is_cpu(db_ctx *ctx) { return (ctx->dev.type & CL_DEVICE_TYPE_GPU) == 0; }

int gemm_candidates(db_ctx *ctx, int which, const char *const **list) {
  int cpu = which == 0 ? is_cpu(ctx) : which == 1;
  *list = cpu ? CPU_CANDIDATES : GPU_CANDIDATES;
  return cpu ? (int)(sizeof CPU_CANDIDATES / sizeof *CPU_CANDIDATES) : (int)(sizeof GPU_CANDIDATES / sizeof *GPU_CANDIDATES);
}

static gemm_config default_config(db_ctx *ctx) {
  gemm_config c;
  gemm_config_parse(is_cpu(ctx) ? CPU_CANDIDATES[0] : GPU_CANDIDATES[0], &c);
  return c;
}

/* ---------------------------------------------------------------- shape classes */
/* s < 48 <= m <= 320 < l <= 1536 < x: the models' widths 64..256 are m,
 * 384..1536 are l, batch x tokens and n = 2048 are x or l. */
static char size_bucket(int x) { return x < 48 ? 's' : x <= 320 ? 'm' : x <= 1536 ? 'l' : 'x'; }

void gemm_shape_class(int ta, int tb, int M, int N, int K, int batch, char *out, size_t n) {
  snprintf(out, n, "%c%c-%c%c%c%s", ta ? 't' : 'n', tb ? 't' : 'n', size_bucket(M), size_bucket(N), size_bucket(K),
           batch > 1 ? "-b" : "");
}

/* ---------------------------------------------------------------- the tuning cache */
static void cache_file(db_ctx *ctx, char *out, size_t n) {
  const db_device_info *d = &ctx->dev;
  const char *parts[] = {d->name, d->version, d->driver, d->platform_name, d->platform_version};
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
    for (const char *p = parts[i];; p++) {
      h ^= (unsigned char)*p;
      h *= 0x100000001b3ULL;
      if (!*p) break;
    }
  const char *dir = db_cache_dir();
  if (!dir) { out[0] = 0; return; }
  snprintf(out, n, "%s/gemm-tune-%016llx.json", dir, (unsigned long long)h);
}

void gemm_cache_path(db_ctx *ctx, char *out, size_t n) { cache_file(ctx, out, n); }

#define MAX_CLASSES 64
#define CLBLAST_MAX_PARAMS 24
static struct {
  unsigned ctx_id; /* the context (db_ctx.id: unique, unlike an address) the choices were read for */
  int loaded;
  int n;
  char cls[MAX_CLASSES][24];
  gemm_config cfg[MAX_CLASSES];
  /* CLBlast's own Xgemm parameters for this device, if the cache has them
   * (from CLBlast's tuner, `dblocks tune --clblast-params`) */
  int cb_n;
  char cb_names[CLBLAST_MAX_PARAMS][16];
  size_t cb_values[CLBLAST_MAX_PARAMS];
} choices;

/* DBLOCKS_TUNE: "off" ignores the cache (defaults only), "cache" reads it
 * but never tunes, unset or "auto" also tunes a missing class on first use. */
static const char *tune_mode(void) {
  const char *t = getenv("DBLOCKS_TUNE");
  if (!t || !*t || !strcmp(t, "auto")) return "auto";
  if (!strcmp(t, "off") || !strcmp(t, "cache")) return t;
  db_fail("DBLOCKS_TUNE=%s: want auto (the default), cache or off", t);
  return "off";
}

void gemm_reset_choices(void) { memset(&choices, 0, sizeof choices); }

/* The cache's "clblast_xgemm": {"parameters": {"KWG": 32, ...}}: names of
 * upper-case letters and digits, values 0..65536; anything else is ignored
 * with a warning (CLBlast keeps its defaults). */
static void read_clblast_params(json_t *cb, const char *path) {
  json_t *params = json_object_get(cb, "parameters");
  if (!cb) return;
  const char *name;
  json_t *v;
  int ok = json_is_object(params) && json_object_size(params) <= CLBLAST_MAX_PARAMS && json_object_size(params) > 0;
  if (ok)
    json_object_foreach(params, name, v) {
      ok &= json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 65536 && strlen(name) < 16 &&
            strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == strlen(name);
      if (!ok) break;
      snprintf(choices.cb_names[choices.cb_n], 16, "%s", name);
      choices.cb_values[choices.cb_n++] = (size_t)json_integer_value(v);
    }
  if (!ok) {
    choices.cb_n = 0;
    fprintf(stderr, "dblocks: ignoring bad clblast_xgemm parameters in %s (CLBlast keeps its defaults)\n", path);
  }
}

/* Reads the cache once per context into `choices`. A file that does not parse,
 * belongs to another device, or an entry that is not a valid configuration
 * for this device is ignored (with one warning): the default is used. */
static void load_cache(db_ctx *ctx) {
  if (choices.ctx_id != ctx->id) { gemm_reset_choices(); choices.ctx_id = ctx->id; }
  if (choices.loaded) return;
  choices.loaded = 1;
  if (!strcmp(tune_mode(), "off")) return;
  char path[1200];
  cache_file(ctx, path, sizeof path);
  if (!path[0]) return;
  FILE *f = fopen(path, "rb");
  if (!f) return;
  fclose(f);
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);
  json_t *classes = root ? json_object_get(root, "classes") : NULL;
  const char *dev = root ? json_string_value(json_object_get(root, "device")) : NULL;
  if (!json_is_object(classes) || !dev || strcmp(dev, ctx->dev.name)) {
    fprintf(stderr, "dblocks: ignoring unreadable GEMM tuning cache %s (defaults used; `dblocks tune` rewrites it)\n", path);
    json_decref(root);
    return;
  }
  const char *key;
  json_t *val;
  read_clblast_params(json_object_get(root, "clblast_xgemm"), path);
  json_object_foreach(classes, key, val) {
    gemm_config c;
    const char *s = json_string_value(json_object_get(val, "config"));
    if (!s || !gemm_config_parse(s, &c) || c.fault || !gemm_config_fits(ctx, &c) || strlen(key) >= 24 ||
        choices.n == MAX_CLASSES) {
      fprintf(stderr, "dblocks: ignoring bad GEMM tuning cache entry %s in %s\n", key, path);
      continue;
    }
    snprintf(choices.cls[choices.n], 24, "%s", key);
    choices.cfg[choices.n++] = c;
  }
  json_decref(root);
}

static gemm_config autotune_class(db_ctx *ctx, int ta, int tb, int M, int N, int K, const char *cls);

gemm_config gemm_choose(db_ctx *ctx, int ta, int tb, int M, int N, int K, int batch) {
  const char *force = getenv("DBLOCKS_GEMM");
  gemm_config c;
  if (force && *force) {
    if (!gemm_config_parse(force, &c) || !gemm_config_fits(ctx, &c))
      db_fail("DBLOCKS_GEMM=%s is not a GEMM configuration for %s (want clblast or own:MDIMC=..,NDIMC=..,WPTM=..,"
              "WPTN=..,VW=1|2|4|8|16,KWG=..,LOCAL=0|1)", force, ctx->dev.name);
    return c;
  }
  load_cache(ctx);
  char cls[24];
  gemm_shape_class(ta, tb, M, N, K, batch, cls, sizeof cls);
  for (int i = 0; i < choices.n; i++)
    if (!strcmp(choices.cls[i], cls)) return choices.cfg[i];
  /* Batched products (none in the models since attention is fused) keep the
   * default; the others are tuned once, when the cache can keep the result. */
  if (batch == 1 && !strcmp(tune_mode(), "auto") && db_cache_dir()) return autotune_class(ctx, ta, tb, M, N, K, cls);
  return default_config(ctx);
}

/* ---------------------------------------------------------------- running */
static void check_operand(db_tensor t, int rows, int cols, int ld, int batch, size_t stride, const char *name) {
  if (ld < (cols > 1 ? cols : 1)) db_fail("gemm: leading dimension of %s is %d, less than its %d columns", name, ld, cols);
  if (rows == 0 || cols == 0) return;
  size_t need = (size_t)(rows - 1) * ld + cols + (size_t)(batch - 1) * stride;
  if (need > db_numel(t))
    db_fail("gemm: argument %s holds %zu elements, the product reads %zu", name, db_numel(t), need);
}

static void set_arg(cl_kernel k, cl_uint i, size_t size, const void *v) { CL_CHECK(clSetKernelArg(k, i, size, v)); }

static void enqueue_3d(db_ctx *ctx, cl_kernel k, const size_t *global, const size_t *local, const char *name) {
  CL_CHECK(clEnqueueNDRangeKernel(ctx->queue, k, 3, NULL, global, local, 0, NULL, db_profile_event(ctx, name)));
}

/* op(B) (K,N) of a transposed B (stored (N,K)) into workspace 0, so the
 * kernel reads B along rows. */
static db_tensor transpose_b(db_ctx *ctx, db_tensor B, int ldb, size_t sb, int N, int K, int batch) {
  db_tensor t = db_workspace(ctx, 0, (size_t)K * N * batch);
  cl_kernel k = db_kernel_ref_get(ctx, &K_TRANSPOSE);
  cl_ulong t_off = db_eoff(t), b_off = db_eoff(B), t_stride = (cl_ulong)K * N, b_stride = sb;
  cl_int ld_out = N, ld_in = ldb, rows = N, cols = K;
  set_arg(k, 0, sizeof(cl_mem), &t.mem); set_arg(k, 1, 8, &t_off); set_arg(k, 2, 4, &ld_out); set_arg(k, 3, 8, &t_stride);
  set_arg(k, 4, sizeof(cl_mem), &B.mem); set_arg(k, 5, 8, &b_off); set_arg(k, 6, 4, &ld_in); set_arg(k, 7, 8, &b_stride);
  set_arg(k, 8, 4, &rows); set_arg(k, 9, 4, &cols);
  size_t local[3] = {16, 16, 1};
  if (ctx->dev.max_wg < 256) local[0] = local[1] = 8;
  size_t global[3] = {(K + local[0] - 1) / local[0] * local[0], (N + local[1] - 1) / local[1] * local[1], (size_t)batch};
  enqueue_3d(ctx, k, global, local, "gemm transpose");
  return t;
}

/* One handle per (configuration, transpose of A) met, in a fixed table so
 * that the handles' option strings never move; the handles rebind per
 * context by themselves. A full table (more configurations than the tuner
 * has) falls back to the lookup by name. */
#define OWN_KERNELS 48
static struct { gemm_config c; int ta; char opts[256]; db_kernel_ref k; } own[OWN_KERNELS];
static int n_own;

static cl_kernel own_kernel(db_ctx *ctx, const gemm_config *c, int ta) {
  for (int i = 0; i < n_own; i++)
    if (own[i].ta == ta && !memcmp(&own[i].c, c, sizeof *c)) return db_kernel_ref_get(ctx, &own[i].k);
  char opts[256];
  build_options(c, ta, opts, sizeof opts);
  if (n_own == OWN_KERNELS) return db_kernel_opts(ctx, "gemm", "gemm", opts);
  own[n_own].c = *c;
  own[n_own].ta = ta;
  memcpy(own[n_own].opts, opts, sizeof opts);
  own[n_own].k = (db_kernel_ref)DB_KERNEL_REF_OPTS("gemm", "gemm", own[n_own].opts);
  return db_kernel_ref_get(ctx, &own[n_own++].k);
}

static void run_own(db_ctx *ctx, const gemm_config *c, int ta, int tb, int M, int N, int K, float alpha, db_tensor A,
                    int lda, size_t sa, db_tensor B, int ldb, size_t sb, float beta, db_tensor C, int ldc, size_t sc,
                    int batch) {
  if (tb) {
    B = transpose_b(ctx, B, ldb, sb, N, K, batch);
    ldb = N;
    sb = (size_t)K * N;
  }
  cl_kernel k = own_kernel(ctx, c, ta);
  cl_ulong a_off = db_eoff(A), b_off = db_eoff(B), c_off = db_eoff(C), a_st = sa, b_st = sb, c_st = sc;
  set_arg(k, 0, 4, &M); set_arg(k, 1, 4, &N); set_arg(k, 2, 4, &K); set_arg(k, 3, 4, &alpha); set_arg(k, 4, 4, &beta);
  set_arg(k, 5, sizeof(cl_mem), &A.mem); set_arg(k, 6, 8, &a_off); set_arg(k, 7, 4, &lda); set_arg(k, 8, 8, &a_st);
  set_arg(k, 9, sizeof(cl_mem), &B.mem); set_arg(k, 10, 8, &b_off); set_arg(k, 11, 4, &ldb); set_arg(k, 12, 8, &b_st);
  set_arg(k, 13, sizeof(cl_mem), &C.mem); set_arg(k, 14, 8, &c_off); set_arg(k, 15, 4, &ldc); set_arg(k, 16, 8, &c_st);
  size_t mwg = (size_t)c->mdimc * c->wptm, nwg = (size_t)c->ndimc * c->wptn * c->vw;
  size_t local[3] = {(size_t)c->ndimc, (size_t)c->mdimc, 1};
  size_t global[3] = {(N + nwg - 1) / nwg * c->ndimc, (M + mwg - 1) / mwg * c->mdimc, (size_t)batch};
  enqueue_3d(ctx, k, global, local, "gemm");
}

/* A long K with a small C (the weight gradient: K = batch x tokens) makes
 * every work-group stream whole K panels that no cache holds. Split-K: S
 * products over K chunks of KC into workspace 2, summed in order by
 * gemm_sum_partials, so neighbouring groups share panels that fit. */
enum { SPLIT_KC = 512 };
static int wants_split_k(int M, int N, int K) { return K > 2 * SPLIT_KC && K >= 4 * (M > N ? M : N); }

static void run_own_split_k(db_ctx *ctx, const gemm_config *c, int ta, int tb, int M, int N, int K, float alpha,
                            db_tensor A, int lda, db_tensor B, int ldb, float beta, db_tensor C, int ldc) {
  int S = K / SPLIT_KC, rem = K - S * SPLIT_KC, parts = S + (rem > 0);
  size_t mn = (size_t)M * N;
  db_tensor W = db_workspace(ctx, 2, mn * parts);
  size_t a_step = ta ? (size_t)SPLIT_KC * lda : SPLIT_KC, b_step = tb ? SPLIT_KC : (size_t)SPLIT_KC * ldb;
  run_own(ctx, c, ta, tb, M, N, SPLIT_KC, 1.0f, A, lda, a_step, B, ldb, b_step, 0.0f, W, N, mn, S);
  if (rem) {
    int sh[1] = {0};
    sh[0] = (int)(db_numel(A) - a_step * S); db_tensor At = db_view(A, a_step * S, 1, sh);
    sh[0] = (int)(db_numel(B) - b_step * S); db_tensor Bt = db_view(B, b_step * S, 1, sh);
    sh[0] = (int)mn; db_tensor Wt = db_view(W, mn * S, 1, sh);
    run_own(ctx, c, ta, tb, M, N, rem, 1.0f, At, lda, 0, Bt, ldb, 0, 0.0f, Wt, N, 0, 1);
  }
  db_args a = db_args_ref(ctx, &K_SUM_PARTIALS);
  db_arg_tensor(&a, C);
  db_arg_i32(&a, ldc);
  db_arg_tensor(&a, W);
  db_arg_i32(&a, parts);
  db_arg_i32(&a, M);
  db_arg_i32(&a, N);
  db_arg_f32(&a, alpha);
  db_arg_f32(&a, beta);
  db_launch_2d(&a, (size_t)N, (size_t)M, 16, 4);
}

/* KPASS = kc: the product as passes over K chunks of kc, each adding into C
 * (beta = 1 after the first), so the K x NWG panels a group streams fit in
 * cache for a long K. Deterministic: the passes run in order. */
static void run_own_k_passes(db_ctx *ctx, const gemm_config *c, int ta, int tb, int M, int N, int K, float alpha,
                             db_tensor A, int lda, size_t sa, db_tensor B, int ldb, size_t sb, float beta, db_tensor C,
                             int ldc, size_t sc, int batch) {
  for (int k0 = 0; k0 < K; k0 += c->kpass) {
    int kc = K - k0 < c->kpass ? K - k0 : c->kpass, sh[1];
    size_t ao = ta ? (size_t)k0 * lda : (size_t)k0, bo = tb ? (size_t)k0 : (size_t)k0 * ldb;
    sh[0] = (int)(db_numel(A) - ao); db_tensor Ak = db_view(A, ao, 1, sh);
    sh[0] = (int)(db_numel(B) - bo); db_tensor Bk = db_view(B, bo, 1, sh);
    run_own(ctx, c, ta, tb, M, N, kc, alpha, Ak, lda, sa, Bk, ldb, sb, k0 ? 1.0f : beta, C, ldc, sc, batch);
  }
}

static CLBlastTranspose cb_t(int t) { return t ? CLBlastTransposeYes : CLBlastTransposeNo; }

/* CLBlast keeps parameter overrides per device for the whole process, with
 * no way back to its defaults: the cache's parameters are applied before the
 * first CLBlast product of a device, unless gemm_clblast_defaults(1) asked
 * for the defaults first (bench ops measures both, defaults first). */
static int cb_defaults_wanted;
static cl_device_id cb_applied_device;

int gemm_clblast_defaults(int on) {
  if (on && cb_applied_device) return 0; /* too late: an override is in force */
  cb_defaults_wanted = on;
  return 1;
}

int gemm_clblast_tuned(db_ctx *ctx, char *desc, size_t n) {
  load_cache(ctx);
  if (desc && n) desc[0] = 0;
  for (int i = 0, used = 0; desc && i < choices.cb_n && used < (int)n; i++)
    used += snprintf(desc + used, n - used, "%s%s=%zu", i ? "," : "", choices.cb_names[i], choices.cb_values[i]);
  return choices.cb_n > 0;
}

static void clblast_prepare(db_ctx *ctx) {
  load_cache(ctx);
  if (cb_defaults_wanted || !choices.cb_n || cb_applied_device == ctx->dev.device) return;
  const char *names[CLBLAST_MAX_PARAMS];
  for (int i = 0; i < choices.cb_n; i++) names[i] = choices.cb_names[i];
  CLBlastStatusCode st = CLBlastOverrideParameters(ctx->dev.device, "Xgemm", CLBlastPrecisionSingle,
                                                   (size_t)choices.cb_n, names, choices.cb_values);
  /* CLBlast runs products below XGEMM_MIN_INDIRECT_SIZE^3 on its direct
   * kernel, which these parameters do not touch: lower the switch so the
   * tuned kernel serves the models' products */
  const char *routine[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
  const size_t min_indirect[1] = {64};
  if (st == CLBlastSuccess)
    st = CLBlastOverrideParameters(ctx->dev.device, "GemmRoutine", CLBlastPrecisionSingle, 1, routine, min_indirect);
  if (st != CLBlastSuccess) {
    fprintf(stderr, "dblocks: CLBlast rejected the cached Xgemm parameters (status %d); it keeps its defaults\n", (int)st);
    choices.cb_n = 0;
    return;
  }
  cb_applied_device = ctx->dev.device;
}

static void run_clblast(db_ctx *ctx, int ta, int tb, int M, int N, int K, float alpha, db_tensor A, int lda, size_t sa,
                        db_tensor B, int ldb, size_t sb, float beta, db_tensor C, int ldc, size_t sc, int batch) {
  clblast_prepare(ctx);
  if (batch > 1) {
    /* CLBlast has no temp-buffer variant of the batched product: the padded
     * copies its indirect kernel may need are its own allocations, outside the
     * runtime's counters and memory limit (the only device memory the runtime
     * does not count; only the "clblast" configuration runs this path). */
    CLBLAST_CHECK(CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, cb_t(ta), cb_t(tb), M, N, K, alpha, A.mem,
                                             db_eoff(A), lda, sa, B.mem, db_eoff(B), ldb, sb, beta, C.mem, db_eoff(C),
                                             ldc, sc, batch, &ctx->queue, db_profile_event(ctx, "sgemm clblast")));
    return;
  }
  size_t bytes = 0;
  CLBLAST_CHECK(CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, cb_t(ta), cb_t(tb), M, N, K, db_eoff(A), lda,
                                           db_eoff(B), ldb, db_eoff(C), ldc, &ctx->queue, &bytes));
  db_tensor tmp = db_workspace(ctx, 1, (bytes + 3) / 4);
  CLBLAST_CHECK(CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, cb_t(ta), cb_t(tb), M, N, K, alpha, A.mem,
                                           db_eoff(A), lda, B.mem, db_eoff(B), ldb, beta, C.mem, db_eoff(C), ldc,
                                           &ctx->queue, db_profile_event(ctx, "sgemm clblast"), tmp.mem));
}

void gemm_with(db_ctx *ctx, const gemm_config *c, int ta, int tb, int M, int N, int K, float alpha, db_tensor A,
               int lda, size_t sa, db_tensor B, int ldb, size_t sb, float beta, db_tensor C, int ldc, size_t sc,
               int batch) {
  if (M < 0 || N < 0 || K < 0 || batch < 1)
    db_fail("gemm: sizes must be non-negative and batch positive, got M=%d N=%d K=%d batch=%d", M, N, K, batch);
  check_operand(A, ta ? K : M, ta ? M : K, lda, batch, sa, "A");
  check_operand(B, tb ? N : K, tb ? K : N, ldb, batch, sb, "B");
  check_operand(C, M, N, ldc, batch, sc, "C");
  if (M == 0 || N == 0) return;
  if (c->clblast && K == 0) { /* CLBlast rejects K = 0; the kernel scales C by beta */
    gemm_config d = default_config(ctx);
    run_own(ctx, &d, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
  } else if (c->clblast) run_clblast(ctx, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
  /* a K much longer than M and N splits (two launches) rather than passes (K / KPASS launches) */
  else if (batch == 1 && wants_split_k(M, N, K)) run_own_split_k(ctx, c, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (c->kpass && K > c->kpass) run_own_k_passes(ctx, c, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
  else run_own(ctx, c, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

void gemm_strided_batched(db_ctx *ctx, int ta, int tb, int M, int N, int K, float alpha, db_tensor A, int lda, size_t sa,
                  db_tensor B, int ldb, size_t sb, float beta, db_tensor C, int ldc, size_t sc, int batch) {
  gemm_config c = gemm_choose(ctx, ta, tb, M, N, K, batch);
  gemm_with(ctx, &c, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

void gemm(db_ctx *ctx, int ta, int tb, int M, int N, int K, float alpha, db_tensor A, int lda, db_tensor B, int ldb,
          float beta, db_tensor C, int ldc) {
  gemm_strided_batched(ctx, ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

/* Rows per partial of the two-pass column sum: short enough that a tall
 * gradient (batch x tokens rows) spreads over every core. */
#define COLSUM_CHUNK 128

void gemm_colsum_acc(db_ctx *ctx, db_tensor sums, db_tensor X, int rows, int N, int ld) {
  check_operand(X, rows, N, ld, 1, 0, "X");
  db_check_numel(sums, (size_t)N, "gemm_colsum", "sums");
  if (rows <= COLSUM_CHUNK) { /* one pass: a work-item per column */
    db_args a = db_args_ref(ctx, &K_COLSUM);
    db_arg_tensor(&a, sums);
    db_arg_tensor(&a, X);
    db_arg_i32(&a, ld);
    db_arg_i32(&a, rows);
    db_arg_i32(&a, N);
    db_launch_1d(&a, (size_t)N, 0);
    return;
  }
  int chunks = (rows + COLSUM_CHUNK - 1) / COLSUM_CHUNK;
  db_tensor partials = db_workspace(ctx, 3, (size_t)chunks * N);
  db_args a = db_args_ref(ctx, &K_COLSUM_PARTIAL);
  db_arg_tensor(&a, partials);
  db_arg_tensor(&a, X);
  db_arg_i32(&a, ld);
  db_arg_i32(&a, rows);
  db_arg_i32(&a, N);
  db_arg_i32(&a, COLSUM_CHUNK);
  db_launch_2d(&a, ((size_t)N + 15) / 16, (size_t)chunks, 1, 1);
  db_args f = db_args_ref(ctx, &K_COLSUM_FINISH);
  db_arg_tensor(&f, sums);
  db_arg_tensor(&f, partials);
  db_arg_i32(&f, chunks);
  db_arg_i32(&f, N);
  db_launch_1d(&f, (size_t)N, 0);
}

/* ---------------------------------------------------------------- validation and tuning */
static double host_ref_err(const float *a, const float *b, const float *c0, const float *c, int ta, int tb, int M,
                           int N, int K, int lda, int ldb, int ldc, float alpha, float beta) {
  double maxerr = 0, maxref = 1e-30;
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double s = 0;
      for (int k = 0; k < K; k++)
        s += (double)(ta ? a[(size_t)k * lda + m] : a[(size_t)m * lda + k]) *
             (tb ? b[(size_t)n * ldb + k] : b[(size_t)k * ldb + n]);
      double ref = alpha * s + beta * c0[(size_t)m * ldc + n];
      double e = fabs(c[(size_t)m * ldc + n] - ref);
      if (e > maxerr) maxerr = e;
      if (fabs(ref) > maxref) maxref = fabs(ref);
    }
  /* elements between rows (the ld padding) must be untouched */
  for (int m = 0; m < M; m++)
    for (int n = N; n < ldc; n++)
      if (c[(size_t)m * ldc + n] != c0[(size_t)m * ldc + n]) return INFINITY;
  return maxerr / maxref;
}

double gemm_validate(db_ctx *ctx, const gemm_config *cfg, int ta, int tb, int M, int N, int K) {
  int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1, off = 5;
  size_t na = (size_t)(ta ? K : M) * lda + off, nb = (size_t)(tb ? N : K) * ldb + off, nc = (size_t)M * ldc + off;
  float *a = db_malloc(na * 4), *b = db_malloc(nb * 4), *c0 = db_malloc(nc * 4), *c = db_malloc(nc * 4);
  uint64_t st = 12345;
  float *bufs[3] = {a, b, c0};
  size_t lens[3] = {na, nb, nc};
  for (int i = 0; i < 3; i++)
    for (size_t j = 0; j < lens[i]; j++) {
      st = st * 6364136223846793005ULL + 1442695040888963407ULL;
      bufs[i][j] = (float)((st >> 40) / (double)(1 << 24) * 2 - 1);
    }
  db_arena *ar = db_arena_new(ctx, "gemm validate");
  db_tensor A = db_new(ar, 1, (int)na, 0, 0, 0), B = db_new(ar, 1, (int)nb, 0, 0, 0), C = db_new(ar, 1, (int)nc, 0, 0, 0);
  db_upload(ctx, A, a);
  db_upload(ctx, B, b);
  db_upload(ctx, C, c0);
  int sh[1];
  sh[0] = (int)na - off; db_tensor Av = db_view(A, off, 1, sh);
  sh[0] = (int)nb - off; db_tensor Bv = db_view(B, off, 1, sh);
  sh[0] = (int)nc - off; db_tensor Cv = db_view(C, off, 1, sh);
  float alpha = 0.75f, beta = 0.5f;
  gemm_with(ctx, cfg, ta, tb, M, N, K, alpha, Av, lda, 0, Bv, ldb, 0, beta, Cv, ldc, 0, 1);
  db_download(ctx, C, c);
  double err = 0;
  for (int i = 0; i < off; i++) if (c[i] != c0[i]) err = INFINITY; /* before the offset: untouched */
  if (err == 0)
    err = host_ref_err(a + off, b + off, c0 + off, c + off, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta);
  db_arena_free(ar);
  free(a); free(b); free(c0); free(c);
  return err;
}

static double time_candidate(db_ctx *ctx, const gemm_config *c, const gemm_shape *s, db_tensor A, db_tensor B,
                             db_tensor C, double seconds) {
  int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
  gemm_with(ctx, c, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, 0, B, ldb, 0, 0.0f, C, s->N, 0, 1); /* warm-up, build */
  db_finish(ctx);
  int reps = 1;
  for (;;) {
    cl_event t0 = db_marker(ctx);
    for (int i = 0; i < reps; i++)
      gemm_with(ctx, c, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, 0, B, ldb, 0, 0.0f, C, s->N, 0, 1);
    cl_event t1 = db_marker(ctx);
    double ms = db_marker_interval_ms(t0, t1);
    if (ms >= seconds * 1e3 || reps >= 64) return ms / reps;
    reps = ms > 0 ? (int)(reps * seconds * 1e3 / ms) + 1 : reps * 4;
    if (reps > 64) reps = 64;
  }
}

/* Merges `classes` (stolen) into the device's cache file, atomically, and
 * makes the next gemm re-read it. */
static void cache_write_with(db_ctx *ctx, json_t *classes, json_t *clblast) {
  char path[1200];
  cache_file(ctx, path, sizeof path);
  if (!path[0]) { json_decref(classes); json_decref(clblast); db_fail("gemm tune: the cache is off (DBLOCKS_CACHE_DIR=off): nowhere to write"); }
  json_t *root = json_load_file(path, 0, NULL);
  json_t *old = root ? json_object_get(root, "classes") : NULL;
  json_t *merged = json_object();
  if (json_is_object(old) && root && json_is_string(json_object_get(root, "device")) &&
      !strcmp(json_string_value(json_object_get(root, "device")), ctx->dev.name))
    json_object_update(merged, old);
  json_object_update(merged, classes);
  json_decref(classes);
  json_t *root_cb = root && json_is_string(json_object_get(root, "device")) &&
                            !strcmp(json_string_value(json_object_get(root, "device")), ctx->dev.name)
                        ? json_object_get(root, "clblast_xgemm") : NULL;
  json_t *out = json_object();
  json_object_set_new(out, "format", json_string("dblocks-gemm-tune-1"));
  json_object_set_new(out, "device", json_string(ctx->dev.name));
  json_object_set_new(out, "driver", json_string(ctx->dev.driver));
  json_object_set_new(out, "platform_version", json_string(ctx->dev.platform_version));
  json_object_set_new(out, "classes", merged);
  if (clblast) json_object_set_new(out, "clblast_xgemm", clblast);
  else if (root_cb) json_object_set(out, "clblast_xgemm", root_cb);
  json_decref(root);
  char *text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(out);
  mkdir(db_cache_dir(), 0755); /* one level: the binary cache made the parents */
  atomic_write_file(path, text, strlen(text));
  free(text);
  gemm_reset_choices();
}

/* Merges `classes` (stolen) into the cache, keeping its CLBlast parameters. */
static void cache_write(db_ctx *ctx, json_t *classes) { cache_write_with(ctx, classes, NULL); }

void gemm_cache_put_clblast(db_ctx *ctx, const char *names[], const size_t *values, int n, const char *source) {
  if (n <= 0 || n > CLBLAST_MAX_PARAMS) db_fail("gemm: %d CLBlast parameters (want 1..%d)", n, CLBLAST_MAX_PARAMS);
  json_t *params = json_object(), *cb = json_object();
  for (int i = 0; i < n; i++) json_object_set_new(params, names[i], json_integer((json_int_t)values[i]));
  json_object_set_new(cb, "parameters", params);
  json_object_set_new(cb, "source", json_string(source));
  cache_write_with(ctx, json_object(), cb);
}


#define VALIDATE_TOL 1e-5

/* Tunes each shape: every candidate (own configurations that fit the device,
 * then CLBlast) is first validated on a small odd-sized problem of the same
 * transposes against a double reference; only those that pass are timed. The
 * fastest per shape class is written to the cache. Returns the number of
 * classes written. */
int gemm_tune(db_ctx *ctx, const gemm_shape *shapes, int n_shapes, const char *const *cands, int n_cands,
              double seconds, int verbose) {
  json_t *classes = json_object();
  int written = 0;
  for (int s = 0; s < n_shapes; s++) {
    const gemm_shape *sh = &shapes[s];
    char cls[24];
    gemm_shape_class(sh->ta, sh->tb, sh->M, sh->N, sh->K, 1, cls, sizeof cls);
    if (json_object_get(classes, cls)) continue; /* one representative per class */
    db_arena *ar = db_arena_new(ctx, "gemm tune");
    db_tensor A = db_new(ar, 1, sh->M * sh->K, 0, 0, 0), B = db_new(ar, 1, sh->K * sh->N, 0, 0, 0),
              C = db_new(ar, 1, sh->M * sh->N, 0, 0, 0);
    db_rng_uniform(ctx, A, 1, 0, -1, 1);
    db_rng_uniform(ctx, B, 2, 0, -1, 1);
    double best = INFINITY;
    char best_s[128] = "";
    for (int i = 0; i <= n_cands; i++) {
      gemm_config c;
      const char *name = i < n_cands ? cands[i] : "clblast";
      if (!gemm_config_parse(name, &c)) db_fail("gemm tune: bad candidate %s", name);
      if (!gemm_config_fits(ctx, &c)) continue;
      double err = gemm_validate(ctx, &c, sh->ta, sh->tb, 37, 29, 41);
      if (!(err <= VALIDATE_TOL)) {
        if (verbose) printf("  %-10s %-58s REJECTED (relative error %.3g vs double reference)\n", cls, name, err);
        continue;
      }
      double ms = time_candidate(ctx, &c, sh, A, B, C, seconds);
      double gf = 2.0 * sh->M * sh->N * (double)sh->K / ms * 1e-6;
      if (verbose) printf("  %-10s %-58s %8.3f ms %8.1f GFLOP/s\n", cls, name, ms, gf), fflush(stdout);
      if (ms < best) { best = ms; gemm_config_format(&c, best_s, sizeof best_s); }
    }
    db_arena_free(ar);
    if (!best_s[0]) continue;
    json_t *e = json_object();
    json_object_set_new(e, "config", json_string(best_s));
    json_object_set_new(e, "gflops", json_real(2.0 * sh->M * sh->N * (double)sh->K / best * 1e-6));
    char shape[64];
    snprintf(shape, sizeof shape, "M=%d N=%d K=%d", sh->M, sh->N, sh->K);
    json_object_set_new(e, "tuned_on", json_string(shape));
    json_object_set_new(classes, cls, e);
    written++;
    if (verbose) printf("%-10s -> %s\n", cls, best_s), fflush(stdout);
  }
  cache_write(ctx, classes);
  return written;
}

void gemm_cache_put(db_ctx *ctx, const char *cls, const char *config) {
  json_t *classes = json_object(), *e = json_object();
  json_object_set_new(e, "config", json_string(config));
  json_object_set_new(classes, cls, e);
  cache_write(ctx, classes);
}

/* ---------------------------------------------------------------- tuning on first use */
/* The first product of a shape class on a device whose cache has no entry
 * for it tunes the class there and then: the candidates in order (the
 * default first, CLBlast last), each validated and then timed on this very
 * product (M capped at 2048 rows: the same tiles for less time and memory),
 * until this process has spent DBLOCKS_TUNE_SECONDS (default 4) tuning; the
 * fastest so far is cached, marked "auto", before the product runs, so the
 * class keeps that configuration in this run and every later one. Past the
 * budget a class caches the default untimed. The scratch operands are freed
 * and kept out of the peak-memory counter: they are not the model's.
 * `dblocks tune` times every candidate and overwrites these entries. */
static double autotune_spent;

static double autotune_budget(void) {
  const char *s = getenv("DBLOCKS_TUNE_SECONDS");
  if (!s || !*s) return 4.0;
  char *end;
  double v = strtod(s, &end);
  if (*end || !(v >= 0 && v <= 3600)) db_fail("DBLOCKS_TUNE_SECONDS=%s: want seconds between 0 and 3600", s);
  return v;
}

static gemm_config autotune_class(db_ctx *ctx, int ta, int tb, int M, int N, int K, const char *cls) {
  double t0 = db_now(), budget = autotune_budget();
  gemm_config best_c = default_config(ctx);
  gemm_shape sh = {ta, tb, M < 2048 ? M : 2048, N, K};
  double best = INFINITY;
  int tried = 0;
  const char *const *cands;
  int nc = gemm_candidates(ctx, 0, &cands);
  int small = (size_t)sh.M * sh.K < (1u << 30) && (size_t)sh.K * sh.N < (1u << 30) && (size_t)sh.M * sh.N < (1u << 30);
  /* Under a memory limit (db_set_mem_limit) the operands must fit beside what
   * is live, as on a device that small; if they do not, the class keeps the
   * default for this run, uncached, so a later run without the limit tunes it. */
  size_t lim = db_mem_limit(), need = 4 * ((size_t)sh.M * sh.K + (size_t)sh.K * sh.N + (size_t)sh.M * sh.N);
  if (small && lim && db_live_bytes() + need + ((size_t)1 << 20) > lim) return best_c;
  if (small && autotune_spent < budget) {
    size_t peak = db_peak_bytes();
    db_finish(ctx); /* what is queued already is not the candidates' time */
    db_arena *ar = db_arena_new(ctx, "gemm first-use tuning");
    db_tensor A = db_new(ar, 1, sh.M * sh.K, 0, 0, 0), B = db_new(ar, 1, sh.K * sh.N, 0, 0, 0),
              C = db_new(ar, 1, sh.M * sh.N, 0, 0, 0);
    db_rng_uniform(ctx, A, 1, 0, -1, 1);
    db_rng_uniform(ctx, B, 2, 0, -1, 1);
    for (int i = 0; i <= nc && autotune_spent + (db_now() - t0) < budget; i++) {
      gemm_config c;
      if (!gemm_config_parse(i < nc ? cands[i] : "clblast", &c) || !gemm_config_fits(ctx, &c)) continue;
      if (!(gemm_validate(ctx, &c, ta, tb, 37, 29, 41) <= VALIDATE_TOL)) continue;
      double ms = time_candidate(ctx, &c, &sh, A, B, C, 0.02);
      tried++;
      if (ms < best) { best = ms; best_c = c; }
    }
    db_arena_free(ar);
    db_restore_peak(peak);
  }
  double took = db_now() - t0;
  autotune_spent += took;
  char cfg[128], shape[64];
  gemm_config_format(&best_c, cfg, sizeof cfg);
  snprintf(shape, sizeof shape, "M=%d N=%d K=%d", sh.M, sh.N, sh.K);
  json_t *classes = json_object(), *e = json_object();
  json_object_set_new(e, "config", json_string(cfg));
  if (tried) json_object_set_new(e, "gflops", json_real(2.0 * sh.M * sh.N * (double)sh.K / best * 1e-6));
  json_object_set_new(e, "tuned_on", json_string(shape));
  json_object_set_new(e, "auto", json_true());
  json_object_set_new(e, "candidates_timed", json_integer(tried));
  json_object_set_new(classes, cls, e);
  cache_write(ctx, classes);
  if (tried) /* untimed classes (budget spent) keep the default silently: the cache entry says so */
    fprintf(stderr, "dblocks: GEMM class %s tuned on first use: %s (%d of %d candidates in %.1f s)\n", cls, cfg, tried,
            nc + 1, took);
  return best_c;
}
