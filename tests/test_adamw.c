/* adamw: device AdamW (global-norm clipping on the device) against a plain-C
 * double reference over several steps, argument checks, and convergence on a
 * quadratic. */
#include "harness.h"
#include <stdlib.h>

#define NT 3
static const size_t sizes[NT] = {1, 7, 1001};
static const int decay[NT] = {1, 0, 1};

/* One reference AdamW step over all tensors, same formulas as cl/adamw.cl.
 * Returns the squared global norm of the (unclipped) gradients. */
static double ref_step(double **p, double **m, double **v, double **g, const size_t *n, const int *dec, int nt,
                       adamw_config c, int step) {
  double nsq = 0;
  for (int t = 0; t < nt; t++)
    for (size_t i = 0; i < n[t]; i++) nsq += g[t][i] * g[t][i];
  double norm = sqrt(nsq), s = 1;
  if (c.clip > 0 && norm > c.clip) s = c.clip / (norm + 1e-6);
  double bc1 = 1 - pow(c.beta1, step), bc2 = 1 - pow(c.beta2, step);
  for (int t = 0; t < nt; t++) {
    double wd = dec[t] ? c.weight_decay : 0;
    for (size_t i = 0; i < n[t]; i++) {
      double gi = s * g[t][i];
      m[t][i] = c.beta1 * m[t][i] + (1 - c.beta1) * gi;
      v[t][i] = c.beta2 * v[t][i] + (1 - c.beta2) * gi * gi;
      p[t][i] *= 1 - c.lr * wd;
      p[t][i] -= c.lr * (m[t][i] / bc1) / (sqrt(v[t][i] / bc2) + c.eps);
    }
  }
  return nsq;
}

static double err_of(db_tensor t, const double *ref, size_t n) {
  float *f = db_malloc(n * sizeof *f);
  db_download(th_ctx, t, f);
  double e = th_rel_err(f, ref, n);
  free(f);
  return e;
}

/* Tensors are th_tensors, written whole with th_upload (guards and data in
 * one write; harness.c says why); m and v start as uploaded zeros. */
static void upload_d(db_tensor t, const double *x, size_t n) {
  float *f = db_malloc(n * sizeof *f);
  for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
  th_upload(t, f);
  free(f);
}

/* Five steps on three tensors; expect_clipped: whether clip should trigger. */
static void run(const char *what, float clip, int expect_clipped) {
  char label[96], name[200];
  snprintf(label, sizeof label, "adamw 5 steps clip=%g (%s)", (double)clip, what);
  adamw_config c = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, clip};
  db_arena *a = db_arena_new(th_ctx, label);
  db_tensor P[NT], G[NT], M[NT], V[NT];
  double *p[NT], *m[NT], *v[NT], *g[NT];
  for (int t = 0; t < NT; t++) {
    size_t n = sizes[t];
    p[t] = db_malloc(n * sizeof(double));
    m[t] = db_calloc(n, sizeof(double));
    v[t] = db_calloc(n, sizeof(double));
    g[t] = db_malloc(n * sizeof(double));
    th_rand(p[t], n, 500 + (uint64_t)t, -1, 1);
    for (size_t i = 0; i < n; i++) p[t][i] = (float)p[t][i];
    P[t] = th_tensor(a, n);
    G[t] = th_tensor(a, n);
    M[t] = th_tensor(a, n);
    V[t] = th_tensor(a, n);
    upload_d(P[t], p[t], n);
    upload_d(M[t], m[t], n);
    upload_d(V[t], v[t], n);
  }
  db_tensor normsq = th_scalar(a); /* adamw_update's global_norm_squared zeroes it with a fill */
  double worst_p = 0, worst_mv = 0, worst_norm = 0;
  int clipped_ok = 1;
  for (int step = 1; step <= 5; step++) {
    for (int t = 0; t < NT; t++) {
      size_t n = sizes[t];
      th_rand(g[t], n, 900 + 10 * (uint64_t)step + (uint64_t)t, -1, 1);
      for (size_t i = 0; i < n; i++) g[t][i] = (float)g[t][i]; /* the reference sees the float grads */
      upload_d(G[t], g[t], n);
    }
    adamw_update(th_ctx, P, G, M, V, decay, NT, normsq, c, step);
    double nsq = ref_step(p, m, v, g, sizes, decay, NT, c, step);
    if ((c.clip > 0 && sqrt(nsq) > c.clip) != expect_clipped) clipped_ok = 0;
    double en = err_of(normsq, &nsq, 1);
    if (en > worst_norm) worst_norm = en;
    for (int t = 0; t < NT; t++) {
      double ep = err_of(P[t], p[t], sizes[t]);
      double em = err_of(M[t], m[t], sizes[t]), ev = err_of(V[t], v[t], sizes[t]);
      if (ep > worst_p) worst_p = ep;
      if (em > worst_mv) worst_mv = em;
      if (ev > worst_mv) worst_mv = ev;
    }
  }
  int guards = th_guards_ok(normsq);
  for (int t = 0; t < NT; t++)
    guards &= th_guards_ok(P[t]) && th_guards_ok(G[t]) && th_guards_ok(M[t]) && th_guards_ok(V[t]);
  snprintf(name, sizeof name, "%s: clipping %s as intended", label, expect_clipped ? "active" : "inactive");
  th_check(clipped_ok, name, "the reference norm did not fall on the intended side of clip=%g", (double)clip);
  snprintf(name, sizeof name, "%s: device norm^2 vs reference", label);
  th_check(worst_norm < 1e-5, name, "max rel err %.3e", worst_norm);
  snprintf(name, sizeof name, "%s: params vs reference", label);
  th_check(worst_p < 1e-5 && guards, name, "max rel err %.3e%s", worst_p, guards ? "" : ", guard region overwritten");
  snprintf(name, sizeof name, "%s: m, v vs reference", label);
  th_check(worst_mv < 1e-5, name, "max rel err %.3e", worst_mv);
  char shape[80];
  snprintf(shape, sizeof shape, "1,7,1001 x5 clip=%g", (double)clip);
  th_record("adamw", shape, worst_p > worst_mv ? worst_p : worst_mv, -1, -1);
  for (int t = 0; t < NT; t++) { free(p[t]); free(m[t]); free(v[t]); free(g[t]); }
  db_arena_free(a);
}

