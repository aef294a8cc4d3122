#include "frechet.h"
#include "../runtime/base.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void feature_stats(const float *x, int n, int d, double *mu, double *cov) {
  if (n < 2 || d <= 0) db_fail("feature_stats: need n >= 2 samples and d >= 1 features, got n=%d d=%d", n, d);
  memset(mu, 0, (size_t)d * sizeof *mu);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) mu[j] += x[(size_t)i * d + j];
  for (int j = 0; j < d; j++) mu[j] /= n;
  /* centred two-pass sums: no cancellation from E[x²] - E[x]² */
  memset(cov, 0, (size_t)d * d * sizeof *cov);
  double *c = db_malloc((size_t)d * sizeof *c);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < d; j++) c[j] = x[(size_t)i * d + j] - mu[j];
    for (int j = 0; j < d; j++) {
      double cj = c[j];
      double *row = cov + (size_t)j * d;
      for (int k = j; k < d; k++) row[k] += cj * c[k];
    }
  }
  for (int j = 0; j < d; j++)
    for (int k = j; k < d; k++) {
      double v = cov[(size_t)j * d + k] / (n - 1);
      cov[(size_t)j * d + k] = v;
      cov[(size_t)k * d + j] = v;
    }
  free(c);
}

/* Cyclic Jacobi: sweep over all (p,q) pairs, zeroing a[p][q] with a rotation,
 * until the off-diagonal mass is negligible against the diagonal. */
void sym_eigen(const double *a_in, int d, double *w, double *v) {
  size_t dd = (size_t)d * d;
  double *a = db_malloc(dd * sizeof *a);
  memcpy(a, a_in, dd * sizeof *a);
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++) { /* symmetrise what we were given */
      double s = 0.5 * (a[(size_t)i * d + j] + a[(size_t)j * d + i]);
      a[(size_t)i * d + j] = a[(size_t)j * d + i] = s;
    }
  memset(v, 0, dd * sizeof *v);
  for (int i = 0; i < d; i++) v[(size_t)i * d + i] = 1.0;
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0, diag = 0;
    for (int i = 0; i < d; i++) {
      diag += a[(size_t)i * d + i] * a[(size_t)i * d + i];
      for (int j = i + 1; j < d; j++) off += a[(size_t)i * d + j] * a[(size_t)i * d + j];
    }
    if (off == 0 || off <= 1e-30 * diag) break;
    for (int p = 0; p < d; p++)
      for (int q = p + 1; q < d; q++) {
        double apq = a[(size_t)p * d + q];
        if (apq == 0) continue;
        double app = a[(size_t)p * d + p], aqq = a[(size_t)q * d + q];
        /* t = tan(theta) of the rotation that zeroes a[p][q] (smaller root) */
        double theta = (aqq - app) / (2 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
        double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < d; k++) { /* columns p, q */
          double akp = a[(size_t)k * d + p], akq = a[(size_t)k * d + q];
          a[(size_t)k * d + p] = c * akp - s * akq;
          a[(size_t)k * d + q] = s * akp + c * akq;
        }
        for (int k = 0; k < d; k++) { /* rows p, q */
          double apk = a[(size_t)p * d + k], aqk = a[(size_t)q * d + k];
          a[(size_t)p * d + k] = c * apk - s * aqk;
          a[(size_t)q * d + k] = s * apk + c * aqk;
        }
        a[(size_t)p * d + q] = a[(size_t)q * d + p] = 0;
        for (int k = 0; k < d; k++) {
          double vkp = v[(size_t)k * d + p], vkq = v[(size_t)k * d + q];
          v[(size_t)k * d + p] = c * vkp - s * vkq;
          v[(size_t)k * d + q] = s * vkp + c * vkq;
        }
      }
  }
  for (int i = 0; i < d; i++) w[i] = a[(size_t)i * d + i];
  free(a);
}

double frechet_distance(const double *mu1, const double *cov1, const double *mu2, const double *cov2, int d) {
  if (d <= 0) db_fail("frechet_distance: dimension must be positive, got %d", d);
  size_t dd = (size_t)d * d;
  /* NaN or Inf anywhere: the distance is undefined. Say so with NaN -- never
   * let the clamp below (or Jacobi sweeps over NaNs) turn it into a number. */
  for (int i = 0; i < d; i++)
    if (!isfinite(mu1[i]) || !isfinite(mu2[i])) return NAN;
  for (size_t i = 0; i < dd; i++)
    if (!isfinite(cov1[i]) || !isfinite(cov2[i])) return NAN;
  double *w = db_malloc((size_t)d * sizeof *w), *v = db_malloc(dd * sizeof *v);
  double *r = db_malloc(dd * sizeof *r), *t = db_malloc(dd * sizeof *t), *m = db_malloc(dd * sizeof *m);
  double diff = 0, tr1 = 0, tr2 = 0;
  for (int i = 0; i < d; i++) {
    diff += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
    tr1 += cov1[(size_t)i * d + i];
    tr2 += cov2[(size_t)i * d + i];
  }
  /* r = S1^½ = V diag(sqrt(max(w,0))) V^T */
  sym_eigen(cov1, d, w, v);
  for (int k = 0; k < d; k++) w[k] = sqrt(w[k] > 0 ? w[k] : 0);
  for (int i = 0; i < d; i++)
    for (int j = i; j < d; j++) {
      double s = 0;
      for (int k = 0; k < d; k++) s += v[(size_t)i * d + k] * w[k] * v[(size_t)j * d + k];
      r[(size_t)i * d + j] = r[(size_t)j * d + i] = s;
    }
  /* m = r S2 r (symmetric PSD) */
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double s = 0;
      for (int k = 0; k < d; k++) s += r[(size_t)i * d + k] * cov2[(size_t)k * d + j];
      t[(size_t)i * d + j] = s;
    }
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double s = 0;
      for (int k = 0; k < d; k++) s += t[(size_t)i * d + k] * r[(size_t)k * d + j];
      m[(size_t)i * d + j] = s;
    }
  sym_eigen(m, d, w, v);
  double trsqrt = 0;
  for (int k = 0; k < d; k++) trsqrt += sqrt(w[k] > 0 ? w[k] : 0);
  free(w); free(v); free(r); free(t); free(m);
  double f = diff + tr1 + tr2 - 2 * trsqrt;
  /* clamp rounding below 0; a NaN (overflow of finite inputs) stays NaN */
  return f < 0 ? 0 : f;
}
