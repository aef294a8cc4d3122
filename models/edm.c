/* EDM noise levels and the DiffusionBlocks noise partition (see edm.h). */
#include "edm.h"
#include <float.h>
#include <math.h>

#define LN_SQRT_2PI 0.91893853320467274178 /* ln √(2π) */

edm_config edm_default(void) {
  edm_config e = {-1.2, 1.2, 0.002, 80.0, 0.5};
  return e;
}

static void check_config(edm_config e, const char *fn) {
  if (!(isfinite(e.p_mean) && isfinite(e.p_std) && e.p_std > 0))
    db_fail("%s: EDM config needs a finite P_mean and P_std > 0 (got P_mean %g, P_std %g)", fn, e.p_mean, e.p_std);
  if (!(e.sigma_min > 0 && e.sigma_max > e.sigma_min && isfinite(e.sigma_max)))
    db_fail("%s: EDM config needs 0 < sigma_min < sigma_max < inf (got sigma_min %g, sigma_max %g)", fn,
            e.sigma_min, e.sigma_max);
  if (!(e.sigma_data > 0 && isfinite(e.sigma_data)))
    db_fail("%s: EDM config needs sigma_data > 0 (got %g)", fn, e.sigma_data);
}

static void check_sigma(double sigma, const char *fn) {
  if (!(sigma > 0 && isfinite(sigma))) db_fail("%s: sigma must be finite and > 0 (got %g)", fn, sigma);
}

edm_precond edm_preconditioning(edm_config e, double sigma) {
  check_config(e, "edm_preconditioning");
  check_sigma(sigma, "edm_preconditioning");
  double sd = e.sigma_data, s2 = sigma * sigma + sd * sd, r = sqrt(s2);
  edm_precond p;
  p.c_skip = sd * sd / s2;
  p.c_out = sigma * sd / r;
  p.c_in = 1.0 / r;
  p.c_noise = 0.25 * log(sigma);
  return p;
}

double edm_loss_weight(edm_config e, double sigma) {
  check_config(e, "edm_loss_weight");
  check_sigma(sigma, "edm_loss_weight");
  double sd = e.sigma_data, ss = sigma * sd;
  return (sigma * sigma + sd * sd) / (ss * ss);
}

/* ------------------------------------------------------------ normal law */
double edm_norm_cdf(double x) { return 0.5 * erfc(-x * M_SQRT1_2); }

