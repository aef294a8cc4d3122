/* EDM noise levels and the noise partition (models/edm.c), all on the host:
 * normal CDF / quantile, preconditioning identities, equi-probability and
 * uniform boundaries against docs/method.md §3, block and training ranges, the
 * truncated log-normal sampler (exact inverse CDF and a Kolmogorov-Smirnov
 * test that is shown to be able to fail), inference ownership with its tie
 * rule, the ρ schedule, and argument errors. */
#include "harness.h"
#include "../models/edm.h"
#include <float.h>
#include <stdlib.h>

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* ln σ ~ N(pm, ps²) truncated to [lo, hi]: CDF at σ. */
static double trunc_cdf(double pm, double ps, double lo, double hi, double s) {
  double a = (log(lo) - pm) / ps, b = (log(hi) - pm) / ps, z = (log(s) - pm) / ps;
  if (a > 0) /* mirrored form, accurate in the upper tail */
    return (edm_norm_cdf(-a) - edm_norm_cdf(-z)) / (edm_norm_cdf(-a) - edm_norm_cdf(-b));
  return (edm_norm_cdf(z) - edm_norm_cdf(a)) / (edm_norm_cdf(b) - edm_norm_cdf(a));
}

/* Kolmogorov-Smirnov D_n of sorted samples against trunc_cdf(pm, ps, lo, hi). */
static double ks_stat(const float *x, int n, double pm, double ps, double lo, double hi) {
  double d = 0;
  for (int i = 0; i < n; i++) {
    double F = trunc_cdf(pm, ps, lo, hi, (double)x[i]);
    if (F < 0) F = 0;
    if (F > 1) F = 1;
    double d1 = F - (double)i / n, d2 = (double)(i + 1) / n - F;
    if (d1 > d) d = d1;
    if (d2 > d) d = d2;
  }
  return d;
}

static void test_normal(void) {
  /* known values (50-digit references) */
  struct { double p, x; } ppf_ref[] = {
      {0.975, 1.9599639845400542355}, {0.001, -3.0902323061678135415}, {1e-10, -6.3613409024040562047},
      {1e-300, -37.047096299361199237}, {1e-50, -14.933337534788488981},
      {0.02425, -1.9729610513118848503}, {0.97575, 1.9729610513118848503}};
  double worst = 0;
  for (size_t i = 0; i < sizeof ppf_ref / sizeof ppf_ref[0]; i++) {
    double r = fabs(edm_norm_ppf(ppf_ref[i].p) - ppf_ref[i].x) / fabs(ppf_ref[i].x);
    if (r > worst) worst = r;
  }
  th_check(worst < 1e-13, "edm: norm_ppf known values (0.975 -> 1.959963984540054, tails to 1e-300) to 1e-13",
           "worst relative error %g", worst);
  th_check(fabs(edm_norm_ppf(0.975) - 1.959963984540054) < 1e-15 && edm_norm_ppf(0.5) == 0.0,
           "edm: norm_ppf(0.975) = 1.959963984540054, norm_ppf(0.5) = 0", "got %.17g, %.17g", edm_norm_ppf(0.975),
           edm_norm_ppf(0.5));
  struct { double x, p; } cdf_ref[] = {{-8, 6.2209605742717841235e-16}, {-1.96, 0.024997895148220434137},
                                       {-30, 4.9067139271481870595e-198}, {1, 0.84134474606854294859}, {0, 0.5}};
  worst = 0;
  for (size_t i = 0; i < sizeof cdf_ref / sizeof cdf_ref[0]; i++) {
    double r = fabs(edm_norm_cdf(cdf_ref[i].x) - cdf_ref[i].p) / cdf_ref[i].p;
    if (r > worst) worst = r;
  }
  th_check(worst < 1e-13, "edm: norm_cdf known values, relative accuracy kept in the lower tail (x = -30)",
           "worst relative error %g", worst);

  /* Round trip x -> Φ(x) -> Φ⁻¹. For x > ~5.5 the double Φ(x) = 1 - tiny has
   * too few digits left (Φ(8) = 1 - 6.2e-16 is 1 - 5 or 6 ulps), so there the
   * unavoidable error ulp(p)/φ(x) is allowed on top; the complement route
   * -Φ⁻¹(Φ(-x)) carries the full precision and is held to 1e-9 everywhere. */
  double worst_strict = 0, worst_excess = 0, worst_mirror = 0;
  for (int i = -512; i <= 512; i++) {
    double x = i / 64.0, p = edm_norm_cdf(x), y = edm_norm_ppf(p), err = fabs(y - x);
    if (x <= 5.0) {
      if (err > worst_strict) worst_strict = err;
    } else {
      double phi = exp(-0.5 * x * x) / sqrt(2 * M_PI), allowed = 1e-9 + (nextafter(p, 2.0) - p) / phi;
      if (err / allowed > worst_excess) worst_excess = err / allowed;
    }
    if (x >= 0) {
      double ym = -edm_norm_ppf(edm_norm_cdf(-x));
      if (fabs(ym - x) > worst_mirror) worst_mirror = fabs(ym - x);
    }
  }
  th_check(worst_strict < 1e-9, "edm: norm_ppf(norm_cdf(x)) = x to 1e-9 for x in [-8, 5]", "max error %g",
           worst_strict);
  th_check(worst_excess <= 1, "edm: norm_ppf(norm_cdf(x)) for x in (5, 8] within 1e-9 + ulp(p)/phi(x)",
           "error / allowed = %g", worst_excess);
  th_check(worst_mirror < 1e-9, "edm: -norm_ppf(norm_cdf(-x)) = x to 1e-9 for x in [0, 8]", "max error %g",
           worst_mirror);
}

