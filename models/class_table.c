#include "class_table.h"
#include <math.h>
#include <stdlib.h>

void class_table_orthonormal(float *E, int K, int d, double scale, uint64_t seed) {
  if (K < 1 || d < 1) db_fail("class table: %d rows of width %d: both must be positive", K, d);
  if (K > d) db_fail("class table: %d classes cannot have orthogonal rows of width %d (need width >= classes)", K, d);
  if (!(scale > 0) || !isfinite(scale)) db_fail("class table: scale %g must be positive and finite", scale);
  size_t n = (size_t)K * d;
  float *g = db_malloc(n * sizeof *g);
  double *q = db_malloc(n * sizeof *q);
  db_rng_normal_host(g, n, seed, 0);
  for (int i = 0; i < K; i++) {
    double *r = q + (size_t)i * d;
    for (int k = 0; k < d; k++) r[k] = g[(size_t)i * d + k];
    for (int pass = 0; pass < 2; pass++) /* classical Gram-Schmidt, repeated: orthogonal to rounding */
      for (int j = 0; j < i; j++) {
        const double *p = q + (size_t)j * d;
        double dot = 0;
        for (int k = 0; k < d; k++) dot += r[k] * p[k];
        for (int k = 0; k < d; k++) r[k] -= dot * p[k];
      }
    double norm = 0;
    for (int k = 0; k < d; k++) norm += r[k] * r[k];
    norm = sqrt(norm);
    if (!(norm > 1e-9)) db_fail("class table: row %d is degenerate (seed %llu)", i, (unsigned long long)seed);
    for (int k = 0; k < d; k++) r[k] /= norm;
  }
  for (size_t i = 0; i < n; i++) E[i] = (float)(q[i] * scale);
  free(g);
  free(q);
}
