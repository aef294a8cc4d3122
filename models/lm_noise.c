/* The diffusion embedding and the equi-difficulty noise law (lm_noise.h). */
#include "lm_noise.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void lm_embedding_table(float *E, int V, int de, double sigma_data, uint64_t seed) {
  if (V < 1 || de < 1) db_fail("lm_embedding_table: V = %d and de = %d must be >= 1", V, de);
  if (!(sigma_data > 0 && isfinite(sigma_data)))
    db_fail("lm_embedding_table: sigma_data = %g must be positive and finite", sigma_data);
  size_t n = db_mul_size((size_t)V, (size_t)de, "lm_embedding_table");
  db_rng_normal_host(E, n, seed, 0);
  for (size_t i = 0; i < n; i++) E[i] = (float)(E[i] * sigma_data);
}

/* (0,1) from a 32-bit word, with 32 bits (never 0 or 1). */
#define LM_CURVE_KEY 0x6c6d5f6375727665ULL /* "lm_curve" */

static double u01_32(uint32_t w) { return ((double)w + 0.5) * (1.0 / 4294967296.0); }

void lm_entropy_curve_estimate(lm_entropy_curve *c, const float *E, int V, int de, const double *freq,
                               uint64_t seed, int samples, double sigma_lo, double sigma_hi) {
  if (V < 2 || de < 1) db_fail("lm_entropy_curve_estimate: V = %d must be >= 2 and de = %d >= 1", V, de);
  if (samples < 1) db_fail("lm_entropy_curve_estimate: samples = %d must be >= 1", samples);
  if (!(sigma_lo > 0 && sigma_hi > sigma_lo && isfinite(sigma_hi)))
    db_fail("lm_entropy_curve_estimate: the σ range [%g, %g] must satisfy 0 < lo < hi < inf", sigma_lo, sigma_hi);
  double total = 0;
  for (int v = 0; v < V; v++) {
    if (!(freq[v] >= 0 && isfinite(freq[v])))
      db_fail("lm_entropy_curve_estimate: freq[%d] = %g is not a non-negative number", v, freq[v]);
    total += freq[v];
  }
  if (!(total > 0)) db_fail("lm_entropy_curve_estimate: the byte frequencies sum to 0");
  /* the support: bytes that occur */
  int S = 0;
  int *sym = db_malloc(sizeof(int) * (size_t)V);
  for (int v = 0; v < V; v++)
    if (freq[v] > 0) sym[S++] = v;
  double *f = db_malloc(sizeof(double) * (size_t)S), *lf = db_malloc(sizeof(double) * (size_t)S);
  double *cdf = db_malloc(sizeof(double) * (size_t)S);
  double hmax = 0, acc = 0;
  for (int s = 0; s < S; s++) {
    f[s] = freq[sym[s]] / total;
    lf[s] = log(f[s]);
    hmax -= f[s] * lf[s];
    acc += f[s];
    cdf[s] = acc;
  }
  cdf[S - 1] = 1.0;
  if (S < 2) {
    free(sym); free(f); free(lf); free(cdf);
    db_fail("lm_entropy_curve_estimate: only one byte value occurs: its entropy is 0, there is nothing to spread");
  }
  double *Es = db_malloc(sizeof(double) * (size_t)S * (size_t)de);
  for (int s = 0; s < S; s++)
    for (int k = 0; k < de; k++) {
      double e = E[(size_t)sym[s] * (size_t)de + (size_t)k];
      if (!isfinite(e)) {
        int v = sym[s];
        free(sym); free(f); free(lf); free(cdf); free(Es);
        db_fail("lm_entropy_curve_estimate: E[%d][%d] is not finite", v, k);
      }
      Es[(size_t)s * de + k] = e;
    }
  double *D = db_malloc(sizeof(double) * (size_t)S * (size_t)S); /* |E_s - E_t|² */
  for (int s = 0; s < S; s++)
    for (int t = 0; t < S; t++) {
      double d = 0;
      for (int k = 0; k < de; k++) {
        double q = Es[(size_t)s * de + k] - Es[(size_t)t * de + k];
        d += q * q;
      }
      D[(size_t)s * S + t] = d;
    }
  const int n = LM_CURVE_N;
  c->n = n;
  c->h_max = hmax;
  double lo = log(sigma_lo), hi = log(sigma_hi);
  double inv2s2[LM_CURVE_N], invs[LM_CURVE_N], sum[LM_CURVE_N];
  for (int i = 0; i < n; i++) {
    c->sigma[i] = i == 0 ? sigma_lo : i == n - 1 ? sigma_hi : exp(lo + (hi - lo) * i / (n - 1));
    inv2s2[i] = 0.5 / (c->sigma[i] * c->sigma[i]);
    invs[i] = 1.0 / c->sigma[i];
    sum[i] = 0;
  }
  double *eps = db_malloc(sizeof(double) * (size_t)de), *G = db_malloc(sizeof(double) * (size_t)S);
  double *a = db_malloc(sizeof(double) * (size_t)S);
  /* draw j uses Philox counters j*K .. j*K+K-1 of key seed ^ LM_CURVE_KEY: word 0 stratifies x,
   * words 2.. are eps pairs. The key differs from the seed so that a caller passing the embedding's
   * seed does not draw eps from the very words that made E. */
  seed ^= LM_CURVE_KEY;
  const uint64_t K = (uint64_t)(2 + 2 * ((de + 1) / 2) + 3) / 4;
  uint32_t *w = db_malloc(sizeof(uint32_t) * 4 * (size_t)K);
  for (int j = 0; j < samples; j++) {
    for (uint64_t m = 0; m < K; m++) db_philox4x32(seed, (uint64_t)j * K + m, w + 4 * m);
    double q = ((double)j + u01_32(w[0])) / samples;
    int x = 0;
    while (x < S - 1 && cdf[x] <= q) x++;
    for (int k = 0; k < de; k += 2) { /* Box-Muller in double */
      double u1 = u01_32(w[2 + k]), u2 = u01_32(w[3 + k]);
      double r = sqrt(-2.0 * log(u1)), th = 6.283185307179586477 * u2;
      eps[k] = r * cos(th);
      if (k + 1 < de) eps[k + 1] = r * sin(th);
    }
    for (int t = 0; t < S; t++) {
      double g = 0;
      const double *e = Es + (size_t)t * de;
      for (int k = 0; k < de; k++) g += eps[k] * e[k];
      G[t] = g;
    }
    const double *Dx = D + (size_t)x * S;
    double g0 = G[x];
    for (int i = 0; i < n; i++) {
      /* -|z - E_t|²/(2σ²) up to a constant in t: z - E_t = (E_x - E_t) + σ eps */
      double m = -INFINITY;
      for (int t = 0; t < S; t++) {
        a[t] = lf[t] - Dx[t] * inv2s2[i] - (g0 - G[t]) * invs[i];
        if (a[t] > m) m = a[t];
      }
      double Z = 0, wa = 0;
      for (int t = 0; t < S; t++) {
        double d = a[t] - m;
        if (d < -60) continue; /* weight < 1e-26 */
        double e = exp(d);
        Z += e;
        wa += e * d;
      }
      sum[i] += log(Z) - wa / Z; /* H = -Σ p ln p, p = e^d / Z */
    }
  }
  /* a running max makes h monotone (the exact h is; the estimate may wobble by its noise) */
  double run = 0;
  for (int i = 0; i < n; i++) {
    double h = sum[i] / samples;
    if (h < 0) h = 0;
    if (h > hmax) h = hmax;
    if (h < run) h = run;
    run = h;
    c->h[i] = h;
  }
  free(sym); free(f); free(lf); free(cdf); free(Es); free(D); free(eps); free(G); free(a); free(w);
}