static void test_precond(void) {
  edm_config e = edm_default();
  th_check(e.p_mean == -1.2 && e.p_std == 1.2 && e.sigma_min == 0.002 && e.sigma_max == 80 && e.sigma_data == 0.5,
           "edm: defaults P_mean -1.2, P_std 1.2, sigma in [0.002, 80], sigma_data 0.5", "wrong defaults");
  const double sig[] = {0.002, 0.01, 0.1, 0.5, 1.0, 3.7, 80.0};
  double worst = 0;
  for (size_t i = 0; i < sizeof sig / sizeof sig[0]; i++) {
    double s = sig[i], sd = e.sigma_data, s2 = s * s + sd * sd;
    edm_precond p = edm_preconditioning(e, s);
    double w = edm_loss_weight(e, s);
    double errs[] = {
        fabs(p.c_skip - sd * sd / s2) / (sd * sd / s2),
        fabs(p.c_out - s * sd / sqrt(s2)) / (s * sd / sqrt(s2)),
        fabs(p.c_in - 1 / sqrt(s2)) * sqrt(s2),
        fabs(p.c_noise - 0.25 * log(s)),
        fabs(p.c_skip + p.c_out * p.c_out / (sd * sd) - 1), /* c_skip + c_out²/σd² = 1 */
        fabs(p.c_in * p.c_in * s2 - 1),
        fabs(w * p.c_out * p.c_out - 1), /* EDM's effective weight on F is 1 */
        fabs(w - s2 / (s * sd * s * sd)) / w,
    };
    for (size_t j = 0; j < sizeof errs / sizeof errs[0]; j++)
      if (errs[j] > worst) worst = errs[j];
  }
  th_check(worst < 1e-14,
           "edm: c_skip, c_out, c_in, c_noise, weight match §2; c_skip + c_out^2/sd^2 = 1, weight * c_out^2 = 1",
           "worst error %g", worst);
}

