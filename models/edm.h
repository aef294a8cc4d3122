/* EDM noise levels and the DiffusionBlocks noise partition, host side, in
 * double precision (docs/method.md §2, §3, §6). Pure C: no OpenCL calls.
 *
 * Conventions:
 *   - bounds[0..B] are ascending: bounds[0] = σ_min, bounds[B] = σ_max.
 *   - Block 0 owns the HIGHEST noise range (it runs first at inference):
 *     block i owns the un-expanded range [bounds[B-1-i], bounds[B-i]],
 *     block B-1 the range that ends at σ_min.
 *   - Inference ownership / tie rule (edm_block_of_sigma): block B-1-k owns
 *     the half-open interval [bounds[k], bounds[k+1]), except that block 0's
 *     interval is closed at the top and extended upwards. So
 *       σ >= σ_max (= bounds[B])               -> block 0
 *       bounds[k] <= σ < bounds[k+1], 0<=k<B   -> block B-1-k
 *       σ <  σ_min (= bounds[0])               -> block B-1
 *     A σ exactly on an interior boundary bounds[k] (0<k<B) goes to block
 *     B-1-k, the block for which it is the LOWER end of the range, i.e. the
 *     higher-noise block of the two that share it. σ = σ_min goes to block B-1.
 *   - Invalid arguments end in db_fail with a message naming the problem. */
#ifndef DB_EDM_H
#define DB_EDM_H
#include "../runtime/base.h"
#include <stdint.h>

typedef struct { double p_mean, p_std, sigma_min, sigma_max, sigma_data; } edm_config;
edm_config edm_default(void); /* P_mean -1.2, P_std 1.2, σ_min 0.002, σ_max 80, σ_data 0.5 */

/* D(z,σ) = c_skip z + c_out F(c_in z, c_noise):
 * c_skip = σd²/(σ²+σd²), c_out = σσd/√(σ²+σd²), c_in = 1/√(σ²+σd²), c_noise = ln(σ)/4. σ > 0. */
typedef struct { double c_skip, c_out, c_in, c_noise; } edm_precond;
edm_precond edm_preconditioning(edm_config e, double sigma);
/* w(σ) = (σ²+σd²)/(σσd)² (so that w·c_out² = 1). σ > 0. */
double edm_loss_weight(edm_config e, double sigma);

/* Standard normal CDF Φ(x) = erfc(-x/√2)/2: relative accuracy kept in the lower tail. */
double edm_norm_cdf(double x);
/* Φ⁻¹(p) for p in (0,1) (db_fail outside): Acklam's rational approximation
 * refined by one Halley step on erfc; p > 0.5 is computed as -Φ⁻¹(1-p), which
 * is exact in floating point, so both tails keep ~1e-15 relative accuracy. */
double edm_norm_ppf(double p);

typedef enum { EDM_PARTITION_EQUIPROB = 0, EDM_PARTITION_UNIFORM = 1 } edm_partition_kind;
/* B >= 1; bounds has B+1 entries, ascending, bounds[0] = σ_min and bounds[B] = σ_max exactly.
 * EQUIPROB: paper eq. 13, σ_k = exp(P_mean + P_std Φ⁻¹(q_min + (q_max-q_min) k/B)).
 * UNIFORM:  equal intervals in ln σ. */
void edm_partition(edm_config e, int B, edm_partition_kind kind, double *bounds);
/* The un-expanded range of block (0 = highest noise): [bounds[B-1-block], bounds[B-block]]. */
void edm_block_range(const double *bounds, int B, int block, double *lo, double *hi);
/* Training range with overlap γ >= 0 (paper eq. 15): [lo/α, hi·α], α = (hi/lo)^γ,
 * clipped to [σ_min, σ_max] of e. γ = 0 gives the un-expanded range exactly. */
void edm_block_train_range(edm_config e, const double *bounds, int B, int block, double gamma, double *lo,
                           double *hi);
/* σ from the log-normal ln σ ~ N(P_mean, P_std²) truncated to [lo, hi] (0 < lo < hi),
 * by inverse CDF: u = Φ(a) + u01 (Φ(b) - Φ(a)), σ = exp(P_mean + P_std Φ⁻¹(u)),
 * a, b the standardised ends. u01 must be in (0,1). Monotone increasing in u01;
 * the result is clamped to [lo, hi]. When a > 0 the same formula is evaluated
 * on the mirrored tail (Φ(-x) instead of 1-Φ(x)) so no precision is lost. */
double edm_sample_sigma(edm_config e, double lo, double hi, double u01);
/* n samples: sample i uses u01 = db_u01(word i%4 of db_philox4x32(seed, offset + i/4)),
 * the same words as db_rng_uniform_host(…, seed, offset, …). Each float lies in [lo, hi]. */
void edm_sample_sigmas(edm_config e, double lo, double hi, uint64_t seed, uint64_t offset, int n, float *out);
/* The block that owns σ at inference, by the tie rule at the top of this file. σ must not be NaN. */
int edm_block_of_sigma(const double *bounds, int B, double sigma);
/* EDM ρ schedule, N >= 2, ρ > 0: sigmas[j] = (σmax^{1/ρ} + j/(N-1)(σmin^{1/ρ} - σmax^{1/ρ}))^ρ
 * for j < N (sigmas[0] = σ_max and sigmas[N-1] = σ_min exactly), sigmas[N] = 0. */
void edm_sigma_schedule(edm_config e, int N, double rho, double *sigmas /* N+1 */);

#endif
