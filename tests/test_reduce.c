/* reduce: reduce_sum and reduce_sumsq_add against double references, guard
 * regions, bit-for-bit determinism, and that sumsq_add accumulates. */
#include "harness.h"
#include <stdlib.h>

static void run(size_t n, double lo, double hi, size_t wg) {
  char label[96], name[160], wl[32];
  th_wg_label(wl, sizeof wl, wg);
  snprintf(label, sizeof label, "reduce n=%zu x in [%g,%g]%s", n, lo, hi, wl);
  size_t prev = wg ? db_force_row_group_size(th_ctx, wg) : 0;
  db_arena *a = db_arena_new(th_ctx, label);
  double *x = db_malloc(n * sizeof *x);
  float *xf = db_malloc(n * sizeof *xf);
  th_rand(x, n, 7000 + n, lo, hi);
  double ref_sum = 0, ref_sq = 0;
  for (size_t i = 0; i < n; i++) {
    xf[i] = (float)x[i];
    ref_sum += (double)xf[i];
    ref_sq += (double)xf[i] * (double)xf[i];
  }
  db_tensor inp = th_tensor(a, n), out = th_tensor(a, 1), out2 = th_tensor(a, 1);
  th_upload(inp, xf);

  /* sum, twice: bit-identical */
  float s1, s2;
  reduce_sum(th_ctx, out, inp, n);
  db_download(th_ctx, out, &s1);
  reduce_sum(th_ctx, out2, inp, n);
  db_download(th_ctx, out2, &s2);
  double e_sum = th_rel_err(&s1, &ref_sum, 1);
  int guards = th_guards_ok(inp) && th_guards_ok(out) && th_guards_ok(out2);
  snprintf(name, sizeof name, "reduce_sum %s vs reference", label + 7);
  th_check(e_sum < 1e-5 && guards, name, "got %.9g, reference %.9g, rel err %.3e%s", (double)s1, ref_sum, e_sum,
           guards ? "" : ", guard region overwritten");
  snprintf(name, sizeof name, "reduce_sum %s deterministic", label + 7);
  th_check(memcmp(&s1, &s2, 4) == 0, name, "two runs gave %.9g and %.9g", (double)s1, (double)s2);

  /* sumsq_add onto a non-zero start value, twice from the same start: bit-identical */
  const float start = 2.5f;
  float q1, q2;
  th_upload(out, &start);
  reduce_sumsq_add(th_ctx, out, inp, n);
  db_download(th_ctx, out, &q1);
  th_upload(out2, &start);
  reduce_sumsq_add(th_ctx, out2, inp, n);
  db_download(th_ctx, out2, &q2);
  double ref_q = ref_sq + start;
  double e_sq = th_rel_err(&q1, &ref_q, 1);
  guards = th_guards_ok(inp) && th_guards_ok(out) && th_guards_ok(out2);
  snprintf(name, sizeof name, "reduce_sumsq_add %s adds to out", label + 7);
  th_check(e_sq < 1e-5 && guards, name, "got %.9g, reference %.9g (start %g), rel err %.3e%s", (double)q1, ref_q,
           (double)start, e_sq, guards ? "" : ", guard region overwritten");
  snprintf(name, sizeof name, "reduce_sumsq_add %s deterministic", label + 7);
  th_check(memcmp(&q1, &q2, 4) == 0, name, "two runs gave %.9g and %.9g", (double)q1, (double)q2);

  /* a second add doubles the reduced part */
  float q3;
  reduce_sumsq_add(th_ctx, out, inp, n);
  db_download(th_ctx, out, &q3);
  double ref_q3 = 2 * ref_sq + start;
  double e_sq3 = th_rel_err(&q3, &ref_q3, 1);
  snprintf(name, sizeof name, "reduce_sumsq_add %s accumulates twice", label + 7);
  th_check(e_sq3 < 1e-5, name, "got %.9g, reference %.9g, rel err %.3e", (double)q3, ref_q3, e_sq3);

  char shape[80];
  snprintf(shape, sizeof shape, "n=%zu [%g,%g]%s", n, lo, hi, wl);
  th_record("reduce_sum", shape, e_sum, -1, -1);
  th_record("reduce_sumsq_add", shape, e_sq > e_sq3 ? e_sq : e_sq3, -1, -1);
  free(x);
  free(xf);
  db_arena_free(a);
  if (wg) db_force_row_group_size(th_ctx, prev);
}