static void test_partition(void) {
  edm_config e = edm_default();
  static const double ref2[] = {0.002, 0.3012, 80}, ref3[] = {0.002, 0.1796, 0.505, 80},
                      ref4[] = {0.002, 0.1341, 0.3012, 0.6766, 80},
                      ref6[] = {0.002, 0.0943, 0.1796, 0.3012, 0.505, 0.9617, 80};
  const double *refs[] = {ref2, ref3, ref4, ref6};
  const int Bs[] = {2, 3, 4, 6};
  for (int t = 0; t < 4; t++) {
    int B = Bs[t], ok = 1;
    double b[7];
    char got[160] = "", one[32];
    edm_partition(e, B, EDM_PARTITION_EQUIPROB, b);
    for (int k = 0; k <= B; k++) {
      char r[32];
      snprintf(one, sizeof one, "%.4f", b[k]);
      snprintf(r, sizeof r, "%.4f", refs[t][k]);
      ok &= strcmp(one, r) == 0;
      strncat(got, one, sizeof got - strlen(got) - 2);
      strcat(got, " ");
    }
    ok &= b[0] == e.sigma_min && b[B] == e.sigma_max;
    /* each block holds the same probability mass */
    double qa = edm_norm_cdf((log(e.sigma_min) - e.p_mean) / e.p_std);
    double qb = edm_norm_cdf((log(e.sigma_max) - e.p_mean) / e.p_std), worst = 0;
    for (int k = 0; k < B; k++) {
      double m = edm_norm_cdf((log(b[k + 1]) - e.p_mean) / e.p_std) - edm_norm_cdf((log(b[k]) - e.p_mean) / e.p_std);
      double r = fabs(m - (qb - qa) / B) / ((qb - qa) / B);
      if (r > worst) worst = r;
    }
    char name[96];
    snprintf(name, sizeof name, "edm: equi-probability B=%d boundaries = docs/method.md to 4 decimals, equal masses", B);
    th_check(ok && worst < 1e-12, name, "got %s(mass error %g)", got, worst);
  }

  for (int B = 1; B <= 8; B++) {
    double b[9], w = (log(e.sigma_max) - log(e.sigma_min)) / B, worst = 0;
    edm_partition(e, B, EDM_PARTITION_UNIFORM, b);
    for (int k = 0; k < B; k++) {
      double r = fabs(log(b[k + 1] / b[k]) - w) / w;
      if (r > worst) worst = r;
    }
    if (b[0] != e.sigma_min || b[B] != e.sigma_max) worst = INFINITY;
    if (B == 8 || worst > 1e-12)
      th_check(worst < 1e-12, "edm: uniform partition B=1..8 has equal ln-sigma widths and exact ends",
               "B=%d worst %g", B, worst);
    if (worst > 1e-12) break;
  }
  double b1[2];
  edm_partition(e, 1, EDM_PARTITION_EQUIPROB, b1);
  th_check(b1[0] == 0.002 && b1[1] == 80, "edm: B=1 partition is [sigma_min, sigma_max]", "got [%g, %g]", b1[0],
           b1[1]);
}

static void test_ranges(void) {
  edm_config e = edm_default();
  double b[4], lo, hi;
  edm_partition(e, 3, EDM_PARTITION_EQUIPROB, b);
  int ok = 1;
  for (int i = 0; i < 3; i++) {
    edm_block_range(b, 3, i, &lo, &hi);
    ok &= lo == b[2 - i] && hi == b[3 - i];
  }
  edm_block_range(b, 3, 0, &lo, &hi);
  ok &= hi == 80;
  edm_block_range(b, 3, 2, &lo, &hi);
  ok &= lo == 0.002;
  th_check(ok, "edm: block 0 owns the highest range [b[B-1], sigma_max], block B-1 ends at sigma_min", "wrong");

  ok = 1;
  for (int i = 0; i < 3; i++) {
    double l0, h0;
    edm_block_range(b, 3, i, &l0, &h0);
    edm_block_train_range(e, b, 3, i, 0.0, &lo, &hi);
    ok &= lo == l0 && hi == h0;
  }
  th_check(ok, "edm: overlap gamma = 0 gives the un-expanded range exactly", "differs");

  /* γ = 0.1: [lo/α, hi·α], α = (hi/lo)^0.1, clipped to [σ_min, σ_max] */
  double want[3][2], got[3][2], worst = 0;
  for (int i = 0; i < 3; i++) {
    double l0 = b[2 - i], h0 = b[3 - i], a = pow(h0 / l0, 0.1);
    want[i][0] = fmax(l0 / a, 0.002);
    want[i][1] = fmin(h0 * a, 80.0);
    edm_block_train_range(e, b, 3, i, 0.1, &got[i][0], &got[i][1]);
    for (int j = 0; j < 2; j++) worst = fmax(worst, fabs(got[i][j] - want[i][j]) / want[i][j]);
  }
  ok = worst < 1e-15 && got[0][1] == 80 && got[2][0] == 0.002 && got[0][0] < b[2] && got[1][0] < b[1] &&
       got[1][1] > b[2] && got[2][1] > b[1] && got[1][0] > 0.002 && got[1][1] < 80;
  th_check(ok, "edm: overlap gamma = 0.1 expands by alpha = (hi/lo)^0.1 and clips at sigma_min / sigma_max",
           "worst %g; block0 [%g, %g] block1 [%g, %g] block2 [%g, %g]", worst, got[0][0], got[0][1], got[1][0],
           got[1][1], got[2][0], got[2][1]);
  /* numbers for B=3, γ=0.1 (50-digit reference) */
  const double ref[3][2] = {{0.30433419, 80}, {0.16199090, 0.56004285}, {0.002, 0.28165686}};
  worst = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 2; j++) worst = fmax(worst, fabs(got[i][j] - ref[i][j]) / ref[i][j]);
  th_check(worst < 1e-7, "edm: B=3 gamma=0.1 training ranges [0.3043, 80], [0.1620, 0.5600], [0.002, 0.2817]",
           "got [%.8f, %g] [%.8f, %.8f] [%g, %.8f]", got[0][0], got[0][1], got[1][0], got[1][1], got[2][0],
           got[2][1]);
}

