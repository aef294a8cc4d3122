#include "harness.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/wait.h>

db_ctx *th_ctx;
int th_passed, th_failed;
const char *th_filter;
int th_small;
int th_oclgrind;


void th_check(int ok, const char *name, const char *fmt, ...) {
  if (ok) {
    th_passed++;
    printf("  ok    %s\n", name);
  } else {
    th_failed++;
    printf("  FAIL  %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
  }
  fflush(stdout);
}

/* ---- table of gradient-check errors, printed at the end */
typedef struct { char op[32], shape[80]; double fwd, bwd, fd; } th_row;
static th_row table[1024];
static int n_table;
void th_record(const char *op, const char *shape, double fwd, double bwd, double fd) {
  if (n_table == 1024) return;
  th_row *r = &table[n_table++];
  snprintf(r->op, sizeof r->op, "%s", op);
  snprintf(r->shape, sizeof r->shape, "%s", shape);
  r->fwd = fwd; r->bwd = bwd; r->fd = fd;
}
void th_print_table(void) {
  if (!n_table) return;
  printf("\n%-20s %-34s %12s %12s %12s\n", "op", "shape", "fwd dev/ref", "bwd dev/ref", "ref/finite-diff");
  for (int i = 0; i < n_table; i++) {
    printf("%-20s %-34s", table[i].op, table[i].shape);
    double v[3] = {table[i].fwd, table[i].bwd, table[i].fd};
    for (int k = 0; k < 3; k++) {
      if (v[k] < 0) printf(" %12s", "-");
      else printf(" %12.2e", v[k]);
    }
    printf("\n");
  }
  printf("(max |a-b| / max |b|, b the double-precision reference; composed rows: device backward vs finite\n"
         " differences of a double reference (layer) or of the device forward (block); - : not applicable)\n\n");
}

/* ---- random numbers: Philox, so tests are reproducible */
void th_rand(double *x, size_t n, uint64_t seed, double lo, double hi) {
  float *f = db_malloc(n * sizeof *f);
  db_rng_uniform_host(f, n, seed, 0, 0.0f, 1.0f);
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (double)f[i];
  free(f);
}

double th_rel_err(const float *a, const double *ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(a[i])) return INFINITY;
    double d = fabs((double)a[i] - ref[i]);
    if (d > num) num = d;
    if (fabs(ref[i]) > den) den = fabs(ref[i]);
  }
  return den > 0 ? num / den : num;
}
double th_rel_err_d(const double *a, const double *ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(a[i])) return INFINITY;
    double d = fabs(a[i] - ref[i]);
    if (d > num) num = d;
    if (fabs(ref[i]) > den) den = fabs(ref[i]);
  }
  return den > 0 ? num / den : num;
}

/* ---- guarded tensors: GUARD elements of a sentinel on each side. The op
 * sees a view starting at a non-zero offset, which also tests offsets. */
#define GUARD 67
static const float SENTINEL = -1234.5f;
/* Writes a guarded tensor's whole buffer, guards (sentinels) and data (NULL:
 * sentinels only) alike, in ONE host write from offset 0. Not db_fill + a
 * db_upload into the view: Oclgrind 21.10's --uninitialized checker loses the
 * initialized state of what clEnqueueFillBuffer or a clEnqueueWriteBuffer at
 * a non-zero offset wrote, and reports the kernel's reads of it as
 * uninitialized (proof: docs/testing.md, "Oclgrind"). Every device sees the
 * same bytes either way. */
static void write_whole(db_tensor t, const void *data) {
  size_t n = db_numel(t), total = n + 2 * GUARD;
  float *buf = db_malloc(total * sizeof *buf);
  for (size_t i = 0; i < total; i++) buf[i] = SENTINEL;
  if (data) memcpy(buf + GUARD, data, n * 4);
  CL_CHECK(clEnqueueWriteBuffer(th_ctx->queue, t.mem, CL_TRUE, t.offset - GUARD * 4, total * 4, buf, 0, NULL, NULL));
  free(buf);
}
void th_upload(db_tensor t, const void *data) { write_whole(t, data); }

