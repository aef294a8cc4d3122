/* The fixed class-embedding table of the block-wise classifier (models/class_table.c):
 * orthonormal rows times the scale, deterministic for a seed, clear errors. */
#include "harness.h"
#include "../models/class_table.h"
#include <stdlib.h>

static void check_table(int K, int d, double scale) {
  float *E = db_malloc(sizeof(float) * (size_t)K * d), *E2 = db_malloc(sizeof(float) * (size_t)K * d);
  class_table_orthonormal(E, K, d, scale, 42);
  class_table_orthonormal(E2, K, d, scale, 42);
  double worst = 0;
  for (int i = 0; i < K; i++)
    for (int j = 0; j <= i; j++) {
      double dot = 0;
      for (int k = 0; k < d; k++) dot += (double)E[(size_t)i * d + k] * E[(size_t)j * d + k];
      double want = i == j ? scale * scale : 0;
      worst = fmax(worst, fabs(dot - want) / (scale * scale));
    }
  char name[128];
  snprintf(name, sizeof name, "class table: %d x %d rows orthogonal with norm %g (float rounding)", K, d, scale);
  th_check(worst < 1e-6, name, "worst |<e_i, e_j> - scale^2 delta_ij| / scale^2 = %.3g", worst);
  snprintf(name, sizeof name, "class table: %d x %d deterministic for a seed", K, d);
  th_check(!memcmp(E, E2, sizeof(float) * (size_t)K * d), name, "two calls differ");
  if (d > 1) { /* a 1-wide row is +-scale: two seeds may agree */
    class_table_orthonormal(E2, K, d, scale, 43);
    snprintf(name, sizeof name, "class table: %d x %d another seed, another table", K, d);
    th_check(memcmp(E, E2, sizeof(float) * (size_t)K * d) != 0, name, "same table");
  }
  free(E);
  free(E2);
}

void tests_class_table(void) {
  check_table(1, 1, 1.0);
  check_table(10, 10, 1.0);   /* square: a rotation */
  check_table(10, 192, 2.5);  /* Fashion-MNIST classes in a ViT's width */
  check_table(100, 384, 1.0); /* CIFAR-100 */
  TH_EXPECT_ERROR("class table rejects more classes than the width", "cannot have orthogonal rows", {
    float e[12];
    class_table_orthonormal(e, 4, 3, 1.0, 1);
  });
  TH_EXPECT_ERROR("class table rejects a non-positive scale", "scale", {
    float e[4];
    class_table_orthonormal(e, 2, 2, 0.0, 1);
  });
}
