/* models/text_metrics.c: distinct-n and the Jensen-Shannon divergence of byte
 * n-gram distributions against hand-computed values and against a naive
 * quadratic reference on random texts (which also grows the hash table). */
#include "harness.h"
#include "../models/text_metrics.h"
#include <stdlib.h>

#define S(x) ((const unsigned char *)(x))

/* naive reference: n-grams as strings, compared pairwise */
static size_t naive_grams(const unsigned char *const *t, const size_t *l, int k, int n, const unsigned char ***out) {
  size_t total = 0;
  for (int i = 0; i < k; i++) total += l[i] >= (size_t)n ? l[i] - n + 1 : 0;
  const unsigned char **g = db_calloc(total ? total : 1, sizeof *g);
  size_t m = 0;
  for (int i = 0; i < k; i++)
    for (size_t j = 0; j + n <= l[i]; j++) g[m++] = t[i] + j;
  *out = g;
  return total;
}

static size_t naive_count(const unsigned char **g, size_t m, const unsigned char *x, int n) {
  size_t c = 0;
  for (size_t i = 0; i < m; i++) c += !memcmp(g[i], x, (size_t)n);
  return c;
}

static double naive_distinct(const unsigned char *const *t, const size_t *l, int k, int n) {
  const unsigned char **g;
  size_t m = naive_grams(t, l, k, n, &g), u = 0;
  for (size_t i = 0; i < m; i++) {
    size_t j = 0;
    while (j < i && memcmp(g[j], g[i], (size_t)n)) j++;
    u += j == i;
  }
  free(g);
  return m ? (double)u / m : 0;
}

static double naive_js(const unsigned char *const *a, const size_t *la, int ka, const unsigned char *const *b,
                       const size_t *lb, int kb, int n) {
  const unsigned char **ga, **gb;
  size_t ma = naive_grams(a, la, ka, n, &ga), mb = naive_grams(b, lb, kb, n, &gb);
  double js = 0;
  /* every distinct gram of a, then those of b absent from a */
  for (size_t i = 0; i < ma; i++) {
    size_t j = 0;
    while (j < i && memcmp(ga[j], ga[i], (size_t)n)) j++;
    if (j < i) continue;
    double p = (double)naive_count(ga, ma, ga[i], n) / ma, q = (double)naive_count(gb, mb, ga[i], n) / mb;
    js += 0.5 * p * log2(2 * p / (p + q)) + (q > 0 ? 0.5 * q * log2(2 * q / (p + q)) : 0);
  }
  for (size_t i = 0; i < mb; i++) {
    size_t j = 0;
    while (j < i && memcmp(gb[j], gb[i], (size_t)n)) j++;
    if (j < i || naive_count(ga, ma, gb[i], n)) continue;
    js += 0.5 * (double)naive_count(gb, mb, gb[i], n) / mb; /* q log2(2q/q) / 2 */
  }
  free(ga);
  free(gb);
  return js;
}