db_tensor th_tensor(db_arena *a, size_t n) {
  db_tensor full = db_new(a, 1, (int)(n + 2 * GUARD), 0, 0, 0);
  int shape[1] = {(int)n};
  db_tensor t = db_view(full, GUARD, 1, shape);
  write_whole(t, NULL);
  return t;
}
static db_tensor th_tensor_i32(db_arena *a, size_t n) {
  int shape[1] = {(int)(n + 2 * GUARD)};
  db_tensor full = db_alloc(a, DB_I32, 1, shape);
  full.shape[0] = (int)n;
  full.offset += GUARD * 4;
  write_whole(full, NULL);
  return full;
}
/* One float for an op that clears it with db_fill/db_zero before a kernel
 * reads it. On Oclgrind: a buffer of exactly that float, at offset 0 -- the
 * one fill Oclgrind 21.10's --uninitialized checker records right (a fill is
 * a host store per element, and each host store replaces the buffer's whole
 * shadow state by that of the bytes it wrote: docs/testing.md). Oclgrind
 * checks every access against the buffer's bounds itself, so the guards are
 * not missed there. Elsewhere: a th_tensor. */
db_tensor th_scalar(db_arena *a) { return th_oclgrind ? db_new(a, 1, 1, 0, 0, 0) : th_tensor(a, 1); }

int th_guards_ok(db_tensor t) {
  size_t n = db_numel(t);
  if (t.offset < GUARD * 4) return th_oclgrind && n == 1; /* th_scalar on Oclgrind: no guards to check */
  float g[GUARD];
  for (int side = 0; side < 2; side++) {
    size_t off = side == 0 ? t.offset - GUARD * 4 : t.offset + n * 4;
    CL_CHECK(clEnqueueReadBuffer(th_ctx->queue, t.mem, CL_TRUE, off, sizeof g, g, 0, NULL, NULL));
    for (int i = 0; i < GUARD; i++)
      if (memcmp(&g[i], &SENTINEL, 4)) return 0;
  }
  return 1;
}

void th_op_init(th_op *op, const char *name) {
  memset(op, 0, sizeof *op);
  op->name = name;
  op->tol_fwd = 1e-4;
  op->tol_bwd = 1e-4;
  op->tol_fd = 1e-6;
  op->fd_step = 1e-5;
  op->fd_samples = 40;
}
void th_add_in(th_op *op, const char *name, size_t n, int diff) {
  int i = op->n_in++;
  op->in_name[i] = name;
  op->in_n[i] = n;
  op->in_diff[i] = diff;
  op->in_lo[i] = -1;
  op->in_hi[i] = 1;
}
void th_add_out(th_op *op, const char *name, size_t n) {
  int i = op->n_out++;
  op->out_name[i] = name;
  op->out_n[i] = n;
}

static double projected_loss(th_op *op, double **in, double **R) {
  double *out[TH_MAX];
  for (int o = 0; o < op->n_out; o++) out[o] = db_calloc(op->out_n[o], sizeof(double));
  op->ref_fwd(op, in, out);
  double L = 0;
  for (int o = 0; o < op->n_out; o++) {
    if (!op->out_nondiff[o])
      for (size_t i = 0; i < op->out_n[o]; i++) L += R[o][i] * out[o][i];
    free(out[o]);
  }
  return L;
}

static void to_float(const double *d, float *f, size_t n) { for (size_t i = 0; i < n; i++) f[i] = (float)d[i]; }

static void upload_input(th_op *op, int i, db_tensor t, const double *x) {
  size_t n = op->in_n[i];
  if (op->in_int[i]) {
    int *v = db_malloc(n * sizeof *v);
    for (size_t j = 0; j < n; j++) v[j] = (int)x[j];
    write_whole(t, v);
    free(v);
  } else {
    float *f = db_malloc(n * sizeof *f);
    to_float(x, f, n);
    write_whole(t, f);
    free(f);
  }
}

