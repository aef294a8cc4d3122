/* The language model's diffusion space and noise law (models/lm_noise.c): the
 * fixed embedding table (std, determinism, the device RNG's stream); the
 * entropy curve h(σ) (limits, monotone, determinism, a two-symbol case against
 * quadrature); sigma_at / frac_at as inverses; the equi-difficulty partition and
 * sampler (a Kolmogorov-Smirnov test shown able to fail); argument errors; and
 * the KJV curve of docs/lm_data.md (de 64, σ_data 0.5), printed. */
#include "harness.h"
#include "../data/text.h"
#include "../models/lm_noise.h"
#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* KS distance of sorted x against the uniform law on [a, b] */
static double ks_uniform(const double *x, int n, double a, double b) {
  double d = 0;
  for (int i = 0; i < n; i++) {
    double F = (x[i] - a) / (b - a);
    F = F < 0 ? 0 : F > 1 ? 1 : F;
    double d1 = F - (double)i / n, d2 = (double)(i + 1) / n - F;
    if (d1 > d) d = d1;
    if (d2 > d) d = d2;
  }
  return d;
}

static void test_embedding(void) {
  const int V = 256, de = 64;
  float *E = db_malloc(sizeof(float) * V * de), *E2 = db_malloc(sizeof(float) * V * de);
  float *R = db_malloc(sizeof(float) * V * de);
  lm_embedding_table(E, V, de, 0.5, 11);
  lm_embedding_table(E2, V, de, 0.5, 11);
  db_rng_normal_host(R, (size_t)V * de, 11, 0);
  int same = !memcmp(E, E2, sizeof(float) * V * de), stream = 1;
  for (int i = 0; i < V * de; i++) stream &= E[i] == (float)(R[i] * 0.5);
  lm_embedding_table(E2, V, de, 0.5, 12);
  int differ = memcmp(E, E2, sizeof(float) * V * de) != 0;
  th_check(same && stream && differ, "lm_noise: embedding is deterministic, 0.5 x the Philox normal stream, seed "
           "changes it", "same %d, stream %d, other seed differs %d", same, stream, differ);
  double all = 0, lo = 1e9, hi = 0, mean_max = 0;
  for (int k = 0; k < de; k++) {
    double s = 0, s2 = 0;
    for (int v = 0; v < V; v++) { s += E[v * de + k]; s2 += (double)E[v * de + k] * E[v * de + k]; }
    double m = s / V, sd = sqrt(s2 / V - m * m);
    all += s2;
    if (sd < lo) lo = sd;
    if (sd > hi) hi = sd;
    if (fabs(m) > mean_max) mean_max = fabs(m);
  }
  double sd_all = sqrt(all / (V * de));
  /* per-dimension std of 256 normals: 0.5 ± 0.022 (1 s.e.); overall ± 0.0028 */
  th_check(fabs(sd_all - 0.5) < 0.015 && lo > 0.4 && hi < 0.6 && mean_max < 0.2,
           "lm_noise: embedding per-dimension std ~ sigma_data 0.5 (V 256, de 64)",
           "overall %.4f, per dimension %.4f..%.4f, |mean| <= %.4f", sd_all, lo, hi, mean_max);
  free(E);
  free(E2);
  free(R);
}

/* E[H(x|z)] for x in {-a, +a} (prob p0, p1), z = x + σ ε, by Simpson's rule */
static double two_symbol_h(double a, double p0, double sigma) {
  double p1 = 1 - p0, L0 = log(p1 / p0), lo = -a - 12 * sigma, hi = a + 12 * sigma;
  int m = 20000;
  double hstep = (hi - lo) / m, acc = 0;
  for (int i = 0; i <= m; i++) {
    double z = lo + i * hstep;
    double dens = (p0 * exp(-(z + a) * (z + a) / (2 * sigma * sigma)) + p1 * exp(-(z - a) * (z - a) / (2 * sigma * sigma))) /
                  (sigma * sqrt(2 * M_PI));
    double L = L0 + 2 * a * z / (sigma * sigma); /* log-odds of +a */
    double q = 1 / (1 + exp(-fabs(L)));        /* the larger posterior */
    double H = -q * log(q) - (1 - q > 0 ? (1 - q) * log(1 - q) : 0);
    double wgt = (i == 0 || i == m) ? 1 : (i % 2 ? 4 : 2);
    acc += wgt * dens * H;
  }
  return acc * hstep / 3;
}