static void test_sampling(void) {
  edm_config e = edm_default();
  /* exact inverse CDF in every branch: lower half, straddling 0, upper tail (mirrored) */
  const double ranges[][2] = {{0.002, 0.01}, {0.1, 2.0}, {0.5, 80}, {60, 80}, {0.002, 80}};
  double worst = 0, mono = 1, ends = 0;
  for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
    double lo = ranges[r][0], hi = ranges[r][1], prev = 0;
    for (int i = 1; i < 1000; i++) {
      double u = i / 1000.0, s = edm_sample_sigma(e, lo, hi, u);
      worst = fmax(worst, fabs(trunc_cdf(e.p_mean, e.p_std, lo, hi, s) - u));
      if (!(s > prev) || s < lo || s > hi) mono = 0;
      prev = s;
    }
    double s0 = edm_sample_sigma(e, lo, hi, 1e-12), s1 = edm_sample_sigma(e, lo, hi, 1 - 1e-12);
    ends = fmax(ends, fabs(trunc_cdf(e.p_mean, e.p_std, lo, hi, s0) - 1e-12));
    ends = fmax(ends, fabs(trunc_cdf(e.p_mean, e.p_std, lo, hi, s1) - (1 - 1e-12)));
    if (!(s0 >= lo && s0 < s1 && s1 <= hi)) ends = INFINITY;
  }
  th_check(worst < 1e-10 && mono, "edm: sample_sigma inverts the truncated CDF (F(sigma(u)) = u), increasing in u",
           "max |F - u| %g, monotone %g", worst, mono);
  th_check(ends < 1e-14,
           "edm: sample_sigma keeps precision at the ends: F(sigma(1e-12)) = 1e-12, F(sigma(1-1e-12)) = 1-1e-12",
           "max |F - u| %g", ends);

  /* reproducible Philox stream; offset k skips 4k samples */
  float s0[40], s1[40], s5[20];
  edm_sample_sigmas(e, 0.1, 2.0, 77, 0, 40, s0);
  edm_sample_sigmas(e, 0.1, 2.0, 77, 0, 40, s1);
  edm_sample_sigmas(e, 0.1, 2.0, 77, 5, 20, s5);
  float u[40];
  db_rng_uniform_host(u, 40, 77, 0, 0.0f, 1.0f);
  int same = !memcmp(s0, s1, sizeof s0) && !memcmp(s0 + 20, s5, sizeof s5) &&
             s0[3] == (float)edm_sample_sigma(e, 0.1, 2.0, (double)u[3]);
  th_check(same, "edm: sample_sigmas is reproducible, uses db_rng_uniform_host's words, offset k skips 4k", "differ");

  /* KS test for every block of B = 3 with γ = 0.1 */
  const int n = 100000;
  const double crit = 1.63 / sqrt((double)n);
  float *x = db_malloc((size_t)n * sizeof *x);
  double b[4];
  edm_partition(e, 3, EDM_PARTITION_EQUIPROB, b);
  for (int blk = 0; blk < 3; blk++) {
    double lo, hi;
    edm_block_train_range(e, b, 3, blk, 0.1, &lo, &hi);
    edm_sample_sigmas(e, lo, hi, 1234 + (uint64_t)blk, 0, n, x);
    int inside = 1;
    for (int i = 0; i < n; i++) inside &= (double)x[i] >= lo && (double)x[i] <= hi && isfinite(x[i]);
    qsort(x, (size_t)n, sizeof *x, cmp_float);
    double d = ks_stat(x, n, e.p_mean, e.p_std, lo, hi);
    /* the same statistic against wrong laws must be far above the critical value */
    double d_untrunc = ks_stat(x, n, e.p_mean, e.p_std, 1e-300, 1e300);
    double d_shift = ks_stat(x, n, e.p_mean + 0.2, e.p_std, lo, hi);
    char name[160];
    snprintf(name, sizeof name,
             "edm: B=3 gamma=0.1 block %d [%.4g, %.4g]: 100000 samples inside, KS D_n = %.4f < 1.63/sqrt(n)",
             blk, lo, hi, d);
    th_check(inside && d < crit, name, "inside %d, D_n %.5f, critical %.5f", inside, d, crit);
    snprintf(name, sizeof name,
             "edm: block %d KS can fail: D_n vs untruncated %.4f, vs P_mean+0.2 %.4f (critical %.4f)", blk,
             d_untrunc, d_shift, crit);
    th_check(d_untrunc > 10 * crit && d_shift > 3 * crit, name, "D_n untruncated %.5f, shifted %.5f", d_untrunc,
             d_shift);
  }
  free(x);
}