void th_run_op(th_op *op) {
  char label[160];
  snprintf(label, sizeof label, "%s %s", op->name, op->shape);
  uint64_t seed = 1000;
  for (const char *c = label; *c; c++) seed = seed * 31 + (unsigned char)*c;
  db_arena *arena = db_arena_new(th_ctx, label);
  op->arena = arena;

  /* 1. inputs */
  double *in[TH_MAX] = {0}, *R[TH_MAX] = {0}, *ref_out[TH_MAX] = {0}, *ref_din[TH_MAX] = {0};
  for (int i = 0; i < op->n_in; i++) {
    in[i] = db_malloc(op->in_n[i] * sizeof(double));
    if (op->in_int[i]) {
      th_rand(in[i], op->in_n[i], seed + (uint64_t)i, 0, op->in_int[i]);
      for (size_t j = 0; j < op->in_n[i]; j++) in[i][j] = floor(in[i][j]);
    } else
      th_rand(in[i], op->in_n[i], seed + (uint64_t)i, op->in_lo[i], op->in_hi[i]);
  }
  if (op->init) op->init(op, in);
  for (int o = 0; o < op->n_out; o++) {
    R[o] = db_malloc(op->out_n[o] * sizeof(double));
    th_rand(R[o], op->out_n[o], seed + 100 + (uint64_t)o, -1, 1);
    if (op->out_nondiff[o]) memset(R[o], 0, op->out_n[o] * sizeof(double));
    ref_out[o] = db_calloc(op->out_n[o], sizeof(double));
  }
  op->ref_fwd(op, in, ref_out);

  /* 2. device forward */
  db_tensor din_t[TH_MAX] = {0}, in_t[TH_MAX], out_t[TH_MAX], dout_t[TH_MAX];
  for (int i = 0; i < op->n_in; i++) {
    in_t[i] = op->in_int[i] ? th_tensor_i32(arena, op->in_n[i]) : th_tensor(arena, op->in_n[i]);
    upload_input(op, i, in_t[i], in[i]);
  }
  for (int o = 0; o < op->n_out; o++) out_t[o] = th_tensor(arena, op->out_n[o]);
  op->dev_fwd(op, th_ctx, in_t, out_t);
  double fwd_err = 0;
  int guards = 1;
  for (int o = 0; o < op->n_out; o++) {
    float *f = db_malloc(op->out_n[o] * sizeof *f);
    db_download(th_ctx, out_t[o], f);
    double e = th_rel_err(f, ref_out[o], op->out_n[o]);
    if (e > fwd_err) fwd_err = e;
    guards &= th_guards_ok(out_t[o]);
    free(f);
  }
  char name[240];
  snprintf(name, sizeof name, "%s forward vs reference", label);
  th_check(fwd_err <= op->tol_fwd && guards, name, "max rel err %.3e (tol %.1e)%s", fwd_err, op->tol_fwd,
           guards ? "" : ", guard region overwritten");

  /* 3. backward: reference, then device with pre-filled gradients */
  double bwd_err = 0, fd_err = 0;
  int any_diff = 0;
  for (int i = 0; i < op->n_in; i++) any_diff |= op->in_diff[i];
  if (any_diff && op->dev_bwd) {
    float *base[TH_MAX] = {0};
    for (int i = 0; i < op->n_in; i++) {
      if (!op->in_diff[i]) continue;
      ref_din[i] = db_calloc(op->in_n[i], sizeof(double));
      din_t[i] = th_tensor(arena, op->in_n[i]);
      double *b = db_malloc(op->in_n[i] * sizeof(double));
      th_rand(b, op->in_n[i], seed + 200 + (uint64_t)i, -0.5, 0.5);
      base[i] = db_malloc(op->in_n[i] * sizeof(float));
      to_float(b, base[i], op->in_n[i]);
      write_whole(din_t[i], base[i]);
      free(b);
    }
    op->ref_bwd(op, in, R, ref_din);
    for (int o = 0; o < op->n_out; o++) {
      dout_t[o] = th_tensor(arena, op->out_n[o]);
      float *f = db_malloc(op->out_n[o] * sizeof *f);
      to_float(R[o], f, op->out_n[o]);
      write_whole(dout_t[o], f);
      free(f);
    }
    op->dev_bwd(op, th_ctx, in_t, out_t, dout_t, din_t);
    for (int i = 0; i < op->n_in; i++) {
      if (!op->in_diff[i]) continue;
      size_t n = op->in_n[i];
      float *f = db_malloc(n * sizeof *f);
      db_download(th_ctx, din_t[i], f);
      for (size_t j = 0; j < n; j++) f[j] -= base[i][j]; /* what the op added */
      double e = th_rel_err(f, ref_din[i], n);
      if (e > bwd_err) bwd_err = e;
      guards &= th_guards_ok(din_t[i]);
      free(f);
      free(base[i]);
    }
    for (int i = 0; i < op->n_in; i++) guards &= th_guards_ok(in_t[i]);
    snprintf(name, sizeof name, "%s backward vs reference (accumulating)", label);
    th_check(bwd_err <= op->tol_bwd && guards, name, "max rel err %.3e (tol %.1e)%s", bwd_err, op->tol_bwd,
             guards ? "" : ", guard region overwritten");

    /* 4. reference backward vs central finite differences (double) */
    for (int i = 0; i < op->n_in; i++) {
      if (!op->in_diff[i]) continue;
      size_t n = op->in_n[i];
      int ns = (size_t)op->fd_samples < n ? op->fd_samples : (int)n;
      double *fd = db_malloc((size_t)ns * sizeof(double)), *an = db_malloc((size_t)ns * sizeof(double));
      double *pick = db_malloc((size_t)ns * sizeof(double));
      th_rand(pick, (size_t)ns, seed + 300 + (uint64_t)i, 0, (double)n);
      for (int s = 0; s < ns; s++) {
        size_t j = (ns == (int)n) ? (size_t)s : (size_t)pick[s];
        if (j >= n) j = n - 1;
        double x0 = in[i][j], h = op->fd_step * (fabs(x0) > 1 ? fabs(x0) : 1);
        in[i][j] = x0 + h;
        double lp = projected_loss(op, in, R);
        in[i][j] = x0 - h;
        double lm = projected_loss(op, in, R);
        in[i][j] = x0;
        fd[s] = (lp - lm) / (2 * h);
        an[s] = ref_din[i][j];
      }
      double e = th_rel_err_d(an, fd, (size_t)ns);
      if (e > fd_err) fd_err = e;
      free(fd); free(an); free(pick);
    }
    snprintf(name, sizeof name, "%s reference backward vs finite differences", label);
    th_check(fd_err <= op->tol_fd, name, "max rel err %.3e (tol %.1e)", fd_err, op->tol_fd);
  }
  th_record(op->name, op->shape, fwd_err, bwd_err, fd_err);

  for (int i = 0; i < op->n_in; i++) { free(in[i]); free(ref_din[i]); }
  for (int o = 0; o < op->n_out; o++) { free(R[o]); free(ref_out[o]); }
  db_arena_free(arena);
  op->arena = NULL;
}

