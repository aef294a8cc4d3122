/* N-gram statistics: see text_metrics.h. */
#include "text_metrics.h"
#include "../runtime/base.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing, linear probing. A slot's key is the n-gram's bytes packed
 * into the low 32 bits with bit 32 set (0 = empty slot); two counts per key
 * (one per text set). */
typedef struct {
  uint64_t *key;
  size_t *cnt[2];
  size_t cap, used;
} ngram_table;

static void table_init(ngram_table *t, size_t cap) {
  t->cap = cap;
  t->used = 0;
  t->key = db_calloc(cap, sizeof *t->key);
  t->cnt[0] = db_calloc(cap, sizeof(size_t));
  t->cnt[1] = db_calloc(cap, sizeof(size_t));
}

static void table_free(ngram_table *t) {
  free(t->key);
  free(t->cnt[0]);
  free(t->cnt[1]);
  memset(t, 0, sizeof *t);
}

static size_t slot_of(uint64_t key, size_t cap) {
  return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static void table_grow(ngram_table *t) {
  ngram_table n;
  table_init(&n, t->cap * 2);
  for (size_t i = 0; i < t->cap; i++) {
    if (!t->key[i]) continue;
    size_t s = slot_of(t->key[i], n.cap);
    while (n.key[s]) s = (s + 1) & (n.cap - 1);
    n.key[s] = t->key[i];
    n.cnt[0][s] = t->cnt[0][i];
    n.cnt[1][s] = t->cnt[1][i];
  }
  n.used = t->used;
  table_free(t);
  *t = n;
}

static void table_add(ngram_table *t, uint32_t gram, int set) {
  if (2 * (t->used + 1) > t->cap) table_grow(t);
  uint64_t key = (uint64_t)gram | (1ull << 32);
  size_t s = slot_of(key, t->cap);
  while (t->key[s] && t->key[s] != key) s = (s + 1) & (t->cap - 1);
  if (!t->key[s]) {
    t->key[s] = key;
    t->used++;
  }
  t->cnt[set][s]++;
}

/* Adds every n-gram of the texts to the table under `set`; returns how many. */
static size_t count_set(ngram_table *t, const unsigned char *const *texts, const size_t *lens, int n_texts, int n,
                        int set) {
  size_t total = 0;
  for (int k = 0; k < n_texts; k++) {
    const unsigned char *s = texts[k];
    size_t len = lens[k];
    if (len < (size_t)n) continue;
    if (!s) db_fail("text_metrics: text %d is NULL with length %zu", k, len);
    for (size_t i = 0; i + (size_t)n <= len; i++) {
      uint32_t g = 0;
      for (int j = 0; j < n; j++) g = g << 8 | s[i + j];
      table_add(t, g, set);
      total++;
    }
  }
  return total;
}

static void check_n(int n, const char *what) {
  if (n < 1 || n > TM_MAX_N) db_fail("%s: n = %d, must be in 1..%d", what, n, TM_MAX_N);
}

double tm_distinct_n(const unsigned char *const *texts, const size_t *lens, int n_texts, int n) {
  check_n(n, "tm_distinct_n");
  ngram_table t;
  table_init(&t, 1024);
  size_t total = count_set(&t, texts, lens, n_texts, n, 0);
  double d = total ? (double)t.used / (double)total : 0.0;
  table_free(&t);
  return d;
}

double tm_js_divergence(const unsigned char *const *a, const size_t *a_lens, int n_a, const unsigned char *const *b,
                        const size_t *b_lens, int n_b, int n) {
  check_n(n, "tm_js_divergence");
  ngram_table t;
  table_init(&t, 1024);
  size_t na = count_set(&t, a, a_lens, n_a, n, 0), nb = count_set(&t, b, b_lens, n_b, n, 1);
  if (!na || !nb) {
    table_free(&t);
    db_fail("tm_js_divergence: the %s texts hold no %d-gram (the divergence is undefined)", !na ? "first" : "second", n);
  }
  /* sum over grams of 1/2 p log2(2p/(p+q)) + 1/2 q log2(2q/(p+q)) */
  double js = 0;
  for (size_t i = 0; i < t.cap; i++) {
    if (!t.key[i]) continue;
    double p = (double)t.cnt[0][i] / (double)na, q = (double)t.cnt[1][i] / (double)nb, m = p + q;
    if (p > 0) js += 0.5 * p * log2(2 * p / m);
    if (q > 0) js += 0.5 * q * log2(2 * q / m);
  }
  table_free(&t);
  if (js < 0) js = 0; /* rounding */
  if (js > 1) js = 1;
  return js;
}

tm_report tm_compare(const unsigned char *const *samples, const size_t *s_lens, int n_samples,
                     const unsigned char *const *ref, const size_t *r_lens, int n_ref) {
  tm_report r;
  for (int n = 1; n <= TM_MAX_N; n++) {
    r.distinct[n - 1] = tm_distinct_n(samples, s_lens, n_samples, n);
    r.js[n - 1] = tm_js_divergence(samples, s_lens, n_samples, ref, r_lens, n_ref, n);
  }
  return r;
}
