/* Test harness: counters, a shared device context, and th_run_op, the one
 * procedure every op test goes through:
 *   1. random inputs (host, double) -> float device tensors with guard regions;
 *   2. device forward vs the plain-C double reference forward;
 *   3. device backward (gradients pre-filled with random values, to prove +=)
 *      vs the plain-C reference backward, for dout = R, a random projection;
 *   4. reference backward vs central finite differences in double of
 *      L(x) = sum(R * forward(x)) on a sample of input elements;
 *   guards around every device tensor must stay untouched; NaN/Inf fail.
 * Error metric everywhere: max_i |a_i - b_i| / max_i |b_i| (b = reference). */
#ifndef DB_TEST_HARNESS_H
#define DB_TEST_HARNESS_H
#include "../ops/ops.h"
#include "../models/params.h" /* th_param_fd_worst */
#include <math.h>
#include <stdio.h>
#include <string.h>

extern db_ctx *th_ctx;
/* DBLOCKS_TEST_SMALL=1 (set by make test-oclgrind): suites that honour it use
 * small shapes only, so they finish under an interpreter such as Oclgrind. */
extern int th_small;
/* 1 when the device is Oclgrind's simulator (set by the runner). */
extern int th_oclgrind;
void th_check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Expect db_fail with a message containing `needle` while running `stmt`. */
#define TH_EXPECT_ERROR(name, needle, ...)                                         \
  do {                                                                              \
    jmp_buf th_trap_;                                                               \
    volatile int th_failed_ = 0;                                                    \
    db_trap_errors(&th_trap_);                                                      \
    if (setjmp(th_trap_) == 0) { __VA_ARGS__; } else th_failed_ = 1;                       \
    db_trap_errors(NULL);                                                           \
    th_check(th_failed_ && strstr(db_last_error(), needle) != NULL, name,           \
             "expected an error containing \"%s\", got: %s", needle,                \
             th_failed_ ? db_last_error() : "no error");                            \
  } while (0)

#define TH_MAX 8
typedef struct th_op th_op;
struct th_op {
  const char *name;   /* op name, e.g. "layernorm" */
  char shape[80];     /* label, e.g. "N=7 C=33" */
  int n_in, n_out;
  size_t in_n[TH_MAX], out_n[TH_MAX];
  const char *in_name[TH_MAX], *out_name[TH_MAX];
  int in_diff[TH_MAX];  /* 1: gradient checked for this input */
  int in_int[TH_MAX];   /* >0: int32 index input with values in [0, in_int) */
  double in_lo[TH_MAX], in_hi[TH_MAX]; /* uniform range (default [-1,1]) */
  double tol_fwd, tol_bwd, tol_fd;     /* defaults 1e-4, 1e-4, 1e-6 */
  double fd_step;                      /* default 1e-5 */
  int fd_samples;                      /* elements per input; default 40 */
  int out_nondiff[TH_MAX];             /* 1: output excluded from the projection (e.g. saved stats) */
  /* optional: adjust random inputs (e.g. make weights positive, set -1 targets) */
  void (*init)(th_op *op, double **in);
  void (*ref_fwd)(th_op *op, double **in, double **out);
  /* din[i] += gradient for dout (only for in_diff inputs; others may be NULL) */
  void (*ref_bwd)(th_op *op, double **in, double **dout, double **din);
  void (*dev_fwd)(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out);
  void (*dev_bwd)(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din);
  void *cfg;          /* op-specific sizes and saved device tensors */
  db_arena *arena;    /* set by the harness: for saved/scratch tensors of dev_fwd/dev_bwd */
};
void th_op_init(th_op *op, const char *name); /* zero + defaults */
void th_add_in(th_op *op, const char *name, size_t n, int diff);
void th_add_out(th_op *op, const char *name, size_t n);
void th_run_op(th_op *op);

/* Errors and helpers for hand-written tests. */
double th_rel_err(const float *a, const double *ref, size_t n);
double th_rel_err_d(const double *a, const double *ref, size_t n);
void th_rand(double *x, size_t n, uint64_t seed, double lo, double hi);
/* A float32 tensor with guard regions; for tests that build tensors by hand. */
db_tensor th_tensor(db_arena *a, size_t n);
/* A one-element float tensor for an op that db_zero/db_fill-s it before a
 * kernel reads it (global_norm_squared's normsq): a th_tensor, except on
 * Oclgrind (unguarded, alone in its buffer: harness.c says why). */
db_tensor th_scalar(db_arena *a);
/* The guards of a th_tensor (or a th_scalar) are intact. */
int th_guards_ok(db_tensor t);
/* Uploads n elements (4 bytes each, float or int32) into a th_tensor together
 * with its guards, in one write of the whole buffer (why: harness.c). */
void th_upload(db_tensor t, const void *data);
void th_record(const char *op, const char *shape, double fwd, double bwd, double fd);
void th_print_table(void);
/* Runs `dblocks ARGS` (the binary in DBLOCKS_BIN, set by `make test`) with
 * stderr joined to stdout; returns its exit status, output in out. */
int th_cli_run(const char *args, char *out, size_t n);
/* th_check that it exits with want_rc, its output contains needle and (if
 * non-NULL) not absent; name: the check's label (NULL: built from the arguments). */
void th_cli_expect_as(const char *name, const char *args, int want_rc, const char *needle, const char *absent);
void th_cli_expect(const char *args, int want_rc, const char *needle);
/* Files of run directories: the whole file (NULL if absent; free it), byte equality, a copy. */
char *th_slurp(const char *path, size_t *n);
int th_same_file(const char *a, const char *b);
void th_copy_file(const char *from, const char *to);
/* A suite's temporary folder: TMPDIR/dblocks-TAG-XXXXXX (NULL and a failed
 * check if it cannot be made); th_tpath: a path inside it (4 rotating
 * buffers); th_tmpdir_remove: the folder and everything in it. */
const char *th_tmpdir_make(const char *tag);
const char *th_tpath(const char *rel);
void th_tmpdir_remove(void);

/* Forced row-reduction work-group sizes (db_force_row_group_size). The sizes
 * a reduction test runs at: 0 (the device's own choice: 1 on PoCL), then 64,
 * 256 and th_row_wg_max, those the device allows, without repeats; returns the
 * count (<= 4). kernels: NULL-terminated names in program file. */
int th_row_wg_sizes(const char *file, const char *const *kernels, size_t sizes[4]);
/* The largest power of two <= the device's CL_DEVICE_MAX_WORK_GROUP_SIZE and
 * every named kernel's CL_KERNEL_WORK_GROUP_SIZE. */
size_t th_row_wg_max(const char *file, const char *const *kernels);
/* " wg=64", or " wg=N(device)" for 0: for test labels. */
void th_wg_label(char *buf, size_t n, size_t wg);

/* A whole model's backward against finite differences: for every tensor of
 * ps, the directional derivative of loss() along a seeded random direction
 * (central differences at h and h/2, Richardson-extrapolated) against
 * <ps->g, direction>, which the caller's backward must have left in ps->g.
 * Returns the worst relative error (scale floored at 0.1: float32 forwards
 * leave ~1e-4 absolute noise) and its tensor's name in *worst_name. */
double th_param_fd_worst(param_set *ps, double (*loss)(void *u), void *u, const char **worst_name);

#endif