static void test_lookup(void) {
  edm_config e = edm_default();
  int ok = 1;
  char why[256] = "";
  for (int B = 1; B <= 6; B++) {
    double b[7];
    edm_partition(e, B, EDM_PARTITION_EQUIPROB, b);
    struct { double s; int want; } c[32];
    int nc = 0;
    c[nc].s = 80; c[nc++].want = 0;
    c[nc].s = nextafter(80, 0); c[nc++].want = 0;
    c[nc].s = 81; c[nc++].want = 0;
    c[nc].s = INFINITY; c[nc++].want = 0;
    c[nc].s = 0.002; c[nc++].want = B - 1;
    c[nc].s = nextafter(0.002, 1); c[nc++].want = B - 1;
    c[nc].s = nextafter(0.002, 0); c[nc++].want = B - 1;
    c[nc].s = 1e-5; c[nc++].want = B - 1;
    c[nc].s = 0; c[nc++].want = B - 1;
    for (int k = 1; k < B; k++) {
      c[nc].s = b[k]; c[nc++].want = B - 1 - k;              /* tie: the block whose lower end it is */
      c[nc].s = nextafter(b[k], INFINITY); c[nc++].want = B - 1 - k;
      c[nc].s = nextafter(b[k], 0); c[nc++].want = B - k;    /* just below: the lower-noise block */
    }
    for (int i = 0; i < nc; i++) {
      int got = edm_block_of_sigma(b, B, c[i].s);
      if (got != c[i].want && ok) {
        ok = 0;
        snprintf(why, sizeof why, "B=%d sigma=%.17g: block %d, want %d", B, c[i].s, got, c[i].want);
      }
    }
    /* every σ in [σ_min, σ_max] lies in the un-expanded range of its block */
    for (int i = 0; i <= 400; i++) {
      double s = exp(log(0.002) + (log(80) - log(0.002)) * i / 400.0), lo, hi;
      if (i == 400) s = 80;
      int blk = edm_block_of_sigma(b, B, s);
      edm_block_range(b, B, blk, &lo, &hi);
      if (!(s >= lo && s <= hi) && ok) {
        ok = 0;
        snprintf(why, sizeof why, "B=%d sigma=%g -> block %d [%g, %g]", B, s, blk, lo, hi);
      }
    }
  }
  th_check(ok,
           "edm: block_of_sigma: interior boundary -> higher-noise block (B-1-k), just below -> lower-noise, "
           ">= sigma_max -> 0, < sigma_min -> B-1",
           "%s", why);
}

static void test_schedule(void) {
  edm_config e = edm_default();
  double s[51];
  edm_sigma_schedule(e, 50, 7.0, s);
  int ok = s[0] == 80 && s[49] == 0.002 && s[50] == 0;
  for (int j = 0; j < 50; j++) ok &= s[j] > s[j + 1];
  double a = pow(80, 1 / 7.0), c = pow(0.002, 1 / 7.0), worst = 0;
  for (int j = 0; j < 50; j++) worst = fmax(worst, fabs(s[j] - pow(a + j / 49.0 * (c - a), 7)) / s[j]);
  th_check(ok && worst < 1e-13, "edm: rho=7 schedule, N=50: starts at sigma_max, sigmas[N-1] = sigma_min, "
           "last 0, strictly decreasing, = formula", "ok %d, worst %g", ok, worst);
  double s2[3];
  edm_sigma_schedule(e, 2, 7.0, s2);
  th_check(s2[0] == 80 && s2[1] == 0.002 && s2[2] == 0, "edm: N=2 schedule is [sigma_max, sigma_min, 0]",
           "got %g %g %g", s2[0], s2[1], s2[2]);
}

