/* The language model's diffusion space and the text's own noise law
 * ("equi-difficulty", docs/lm_data.md). Pure host C in double
 * precision, no OpenCL.
 *
 * A byte x is embedded as the row E[x] of a fixed table (V x de, never
 * trained, the same for every block); z = E[x] + σ ε. h(σ) = E[H(x | z)] is
 * the entropy (nats) of the context-free posterior over bytes given z, x drawn
 * from the corpus' byte frequencies: 0 at small σ (the byte can be read off z),
 * the unigram entropy h_max at large σ. The equi-difficulty law draws σ so that
 * h(σ) is uniform, and the block boundaries cut h's rise into equal shares.
 * Conventions as models/edm.h: bounds ascending in σ, block 0 = highest noise.
 * Invalid arguments end in db_fail naming the problem. */
#ifndef DB_LM_NOISE_H
#define DB_LM_NOISE_H
#include "../runtime/base.h"
#include <stdint.h>

/* The fixed diffusion embedding E (V x de), row-major: seeded standard-normal
 * entries (Philox, Box-Muller) times sigma_data, the same for every block.
 * Entry i is sigma_data * db_rng_normal_host(.., seed, offset 0)[i] (the device RNG's stream). */
void lm_embedding_table(float *E, int V, int de, double sigma_data, uint64_t seed);

#define LM_CURVE_N 96
typedef struct { int n; double sigma[LM_CURVE_N], h[LM_CURVE_N]; double h_max; } lm_entropy_curve;
/* h(sigma) = E[H(x | z)], z = E[x] + sigma*eps, x ~ freq: Monte Carlo with `samples`
 * draws per sigma on a log grid [sigma_lo, sigma_hi]; posterior p(x'|z) ∝ freq(x') exp(-|z-E[x']|²/(2σ²));
 * h_max = the unigram entropy of freq (nats). Made monotone (running max) so it can be inverted. Deterministic for a seed.
 * Details: freq needs only sum > 0 (it is normalised); bytes with freq 0 are left out of
 * the posterior. The same `samples` draws (x, eps) serve every σ (common random numbers: a
 * smooth curve); x is drawn stratified (draw j takes the quantile (j + u)/samples of freq).
 * The draws use Philox with key seed ^ 0x6c6d5f6375727665 ("lm_curve"), so passing E's seed is safe.
 * Each h is clamped to [0, h_max]. n = LM_CURVE_N, sigma[0] = sigma_lo, sigma[n-1] = sigma_hi.
 * Cost ~ samples * S * (de + n) for S distinct bytes; the Monte Carlo standard error of
 * one h is at most ~1/sqrt(samples) nats (see docs/lm_data.md). */
void lm_entropy_curve_estimate(lm_entropy_curve *c, const float *E, int V, int de, const double *freq,
                               uint64_t seed, int samples, double sigma_lo, double sigma_hi);
/* σ where h = frac*h_max, frac in (0,1), log-linear interpolation (linear in ln σ between
 * grid points; on a flat stretch the smallest such σ). db_fail if frac*h_max is outside
 * [h[0], h[n-1]] (widen [sigma_lo, sigma_hi]). */
double lm_curve_sigma_at(const lm_entropy_curve *c, double frac);
/* h(σ)/h_max, clamped to [0,1] (and to the grid's ends outside [sigma[0], sigma[n-1]]). */
double lm_curve_frac_at(const lm_entropy_curve *c, double sigma);
/* Equi-difficulty partition: frac range [f_lo, f_hi] (e.g. 0.01, 0.99) cut into B equal shares;
 * bounds[0..B] ascending in σ (bounds[0] = σ at f_lo, bounds[B] = σ at f_hi), same convention as edm_partition. */
void lm_partition_equidiff(const lm_entropy_curve *c, int B, double f_lo, double f_hi, double *bounds);
/* A training σ for a block whose (overlapped) σ range is [lo, hi]: frac uniform between
 * frac_at(lo) and frac_at(hi) from u01, then sigma_at(frac): the σ law under which h is uniform.
 * The result is clamped to [lo, hi]; monotone non-decreasing in u01. */
double lm_sample_sigma_equidiff(const lm_entropy_curve *c, double lo, double hi, double u01);

#endif