static void test_two_symbol(void) {
  const float E[2] = {-1.0f, 1.0f};
  const double freq[2] = {0.3, 0.7};
  const int samples = 200000;
  lm_entropy_curve c;
  lm_entropy_curve_estimate(&c, E, 2, 1, freq, 3, samples, 0.05, 50);
  double hmax = -(0.3 * log(0.3) + 0.7 * log(0.7)), worst = 0, at = 0;
  for (int i = 0; i < c.n; i++) {
    double r = two_symbol_h(1.0, 0.3, c.sigma[i]), e = fabs(c.h[i] - r);
    if (e > worst) { worst = e; at = c.sigma[i]; }
  }
  /* per-draw H lies in [0, ln 2]: one s.e. <= 0.35/sqrt(200000) = 8e-4 */
  th_check(fabs(c.h_max - hmax) < 1e-15 && worst < 4e-3,
           "lm_noise: two symbols at ±1 (p 0.3/0.7, de 1): h(σ) matches quadrature within 4e-3 nats on σ in [0.05, 50]",
           "h_max %.15g vs %.15g, worst |Δh| %.2e at σ %.3g", c.h_max, hmax, worst, at);
  th_check(c.sigma[0] == 0.05 && c.sigma[c.n - 1] == 50 && c.n == LM_CURVE_N &&
               fabs(c.sigma[1] / c.sigma[0] - c.sigma[c.n - 1] / c.sigma[c.n - 2]) < 1e-12,
           "lm_noise: the curve's grid is log-spaced from sigma_lo to sigma_hi exactly", "%g..%g, n %d", c.sigma[0],
           c.sigma[c.n - 1], c.n);
}