/* 200 steps on f(p) = sum (p - 3)^2 with host-computed gradients. */
static void quadratic(void) {
  const char *label = "adamw minimizes sum (p-3)^2 in 200 steps";
  enum { N = 5 };
  adamw_config c = {0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f};
  db_arena *a = db_arena_new(th_ctx, "quadratic");
  db_tensor P = th_tensor(a, N), G = th_tensor(a, N), M = th_tensor(a, N), V = th_tensor(a, N);
  db_tensor nsq = th_scalar(a);
  float p[N] = {-1.0f, 0.5f, 0.9f, -0.3f, 0.1f}, g[N], zero[N] = {0};
  int dec[1] = {0};
  th_upload(P, p);
  th_upload(M, zero);
  th_upload(V, zero);
  for (int step = 1; step <= 200; step++) {
    for (int i = 0; i < N; i++) g[i] = 2.0f * (p[i] - 3.0f);
    th_upload(G, g);
    adamw_update(th_ctx, &P, &G, &M, &V, dec, 1, nsq, c, step);
    db_download(th_ctx, P, p);
  }
  double worst = 0;
  for (int i = 0; i < N; i++)
    if (fabs(p[i] - 3.0) > worst) worst = fabs(p[i] - 3.0);
  th_check(worst < 1e-2, label, "max |p - 3| = %.3e after 200 steps", worst);
  db_arena_free(a);
}

/* gcc's -Wclobbered fires on TH_EXPECT_ERROR's th_failed_ (harness.h): a false
 * positive, the variable is not modified between setjmp and longjmp. */
static void expect_grad_size_error(void) {
  TH_EXPECT_ERROR("adamw rejects a grad of the wrong size", "adamw_update: tensor 1: grads has 6 elements", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor p[2] = {db_new(a, 1, 3, 0, 0, 0), db_new(a, 1, 7, 0, 0, 0)};
    db_tensor g[2] = {db_new(a, 1, 3, 0, 0, 0), db_new(a, 1, 6, 0, 0, 0)};
    db_tensor ns = db_new(a, 1, 1, 0, 0, 0);
    adamw_config c = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f};
    adamw_update(th_ctx, p, g, p, p, NULL, 2, ns, c, 1);
  });
}
static void expect_step0_error(void) {
  TH_EXPECT_ERROR("adamw rejects step 0", "adamw_update: step = 0", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor p = db_new(a, 1, 3, 0, 0, 0), ns = db_new(a, 1, 1, 0, 0, 0);
    adamw_config c = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f};
    adamw_update(th_ctx, &p, &p, &p, &p, NULL, 1, ns, c, 0);
  });
}


void tests_adamw(void) {
  /* grads uniform in [-1,1] over 1009 elements: global norm about 18 */
  run("clip disabled", 0.0f, 0);
  run("clip active", 1.0f, 1);
  run("clip inactive", 1000.0f, 0);
  quadratic();
  {
    expect_grad_size_error();
    expect_step0_error();
  }
}