static void check_curve(const lm_entropy_curve *c, const char *fn) {
  if (!c || c->n < 2 || c->n > LM_CURVE_N || !(c->h_max > 0))
    db_fail("%s: not an estimated entropy curve (n = %d, h_max = %g)", fn, c ? c->n : 0, c ? c->h_max : 0.0);
}

/* σ where h = T (T within [h[0], h[n-1]]; clamped to the grid's ends outside). */
static double sigma_of_h(const lm_entropy_curve *c, double T) {
  int n = c->n, i = 0;
  while (i < n && c->h[i] < T) i++;
  if (i == 0) return c->sigma[0];
  if (i == n) return c->sigma[n - 1];
  double h0 = c->h[i - 1], h1 = c->h[i];
  double t = (T - h0) / (h1 - h0); /* h0 < T <= h1 */
  return exp(log(c->sigma[i - 1]) + t * (log(c->sigma[i]) - log(c->sigma[i - 1])));
}

double lm_curve_sigma_at(const lm_entropy_curve *c, double frac) {
  check_curve(c, "lm_curve_sigma_at");
  if (!(frac > 0 && frac < 1)) db_fail("lm_curve_sigma_at: frac = %g must lie in (0, 1)", frac);
  double T = frac * c->h_max;
  double tol = 1e-12 * c->h_max;
  if (T < c->h[0] - tol || T > c->h[c->n - 1] + tol)
    db_fail("lm_curve_sigma_at: frac %g is outside the curve's range [%g, %g] on σ in [%g, %g]: widen the σ range",
            frac, c->h[0] / c->h_max, c->h[c->n - 1] / c->h_max, c->sigma[0], c->sigma[c->n - 1]);
  return sigma_of_h(c, T);
}