/* ---------------------------------------------------------------- the command line */
int th_cli_run(const char *args, char *out, size_t n) {
  const char *bin = getenv("DBLOCKS_BIN");
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin ? bin : "build/dblocks", args);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t len = fread(out, 1, n - 1, p);
  out[len] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void th_cli_expect_as(const char *name, const char *args, int want_rc, const char *needle, const char *absent) {
  static char out[1 << 16];
  int rc = th_cli_run(args, out, sizeof out);
  char label[600];
  if (!name) {
    snprintf(label, sizeof label, "cli: dblocks %s -> exit %d, says \"%s\"", args, want_rc, needle);
    name = label;
  }
  th_check(rc == want_rc && strstr(out, needle) != NULL && !(absent && strstr(out, absent)), name,
           "exit %d, output:\n%s", rc, out);
}

void th_cli_expect(const char *args, int want_rc, const char *needle) { th_cli_expect_as(NULL, args, want_rc, needle, NULL); }

/* ---- forced work-group sizes of the row reductions */
static size_t kernel_max_wg(const char *file, const char *kernel) {
  cl_kernel k = db_kernel(th_ctx, file, kernel);
  size_t m = 0;
  CL_CHECK(clGetKernelWorkGroupInfo(k, th_ctx->dev.device, CL_KERNEL_WORK_GROUP_SIZE, sizeof m, &m, NULL));
  return m;
}

size_t th_row_wg_max(const char *file, const char *const *kernels) {
  size_t lim = th_ctx->dev.max_wg;
  for (int i = 0; kernels[i]; i++) {
    size_t k = kernel_max_wg(file, kernels[i]);
    if (k < lim) lim = k;
  }
  size_t p = 1;
  while (p * 2 <= lim) p *= 2;
  return p;
}