static void test_curve(const double *freq, const char *label) {
  const int V = 256, de = 64, samples = 4096;
  float *E = db_malloc(sizeof(float) * V * de);
  lm_embedding_table(E, V, de, 0.5, 0);
  lm_entropy_curve c, c2, c3;
  double t0 = db_now();
  lm_entropy_curve_estimate(&c, E, V, de, freq, 1, samples, 0.01, 1000);
  double dt = db_now() - t0;
  lm_entropy_curve_estimate(&c2, E, V, de, freq, 1, samples, 0.01, 1000);
  lm_entropy_curve_estimate(&c3, E, V, de, freq, 2, samples, 0.01, 1000);
  double hmax = 0;
  for (int v = 0; v < V; v++)
    if (freq[v] > 0) hmax -= freq[v] * log(freq[v]);
  int mono = 1;
  for (int i = 1; i < c.n; i++) mono &= c.h[i] >= c.h[i - 1];
  char name[200];
  snprintf(name, sizeof name, "lm_noise: %s curve: h(0.01) ~ 0, h(1000) ~ h_max, monotone, h_max the unigram entropy",
           label);
  th_check(c.h[0] < 1e-9 && c.h[c.n - 1] > 0.999 * c.h_max && mono && fabs(c.h_max - hmax) < 1e-12 * hmax, name,
           "h %.3g .. %.6g of %.6g, monotone %d", c.h[0], c.h[c.n - 1], c.h_max, mono);
  double dmax = 0;
  for (int i = 0; i < c.n; i++)
    if (fabs(c.h[i] - c3.h[i]) > dmax) dmax = fabs(c.h[i] - c3.h[i]);
  snprintf(name, sizeof name, "lm_noise: %s curve deterministic for a seed; another seed within 0.05 nats", label);
  int same = c.n == c2.n && c.h_max == c2.h_max && !memcmp(c.sigma, c2.sigma, sizeof c.sigma) &&
             !memcmp(c.h, c2.h, sizeof c.h);
  th_check(same && dmax < 0.05, name, "max |Δh| between seeds %.4f nats", dmax);
  snprintf(name, sizeof name, "lm_noise: %s curve, 96 σ x %d samples, in under 5 s (%.2f s here)", label, samples, dt);
  th_check(dt < 5, name, "%.2f s", dt);

  /* inverse functions */
  double worst_f = 0, worst_s = 0;
  for (int k = 1; k < 100; k++) {
    double f = k / 100.0, s = lm_curve_sigma_at(&c, f), e = fabs(lm_curve_frac_at(&c, s) - f);
    if (e > worst_f) worst_f = e;
  }
  for (int i = 1; i + 1 < c.n; i++) /* grid points on strictly rising stretches, and midpoints */
    if (c.h[i] > c.h[i - 1] && c.h[i + 1] > c.h[i] && c.h[i] > 0.001 * c.h_max) {
      double s = sqrt(c.sigma[i] * c.sigma[i + 1]);
      double e = fabs(lm_curve_sigma_at(&c, lm_curve_frac_at(&c, s)) / s - 1);
      double e2 = fabs(lm_curve_sigma_at(&c, lm_curve_frac_at(&c, c.sigma[i])) / c.sigma[i] - 1);
      if (e > worst_s) worst_s = e;
      if (e2 > worst_s) worst_s = e2;
    }
  snprintf(name, sizeof name, "lm_noise: %s: frac_at(sigma_at(f)) = f and sigma_at(frac_at(σ)) = σ", label);
  th_check(worst_f < 1e-12 && worst_s < 1e-9, name, "worst %.2e in frac, %.2e relative in σ", worst_f, worst_s);
  th_check(lm_curve_frac_at(&c, 1e-6) == c.h[0] / c.h_max && lm_curve_frac_at(&c, 1e6) == c.h[c.n - 1] / c.h_max,
           "lm_noise: frac_at clamps to the grid's ends", "%g %g", lm_curve_frac_at(&c, 1e-6), lm_curve_frac_at(&c, 1e6));

  /* partition */
  double b[5];
  lm_partition_equidiff(&c, 4, 0.01, 0.99, b);
  int asc = 1;
  double share_err = 0;
  for (int k = 0; k <= 4; k++) {
    if (k) asc &= b[k] > b[k - 1];
    double e = fabs(lm_curve_frac_at(&c, b[k]) - (0.01 + 0.98 * k / 4));
    if (e > share_err) share_err = e;
  }
  snprintf(name, sizeof name, "lm_noise: %s: B = 4 equi-difficulty bounds ascending with equal frac shares of 0.245",
           label);
  th_check(asc && share_err < 1e-12 && b[0] == lm_curve_sigma_at(&c, 0.01) && b[4] == lm_curve_sigma_at(&c, 0.99), name,
           "bounds %.4g %.4g %.4g %.4g %.4g, worst share error %.2e", b[0], b[1], b[2], b[3], b[4], share_err);

  /* sampler: block 1 of 4 (second-highest noise), overlap-like range [b[2]/1.2, b[3]*1.2] */
  const int n = 20000;
  double lo = b[2] / 1.2, hi = b[3] * 1.2, fa = lm_curve_frac_at(&c, lo), fb = lm_curve_frac_at(&c, hi);
  double *fr = db_malloc(sizeof(double) * n), *frl = db_malloc(sizeof(double) * n);
  int inside = 1, monot = 1;
  double prev = 0;
  for (int i = 0; i < n; i++) {
    uint32_t w[4];
    db_philox4x32(9, (uint64_t)i, w);
    double u = db_u01(w[0]);
    double s = lm_sample_sigma_equidiff(&c, lo, hi, u);
    inside &= s >= lo && s <= hi;
    fr[i] = lm_curve_frac_at(&c, s);
    /* a log-uniform σ on the same range: its frac is not uniform */
    frl[i] = lm_curve_frac_at(&c, exp(log(lo) + u * (log(hi) - log(lo))));
  }
  for (int i = 0; i <= 1000; i++) {
    double s = lm_sample_sigma_equidiff(&c, lo, hi, i / 1000.0);
    if (i) monot &= s >= prev;
    inside &= s >= lo && s <= hi;
    prev = s;
  }
  qsort(fr, n, sizeof *fr, cmp_double);
  qsort(frl, n, sizeof *frl, cmp_double);
  double D = ks_uniform(fr, n, fa, fb), Dl = ks_uniform(frl, n, fa, fb), crit = 1.63 / sqrt(n); /* 1 % level */
  snprintf(name, sizeof name, "lm_noise: %s: sampled σ in [lo, hi], monotone in u01, h-fraction uniform (KS at 1 %%)",
           label);
  th_check(inside && monot && D < crit, name, "inside %d, monotone %d, KS D %.4f (critical %.4f)", inside, monot, D,
           crit);
  snprintf(name, sizeof name, "lm_noise: %s: the KS check rejects a log-uniform σ on the same range", label);
  th_check(Dl > 3 * crit, name, "KS D %.4f (critical %.4f)", Dl, crit);
  free(fr);
  free(frl);
  free(E);
}