static void hand_values(void) {
  const unsigned char *abab[1] = {S("abab")};
  size_t l4[1] = {4};
  th_check(fabs(tm_distinct_n(abab, l4, 1, 1) - 0.5) < 1e-15 && fabs(tm_distinct_n(abab, l4, 1, 2) - 2.0 / 3) < 1e-15 &&
               fabs(tm_distinct_n(abab, l4, 1, 3) - 1.0) < 1e-15 && fabs(tm_distinct_n(abab, l4, 1, 4) - 1.0) < 1e-15,
           "distinct-n of \"abab\": 2/4, 2/3 (ab ba ab), 2/2, 1/1", "got %g %g %g %g", tm_distinct_n(abab, l4, 1, 1),
           tm_distinct_n(abab, l4, 1, 2), tm_distinct_n(abab, l4, 1, 3), tm_distinct_n(abab, l4, 1, 4));
  /* n-grams do not straddle samples: "ab" + "ab" has 2 bigrams, 1 distinct (not "ba") */
  const unsigned char *two[3] = {S("ab"), S("ab"), S("x")};
  size_t l2[3] = {2, 2, 1};
  th_check(fabs(tm_distinct_n(two, l2, 3, 2) - 0.5) < 1e-15 && fabs(tm_distinct_n(two, l2, 3, 1) - 0.6) < 1e-15 &&
               tm_distinct_n(two, l2, 3, 3) == 0,
           "distinct-n pools samples without straddling them; 0 when no sample is long enough",
           "got %g %g %g", tm_distinct_n(two, l2, 3, 2), tm_distinct_n(two, l2, 3, 1), tm_distinct_n(two, l2, 3, 3));
  /* bytes 0 and 255 are n-grams like any other (0 is not the empty slot) */
  const unsigned char zeros[6] = {0, 0, 0, 0, 0, 255};
  const unsigned char *z[1] = {zeros};
  size_t l6[1] = {6};
  th_check(fabs(tm_distinct_n(z, l6, 1, 4) - 2.0 / 3) < 1e-15 && fabs(tm_distinct_n(z, l6, 1, 1) - 2.0 / 6) < 1e-15,
           "distinct-n counts NUL and 0xFF bytes (00000000, 000000ff: 2 of 3 4-grams)", "got %g",
           tm_distinct_n(z, l6, 1, 4));

  const unsigned char *t1[2] = {S("in the beginning"), S("god created")};
  size_t lt1[2] = {16, 11};
  int ok = 1;
  for (int n = 1; n <= 4; n++) ok &= fabs(tm_js_divergence(t1, lt1, 2, t1, lt1, 2, n)) < 1e-15;
  th_check(ok, "JS divergence of a text set with itself is 0 for n = 1..4", "not 0");
  /* the same distribution from other texts: "abab" vs "ba"+"ab" for unigrams */
  const unsigned char *t2[2] = {S("ba"), S("ab")};
  size_t lt2[2] = {2, 2};
  th_check(fabs(tm_js_divergence(abab, l4, 1, t2, lt2, 2, 1)) < 1e-15, "JS divergence 0 for equal unigram distributions",
           "got %g", tm_js_divergence(abab, l4, 1, t2, lt2, 2, 1));
  const unsigned char *d1[1] = {S("aaab")}, *d2[1] = {S("xyz")};
  size_t ld1[1] = {4}, ld2[1] = {3};
  ok = 1;
  for (int n = 1; n <= 3; n++) ok &= fabs(tm_js_divergence(d1, ld1, 1, d2, ld2, 1, n) - 1) < 1e-15;
  th_check(ok, "JS divergence of disjoint supports is 1 bit", "got %g", tm_js_divergence(d1, ld1, 1, d2, ld2, 1, 1));
  /* "ab" vs "ac": P = (a .5, b .5), Q = (a .5, c .5), M = (a .5, b .25, c .25): KL(P||M) = KL(Q||M) = 0.5 bit */
  const unsigned char *ab[1] = {S("ab")}, *ac[1] = {S("ac")};
  size_t lab[1] = {2};
  th_check(fabs(tm_js_divergence(ab, lab, 1, ac, lab, 1, 1) - 0.5) < 1e-15,
           "JS divergence of \"ab\" vs \"ac\" unigrams is 0.5 bit", "got %.17g", tm_js_divergence(ab, lab, 1, ac, lab, 1, 1));
  /* "aab" vs "abb": P = (2/3, 1/3), Q = (1/3, 2/3), M = (1/2, 1/2):
   * JS = KL(P||M) = 2/3 log2(4/3) + 1/3 log2(2/3) */
  const unsigned char *aab[1] = {S("aab")}, *abb[1] = {S("abb")};
  size_t l3[1] = {3};
  double e = 2.0 / 3 * log2(4.0 / 3) + 1.0 / 3 * log2(2.0 / 3);
  th_check(fabs(tm_js_divergence(aab, l3, 1, abb, l3, 1, 1) - e) < 1e-15 &&
               fabs(tm_js_divergence(abb, l3, 1, aab, l3, 1, 1) - e) < 1e-15,
           "JS divergence of \"aab\" vs \"abb\" = 2/3 log2(4/3) + 1/3 log2(2/3), symmetric", "got %.17g, expected %.17g",
           tm_js_divergence(aab, l3, 1, abb, l3, 1, 1), e);
  TH_EXPECT_ERROR("JS divergence fails clearly on a set without n-grams", "hold no 4-gram",
                  tm_js_divergence(aab, l3, 1, abb, l3, 1, 4));
  TH_EXPECT_ERROR("n-gram statistics reject n = 5", "must be in 1..4", tm_distinct_n(aab, l3, 1, 5));

  tm_report r = tm_compare(abab, l4, 1, abab, l4, 1);
  th_check(r.distinct[1] == tm_distinct_n(abab, l4, 1, 2) && r.js[3] == 0, "tm_compare reports distinct-n and JS for n = 1..4",
           "mismatch");
}

/* random texts over a small alphabet (many repeats) and over all 256 bytes
 * (thousands of distinct 4-grams: the table grows several times) */
static void against_naive(void) {
  int alph[2] = {3, 256};
  double worst = 0;
  for (int a = 0; a < 2; a++) {
    int k = 5;
    unsigned char *buf[10];
    size_t len[10];
    for (int i = 0; i < 10; i++) {
      len[i] = (size_t)(i * 97 % 400) + (i == 3 ? 0 : 2);
      buf[i] = db_malloc(len[i] + 1);
      float *u = db_malloc(sizeof(float) * (len[i] + 1));
      db_rng_uniform_host(u, len[i] + 1, 17 + a, (uint64_t)i << 20, 0, 1);
      for (size_t j = 0; j < len[i]; j++) buf[i][j] = (unsigned char)((int)(u[j] * alph[a]) % alph[a] + (a ? 0 : 'a'));
      free(u);
    }
    const unsigned char *A[5], *B[5];
    for (int i = 0; i < k; i++) { A[i] = buf[i]; B[i] = buf[5 + i]; }
    for (int n = 1; n <= 4; n++) {
      double d = tm_distinct_n(A, len, k, n), dn = naive_distinct(A, len, k, n);
      double j = tm_js_divergence(A, len, k, B, len + 5, k, n), jn = naive_js(A, len, k, B, len + 5, k, n);
      worst = fmax(worst, fmax(fabs(d - dn), fabs(j - jn)));
    }
    for (int i = 0; i < 10; i++) free(buf[i]);
  }
  th_check(worst < 1e-12, "distinct-n and JS divergence equal a naive quadratic count on random texts (n = 1..4)",
           "max diff %.3e", worst);
}

void tests_text_metrics(void) {
  hand_values();
  against_naive();
}