/* Acklam's approximation (relative error < 1.15e-9) for p in (0, 0.5]. */
static double acklam_lower(double p) {
  static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                              1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                              6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                              -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                              3.754408661907416e+00};
  if (p < 0.02425) {
    double q = sqrt(-2.0 * log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  }
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

double edm_norm_ppf(double p) {
  if (!(p > 0 && p < 1)) db_fail("edm_norm_ppf: p must lie in the open interval (0, 1) (got %.17g)", p);
  if (p > 0.5) return -edm_norm_ppf(1.0 - p); /* 1 - p is exact for p in [0.5, 1] */
  if (p == 0.5) return 0.0;
  double x = acklam_lower(p);
  /* One Halley step on f(x) = Φ(x) - p: u = f/φ(x), x -= u / (1 + x u / 2).
   * f/φ is formed as (f/p)·(p/φ) with p/φ = exp(ln p + x²/2 + ln√(2π)),
   * which neither overflows nor underflows, even for subnormal p. */
  double f = edm_norm_cdf(x) - p;
  double u = (f / p) * exp(log(p) + 0.5 * x * x + LN_SQRT_2PI);
  if (isfinite(u)) x -= u / (1.0 + 0.5 * x * u);
  return x;
}

/* ------------------------------------------------------------ partition */
void edm_partition(edm_config e, int B, edm_partition_kind kind, double *bounds) {
  check_config(e, "edm_partition");
  if (B < 1) db_fail("edm_partition: the number of blocks B must be >= 1 (got %d)", B);
  if (!bounds) db_fail("edm_partition: bounds is NULL (needs B+1 = %d doubles)", B + 1);
  if (kind == EDM_PARTITION_EQUIPROB) {
    double q_min = edm_norm_cdf((log(e.sigma_min) - e.p_mean) / e.p_std);
    double q_max = edm_norm_cdf((log(e.sigma_max) - e.p_mean) / e.p_std);
    if (!(q_max > q_min))
      db_fail("edm_partition: [sigma_min, sigma_max] = [%g, %g] has no probability mass under ln sigma ~ "
              "N(%g, %g^2) in double precision; use the uniform partition",
              e.sigma_min, e.sigma_max, e.p_mean, e.p_std);
    for (int k = 1; k < B; k++) {
      double q = q_min + (q_max - q_min) * (double)k / B;
      bounds[k] = exp(e.p_mean + e.p_std * edm_norm_ppf(q));
    }
  } else if (kind == EDM_PARTITION_UNIFORM) {
    double l0 = log(e.sigma_min), l1 = log(e.sigma_max);
    for (int k = 1; k < B; k++) bounds[k] = exp(l0 + (l1 - l0) * (double)k / B);
  } else {
    db_fail("edm_partition: unknown partition kind %d (EDM_PARTITION_EQUIPROB = 0, EDM_PARTITION_UNIFORM = 1)",
            (int)kind);
  }
  bounds[0] = e.sigma_min;
  bounds[B] = e.sigma_max;
  for (int k = 0; k < B; k++)
    if (!(bounds[k] < bounds[k + 1]))
      db_fail("edm_partition: boundaries are not strictly ascending at k = %d (%g, %g): B = %d is too large for "
              "double precision",
              k, bounds[k], bounds[k + 1], B);
}

static void check_bounds(const double *bounds, int B, const char *fn) {
  if (B < 1) db_fail("%s: the number of blocks B must be >= 1 (got %d)", fn, B);
  if (!bounds) db_fail("%s: bounds is NULL", fn);
  if (!(bounds[0] > 0)) db_fail("%s: bounds[0] must be > 0 (got %g)", fn, bounds[0]);
  for (int k = 0; k < B; k++)
    if (!(bounds[k] < bounds[k + 1]))
      db_fail("%s: bounds must be strictly ascending, but bounds[%d] = %g >= bounds[%d] = %g", fn, k, bounds[k],
              k + 1, bounds[k + 1]);
}

void edm_block_range(const double *bounds, int B, int block, double *lo, double *hi) {
  check_bounds(bounds, B, "edm_block_range");
  if (block < 0 || block >= B) db_fail("edm_block_range: block %d out of range [0, %d)", block, B);
  *lo = bounds[B - 1 - block];
  *hi = bounds[B - block];
}

void edm_block_train_range(edm_config e, const double *bounds, int B, int block, double gamma, double *lo,
                           double *hi) {
  check_config(e, "edm_block_train_range");
  if (!(gamma >= 0 && isfinite(gamma)))
    db_fail("edm_block_train_range: overlap gamma must be finite and >= 0 (got %g)", gamma);
  check_bounds(bounds, B, "edm_block_train_range");
  if (block < 0 || block >= B) db_fail("edm_block_train_range: block %d out of range [0, %d)", block, B);
  double l = bounds[B - 1 - block], h = bounds[B - block];
  double alpha = pow(h / l, gamma);
  l /= alpha;
  h *= alpha;
  if (l < e.sigma_min) l = e.sigma_min;
  if (h > e.sigma_max) h = e.sigma_max;
  if (!(l < h))
    db_fail("edm_block_train_range: block %d range [%g, %g] lies outside [sigma_min, sigma_max] = [%g, %g]", block,
            bounds[B - 1 - block], bounds[B - block], e.sigma_min, e.sigma_max);
  *lo = l;
  *hi = h;
}

/* ------------------------------------------------------------ sampling */
double edm_sample_sigma(edm_config e, double lo, double hi, double u01) {
  check_config(e, "edm_sample_sigma");
  if (!(lo > 0 && lo < hi && isfinite(hi)))
    db_fail("edm_sample_sigma: need 0 < lo < hi < inf (got lo %g, hi %g)", lo, hi);
  if (!(u01 > 0 && u01 < 1)) db_fail("edm_sample_sigma: u01 must lie in the open interval (0, 1) (got %.17g)", u01);
  double a = (log(lo) - e.p_mean) / e.p_std, b = (log(hi) - e.p_mean) / e.p_std, x;
  if (a > 0) {
    /* Upper tail: mirror, Φ(-x) keeps relative precision where 1 - Φ(x) would not. */
    double ta = edm_norm_cdf(-a), tb = edm_norm_cdf(-b);
    if (!(ta > tb))
      db_fail("edm_sample_sigma: [%g, %g] has no probability mass in double precision under ln sigma ~ N(%g, %g^2)",
              lo, hi, e.p_mean, e.p_std);
    double v = ta - u01 * (ta - tb);
    if (v <= 0) v = DBL_TRUE_MIN;
    if (v >= 1) v = nextafter(1.0, 0.0);
    x = -edm_norm_ppf(v);
  } else {
    double pa = edm_norm_cdf(a), pb = edm_norm_cdf(b);
    if (!(pb > pa))
      db_fail("edm_sample_sigma: [%g, %g] has no probability mass in double precision under ln sigma ~ N(%g, %g^2)",
              lo, hi, e.p_mean, e.p_std);
    double u = pa + u01 * (pb - pa);
    if (u <= 0) u = DBL_TRUE_MIN;
    if (u >= 1) u = nextafter(1.0, 0.0);
    x = edm_norm_ppf(u);
  }
  double s = exp(e.p_mean + e.p_std * x);
  if (s < lo) s = lo;
  if (s > hi) s = hi;
  return s;
}

void edm_sample_sigmas(edm_config e, double lo, double hi, uint64_t seed, uint64_t offset, int n, float *out) {
  if (n < 0) db_fail("edm_sample_sigmas: n must be >= 0 (got %d)", n);
  if (n > 0 && !out) db_fail("edm_sample_sigmas: out is NULL");
  uint32_t w[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; i++) {
    if (i % 4 == 0) db_philox4x32(seed, offset + (uint64_t)(i / 4), w);
    double s = edm_sample_sigma(e, lo, hi, (double)db_u01(w[i % 4]));
    float f = (float)s;
    /* rounding to float must not leave [lo, hi] */
    if ((double)f < lo) f = nextafterf(f, INFINITY);
    if ((double)f > hi) f = nextafterf(f, -INFINITY);
    out[i] = f;
  }
}

/* ------------------------------------------------------------ inference */
int edm_block_of_sigma(const double *bounds, int B, double sigma) {
  check_bounds(bounds, B, "edm_block_of_sigma");
  if (isnan(sigma)) db_fail("edm_block_of_sigma: sigma is NaN");
  if (sigma >= bounds[B]) return 0;
  if (sigma < bounds[0]) return B - 1;
  int k = 0; /* largest k < B with bounds[k] <= sigma */
  while (k + 1 < B && bounds[k + 1] <= sigma) k++;
  return B - 1 - k;
}

void edm_sigma_schedule(edm_config e, int N, double rho, double *sigmas) {
  check_config(e, "edm_sigma_schedule");
  if (N < 2) db_fail("edm_sigma_schedule: the number of steps N must be >= 2 (got %d)", N);
  if (!(rho > 0 && isfinite(rho))) db_fail("edm_sigma_schedule: rho must be finite and > 0 (got %g)", rho);
  if (!sigmas) db_fail("edm_sigma_schedule: sigmas is NULL (needs N+1 = %d doubles)", N + 1);
  double a = pow(e.sigma_max, 1.0 / rho), b = pow(e.sigma_min, 1.0 / rho);
  for (int j = 1; j < N - 1; j++) sigmas[j] = pow(a + (double)j / (N - 1) * (b - a), rho);
  sigmas[0] = e.sigma_max;
  sigmas[N - 1] = e.sigma_min;
  sigmas[N] = 0.0;
}