/* global_norm_squared (AdamW's clip) over tensors of 1, 7, 33 and 1000
 * elements (small: 300) against the double sum of squares, at forced size wg. */
static void run_global_norm(size_t wg) {
  char name[160], wl[32];
  th_wg_label(wl, sizeof wl, wg);
  size_t prev = wg ? db_force_row_group_size(th_ctx, wg) : 0;
  const size_t sizes[4] = {1, 7, 33, th_small ? 300 : 1000};
  db_arena *a = db_arena_new(th_ctx, "global norm");
  /* global_norm_squared starts with db_zero (a fill): th_scalar, not th_tensor */
  db_tensor grads[4], normsq = th_scalar(a);
  double ref = 0;
  for (int t = 0; t < 4; t++) {
    double *x = db_malloc(sizes[t] * sizeof *x);
    float *xf = db_malloc(sizes[t] * sizeof *xf);
    th_rand(x, sizes[t], 7100 + (uint64_t)t, -1, 1);
    for (size_t i = 0; i < sizes[t]; i++) {
      xf[i] = (float)x[i];
      ref += (double)xf[i] * xf[i];
    }
    grads[t] = th_tensor(a, sizes[t]);
    th_upload(grads[t], xf);
    free(x);
    free(xf);
  }
  float got;
  db_fill(th_ctx, normsq, 123.0f); /* overwritten, not added to */
  global_norm_squared(th_ctx, normsq, grads, 4);
  db_download(th_ctx, normsq, &got);
  double e = th_rel_err(&got, &ref, 1);
  snprintf(name, sizeof name, "global_norm_squared of 4 tensors (1..%zu elements)%s vs reference", sizes[3], wl);
  th_check(e < 1e-5 && th_guards_ok(normsq), name, "got %.9g, reference %.9g, rel err %.3e", (double)got, ref, e);
  db_arena_free(a);
  if (wg) db_force_row_group_size(th_ctx, prev);
}

/* gcc's -Wclobbered fires on TH_EXPECT_ERROR's th_failed_ (harness.h): a false
 * positive, the variable is not modified between setjmp and longjmp. */
static void expect_out_error(void) {
  TH_EXPECT_ERROR("reduce errors: reduce_sum rejects a 2-element out", "reduce_sum: argument out", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 1, 8, 0, 0, 0), o = db_new(a, 1, 2, 0, 0, 0);
    reduce_sum(th_ctx, o, x, 8);
  });
}
static void expect_n_error(void) {
  TH_EXPECT_ERROR("reduce errors: reduce_sumsq_add rejects a wrong n", "reduce_sumsq_add: argument inp", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 1, 8, 0, 0, 0), o = db_new(a, 1, 1, 0, 0, 0);
    reduce_sumsq_add(th_ctx, o, x, 9);
  });
}


/* Every size at the device's own work-group size and at the forced sizes
 * 64, 256 and the maximum (4096 on PoCL): n = 1 and 7 leave most of a group
 * idle, n = 2^20 + 3 fills the 256 partials with a ragged tail. */
void tests_reduce(void) {
  static const char *const kernels[] = {"reduce_partials", "reduce_final", NULL};
  size_t wg[4];
  int nwg = th_row_wg_sizes("reduce", kernels, wg);
  const size_t full[] = {1, 7, 1000, (1u << 20) + 3}, small[] = {1, 7, 33, 1000};
  const size_t *sizes = th_small ? small : full;
  for (int w = 0; w < nwg; w++) {
    for (int i = 0; i < 4; i++) run(sizes[i], -1, 2, wg[w]);
    run(1000, -1, 1, wg[w]);
    if (!th_small) run((1u << 20) + 3, -1, 1, wg[w]);
    run_global_norm(wg[w]);
  }
  {
    expect_out_error();
    expect_n_error();
  }
}