int th_row_wg_sizes(const char *file, const char *const *kernels, size_t sizes[4]) {
  size_t max = th_row_wg_max(file, kernels);
  const size_t want[3] = {64, 256, max};
  int n = 0;
  sizes[n++] = 0;
  for (int i = 0; i < 3; i++) {
    if (want[i] > max) continue;
    int dup = 0;
    for (int j = 1; j < n; j++) dup |= sizes[j] == want[i];
    if (!dup) sizes[n++] = want[i];
  }
  return n;
}

void th_wg_label(char *buf, size_t n, size_t wg) {
  if (wg) snprintf(buf, n, " wg=%zu", wg);
  else snprintf(buf, n, " wg=device-choice");
}

char *th_slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = db_malloc((size_t)(len > 0 ? len : 0) + 1);
  *n = fread(b, 1, (size_t)(len > 0 ? len : 0), f);
  b[*n] = 0; /* callers may search it as a string */
  fclose(f);
  return b;
}

int th_same_file(const char *a, const char *b) {
  size_t na, nb;
  char *x = th_slurp(a, &na), *y = th_slurp(b, &nb);
  int same = x && y && na == nb && !memcmp(x, y, na);
  free(x);
  free(y);
  return same;
}

void th_copy_file(const char *from, const char *to) {
  size_t n;
  char *x = th_slurp(from, &n);
  FILE *f = fopen(to, "wb");
  if (x && f) fwrite(x, 1, n, f);
  if (f) fclose(f);
  free(x);
}

/* ---- a suite's temporary folder */
static char tmp_root[256];

const char *th_tmpdir_make(const char *tag) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base || strlen(base) > 150) base = "/tmp";
  snprintf(tmp_root, sizeof tmp_root, "%s/dblocks-%s-XXXXXX", base, tag);
  if (!mkdtemp(tmp_root)) {
    th_check(0, "temporary directory", "mkdtemp %s failed", tmp_root);
    return NULL;
  }
  return tmp_root;
}

const char *th_tpath(const char *rel) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_root, rel);
  return buf[k];
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)flag; (void)ftw;
  return remove(p);
}

void th_tmpdir_remove(void) {
  if (tmp_root[0]) nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  tmp_root[0] = 0;
}

double th_param_fd_worst(param_set *ps, double (*loss)(void *u), void *u, const char **worst_name) {
  double worst = 0;
  *worst_name = "";
  for (int i = 0; i < ps->n; i++) {
    size_t m = db_numel(ps->p[i]);
    float *p0 = db_malloc(m * sizeof *p0), *v = db_malloc(m * sizeof *v), *g = db_malloc(m * sizeof *g),
          *pt = db_malloc(m * sizeof *pt);
    db_download(th_ctx, ps->p[i], p0);
    db_download(th_ctx, ps->g[i], g);
    db_rng_uniform_host(v, m, 1234, (uint64_t)i << 16, -1, 1);
    double an = 0;
    for (size_t j = 0; j < m; j++) an += (double)g[j] * v[j];
    double fdh[2];
    for (int k = 0; k < 2; k++) {
      double h = k ? 1e-2 : 2e-2;
      for (size_t j = 0; j < m; j++) pt[j] = p0[j] + (float)h * v[j];
      db_upload(th_ctx, ps->p[i], pt);
      double lp = loss(u);
      for (size_t j = 0; j < m; j++) pt[j] = p0[j] - (float)h * v[j];
      db_upload(th_ctx, ps->p[i], pt);
      double lm = loss(u);
      fdh[k] = (lp - lm) / (2 * h);
    }
    db_upload(th_ctx, ps->p[i], p0);
    double fd = (4 * fdh[1] - fdh[0]) / 3;
    double e = fabs(fd - an) / fmax(fabs(an), 0.1);
    if (e > worst) { worst = e; *worst_name = ps->names[i]; }
    if (getenv("TH_FD_VERBOSE")) printf("        %s: directional derivative %.6g, backward %.6g\n", ps->names[i], fd, an);
    free(p0); free(v); free(g); free(pt);
  }
  return worst;
}