static void test_errors(void) {
  const float E[2] = {-1.0f, 1.0f};
  const double one[2] = {1, 0}, two[2] = {0.5, 0.5};
  lm_entropy_curve c;
  float T[4];
  TH_EXPECT_ERROR("lm_noise: a single byte value is an error", "only one byte value",
                  lm_entropy_curve_estimate(&c, E, 2, 1, one, 1, 10, 0.1, 10));
  TH_EXPECT_ERROR("lm_noise: sigma_lo >= sigma_hi is an error", "σ range",
                  lm_entropy_curve_estimate(&c, E, 2, 1, two, 1, 10, 10, 10));
  TH_EXPECT_ERROR("lm_noise: samples 0 is an error", "samples", lm_entropy_curve_estimate(&c, E, 2, 1, two, 1, 0, 0.1, 10));
  TH_EXPECT_ERROR("lm_noise: sigma_data 0 is an error", "sigma_data", lm_embedding_table(T, 2, 2, 0, 1));
  const float Enan[2] = {NAN, 1.0f};
  TH_EXPECT_ERROR("lm_noise: a non-finite embedding entry is an error naming it", "E[0][0] is not finite",
                  lm_entropy_curve_estimate(&c, Enan, 2, 1, two, 1, 10, 0.1, 10));
  lm_entropy_curve_estimate(&c, E, 2, 1, two, 1, 1000, 0.5, 2); /* too narrow for frac 0.01 and 0.99 */
  TH_EXPECT_ERROR("lm_noise: frac 0 is an error", "(0, 1)", lm_curve_sigma_at(&c, 0));
  TH_EXPECT_ERROR("lm_noise: frac 1 is an error", "(0, 1)", lm_curve_sigma_at(&c, 1));
  TH_EXPECT_ERROR("lm_noise: a frac beyond the curve's σ range is an error", "widen", lm_curve_sigma_at(&c, 0.99));
  double b[3];
  TH_EXPECT_ERROR("lm_noise: B 0 is an error", "B = 0", lm_partition_equidiff(&c, 0, 0.3, 0.6, b));
  TH_EXPECT_ERROR("lm_noise: f_lo >= f_hi is an error", "f_lo", lm_partition_equidiff(&c, 2, 0.6, 0.6, b));
  TH_EXPECT_ERROR("lm_noise: u01 outside [0, 1] is an error", "u01", lm_sample_sigma_equidiff(&c, 0.6, 1, 1.5));
  TH_EXPECT_ERROR("lm_noise: an empty curve is an error", "not an estimated",
                  lm_curve_frac_at(&(lm_entropy_curve){0}, 1.0));
}

void tests_lm_noise(void) {
  test_embedding();
  test_two_symbol();
  test_errors();
  /* a Zipf-like 64-symbol law, independent of any corpus */
  double zipf[256] = {0}, z = 0;
  for (int v = 0; v < 64; v++) z += zipf[32 + v] = 1.0 / (v + 1);
  for (int v = 0; v < 64; v++) zipf[32 + v] /= z;
  test_curve(zipf, "Zipf-64");
  /* the KJV curve of docs/lm_data.md */
  text_corpus kjv;
  jmp_buf trap;
  volatile int ok = 0;
  db_trap_errors(&trap);
  if (setjmp(trap) == 0) {
    text_corpus_kjv(&kjv);
    ok = 1;
  }
  db_trap_errors(NULL);
  if (!ok) { th_check(0, "lm_noise: the KJV corpus", "%s", db_last_error()); return; }
  double freq[256];
  text_byte_freq(kjv.train, kjv.n_train, freq);
  test_curve(freq, "KJV train");
  float *E = db_malloc(sizeof(float) * 256 * 64);
  lm_embedding_table(E, 256, 64, 0.5, 0x5eed);
  lm_entropy_curve c;
  lm_entropy_curve_estimate(&c, E, 256, 64, freq, 0x5eed, 16384, 0.01, 1000);
  const double fr[5] = {0.01, 0.25, 0.5, 0.75, 0.99};
  printf("  KJV train curve (de 64, sigma_data 0.5, seeds 0x5eed, 16384 samples): unigram entropy %.4f nats "
         "= %.4f bits/byte\n  ",
         c.h_max, c.h_max / log(2));
  for (int k = 0; k < 5; k++) printf("σ(%.2f) = %.4g%s", fr[k], lm_curve_sigma_at(&c, fr[k]), k < 4 ? ", " : "\n");
  free(E);
  text_corpus_free(&kjv);
}