static void test_errors(void) {
  edm_config e = edm_default(), bad = e;
  bad.sigma_min = 100;
  double b[4], lo, hi, s[4];
  float f[4];
  edm_partition(e, 3, EDM_PARTITION_EQUIPROB, b);
  double nonasc[4] = {0.002, 0.5, 0.3, 80};
  TH_EXPECT_ERROR("edm: partition B = 0 is an error", "B must be >= 1", edm_partition(e, 0, EDM_PARTITION_EQUIPROB, b));
  TH_EXPECT_ERROR("edm: unknown partition kind is an error", "unknown partition kind",
                  edm_partition(e, 3, (edm_partition_kind)7, b));
  TH_EXPECT_ERROR("edm: sigma_min >= sigma_max is an error", "sigma_min < sigma_max",
                  edm_partition(bad, 3, EDM_PARTITION_UNIFORM, b));
  TH_EXPECT_ERROR("edm: block_range block = B is out of range", "block 3 out of range",
                  edm_block_range(b, 3, 3, &lo, &hi));
  TH_EXPECT_ERROR("edm: block_range block = -1 is out of range", "block -1 out of range",
                  edm_block_range(b, 3, -1, &lo, &hi));
  TH_EXPECT_ERROR("edm: block_range B = 0 is an error", "B must be >= 1", edm_block_range(b, 0, 0, &lo, &hi));
  TH_EXPECT_ERROR("edm: non-ascending bounds are an error", "strictly ascending",
                  edm_block_of_sigma(nonasc, 3, 1.0));
  TH_EXPECT_ERROR("edm: train_range block out of range", "block 5 out of range",
                  edm_block_train_range(e, b, 3, 5, 0.1, &lo, &hi));
  TH_EXPECT_ERROR("edm: train_range gamma < 0 is an error", "gamma must be",
                  edm_block_train_range(e, b, 3, 0, -0.1, &lo, &hi));
  TH_EXPECT_ERROR("edm: sample_sigma lo >= hi is an error", "0 < lo < hi", edm_sample_sigma(e, 0.5, 0.5, 0.3));
  TH_EXPECT_ERROR("edm: sample_sigma lo <= 0 is an error", "0 < lo < hi", edm_sample_sigma(e, 0, 0.5, 0.3));
  TH_EXPECT_ERROR("edm: sample_sigmas lo > hi is an error", "0 < lo < hi", edm_sample_sigmas(e, 2, 1, 1, 0, 4, f));
  TH_EXPECT_ERROR("edm: sample_sigma u01 = 0 is an error", "u01 must lie", edm_sample_sigma(e, 0.1, 0.5, 0.0));
  TH_EXPECT_ERROR("edm: sample_sigma u01 = 1 is an error", "u01 must lie", edm_sample_sigma(e, 0.1, 0.5, 1.0));
  TH_EXPECT_ERROR("edm: norm_ppf(0) is an error", "open interval (0, 1)", edm_norm_ppf(0.0));
  TH_EXPECT_ERROR("edm: norm_ppf(1) is an error", "open interval (0, 1)", edm_norm_ppf(1.0));
  TH_EXPECT_ERROR("edm: norm_ppf(NaN) is an error", "open interval (0, 1)", edm_norm_ppf(NAN));
  TH_EXPECT_ERROR("edm: block_of_sigma(NaN) is an error", "NaN", edm_block_of_sigma(b, 3, NAN));
  TH_EXPECT_ERROR("edm: schedule N = 1 is an error", "N must be >= 2", edm_sigma_schedule(e, 1, 7.0, s));
  TH_EXPECT_ERROR("edm: schedule rho <= 0 is an error", "rho must be", edm_sigma_schedule(e, 3, 0.0, s));
  TH_EXPECT_ERROR("edm: preconditioning sigma <= 0 is an error", "sigma must be finite and > 0",
                  edm_preconditioning(e, 0.0));
  TH_EXPECT_ERROR("edm: loss_weight sigma < 0 is an error", "sigma must be finite and > 0",
                  edm_loss_weight(e, -1.0));
}

void tests_edm(void) {
  test_normal();
  test_precond();
  test_partition();
  test_ranges();
  test_sampling();
  test_lookup();
  test_schedule();
  test_errors();
}
