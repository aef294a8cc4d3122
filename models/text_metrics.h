/* N-gram statistics of generated text against reference text (docs/metrics.md,
 * "Language models"), pure host C, no device:
 *   distinct-n  = (number of distinct byte n-grams) / (number of n-grams) over a
 *                 set of samples; n-grams never straddle two samples; 0 when the
 *                 samples hold no n-gram at all (every sample shorter than n).
 *   JS(n)       = Jensen-Shannon divergence, in bits, between the byte n-gram
 *                 distributions of two sets of texts (each set pooled: counts
 *                 over all its texts / their total), in [0, 1]:
 *                 JS = 1/2 KL(P || M) + 1/2 KL(Q || M), M = (P + Q) / 2, log base 2.
 *                 0 for identical distributions, 1 for disjoint supports.
 * n is 1..4: an n-gram is packed exactly into a uint32 (no hashing collisions)
 * and counted in an open-addressing table. */
#ifndef DB_TEXT_METRICS_H
#define DB_TEXT_METRICS_H
#include <stddef.h>

#define TM_MAX_N 4

double tm_distinct_n(const unsigned char *const *texts, const size_t *lens, int n_texts, int n);
/* Fails (db_fail) when either set holds no n-gram: the divergence is undefined. */
double tm_js_divergence(const unsigned char *const *a, const size_t *a_lens, int n_a, const unsigned char *const *b,
                        const size_t *b_lens, int n_b, int n);

/* The whole report for n = 1..4: distinct[n-1] of the samples, js[n-1] of
 * samples against reference. */
typedef struct {
  double distinct[TM_MAX_N];
  double js[TM_MAX_N];
} tm_report;
tm_report tm_compare(const unsigned char *const *samples, const size_t *s_lens, int n_samples,
                     const unsigned char *const *ref, const size_t *r_lens, int n_ref);
#endif