double lm_curve_frac_at(const lm_entropy_curve *c, double sigma) {
  check_curve(c, "lm_curve_frac_at");
  if (!(sigma > 0)) db_fail("lm_curve_frac_at: σ = %g must be positive", sigma);
  int n = c->n;
  double h;
  if (sigma <= c->sigma[0]) h = c->h[0];
  else if (sigma >= c->sigma[n - 1]) h = c->h[n - 1];
  else {
    int lo = 0, hi = n - 1; /* sigma[lo] < σ < sigma[hi] */
    while (hi - lo > 1) {
      int mid = (lo + hi) / 2;
      if (c->sigma[mid] <= sigma) lo = mid;
      else hi = mid;
    }
    double t = (log(sigma) - log(c->sigma[lo])) / (log(c->sigma[hi]) - log(c->sigma[lo]));
    h = c->h[lo] + t * (c->h[hi] - c->h[lo]);
  }
  double f = h / c->h_max;
  return f < 0 ? 0 : f > 1 ? 1 : f;
}

void lm_partition_equidiff(const lm_entropy_curve *c, int B, double f_lo, double f_hi, double *bounds) {
  check_curve(c, "lm_partition_equidiff");
  if (B < 1) db_fail("lm_partition_equidiff: B = %d must be >= 1", B);
  if (!(f_lo > 0 && f_hi > f_lo && f_hi < 1))
    db_fail("lm_partition_equidiff: the frac range [%g, %g] must satisfy 0 < f_lo < f_hi < 1", f_lo, f_hi);
  for (int k = 0; k <= B; k++) {
    double f = k == B ? f_hi : f_lo + (f_hi - f_lo) * k / B;
    bounds[k] = lm_curve_sigma_at(c, f);
  }
}

double lm_sample_sigma_equidiff(const lm_entropy_curve *c, double lo, double hi, double u01) {
  check_curve(c, "lm_sample_sigma_equidiff");
  if (!(lo > 0 && hi >= lo && isfinite(hi)))
    db_fail("lm_sample_sigma_equidiff: the range [%g, %g] must satisfy 0 < lo <= hi < inf", lo, hi);
  if (!(u01 >= 0 && u01 <= 1)) db_fail("lm_sample_sigma_equidiff: u01 = %g must lie in [0, 1]", u01);
  double a = lm_curve_frac_at(c, lo), b = lm_curve_frac_at(c, hi);
  double s = sigma_of_h(c, (a + u01 * (b - a)) * c->h_max);
  return s < lo ? lo : s > hi ? hi : s;
}
