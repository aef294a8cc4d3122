/* Philox4x32-10: known answers, host/device equality, stream offsets, moments. */
#include "harness.h"
#include <stdlib.h>

void tests_rng(void) {
  /* Known-answer vectors of the Random123 distribution (kat_vectors). */
  const uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0}, want0[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  const uint32_t c1[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, k1[2] = {0xffffffff, 0xffffffff},
                 want1[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
  const uint32_t c2[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, k2[2] = {0xa4093822, 0x299f31d0},
                 want2[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
  uint32_t o[4];
  int kat = 1;
  db_philox4x32_block(c0, k0, o); kat &= !memcmp(o, want0, 16);
  db_philox4x32_block(c1, k1, o); kat &= !memcmp(o, want1, 16);
  db_philox4x32_block(c2, k2, o); kat &= !memcmp(o, want2, 16);
  th_check(kat, "rng: Philox4x32-10 matches the Random123 known answers", "mismatch");

  const size_t n = 100003;
  float *h = db_malloc(n * sizeof *h), *d = db_malloc(n * sizeof *d);
  db_arena *a = db_arena_new(th_ctx, "rng");
  db_tensor t = db_new(a, 1, (int)n, 0, 0, 0);
  db_rng_uniform(th_ctx, t, 42, 7, -2.0f, 3.0f);
  db_download(th_ctx, t, d);
  db_rng_uniform_host(h, n, 42, 7, -2.0f, 3.0f);
  th_check(!memcmp(h, d, n * sizeof *h), "rng: uniform on host and device are bit-identical", "differ");

  db_rng_normal(th_ctx, t, 42, 7, 0.0f, 1.0f);
  db_download(th_ctx, t, d);
  db_rng_normal_host(h, n, 42, 7);
  double maxd = 0, mean = 0, var = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)h[i] - d[i]);
    if (e > maxd) maxd = e;
    mean += d[i];
  }
  mean /= n;
  for (size_t i = 0; i < n; i++) var += (d[i] - mean) * (d[i] - mean);
  var /= n;
  th_check(maxd < 1e-5, "rng: normal on host and device agree to 1e-5", "max abs diff %g", maxd);
  th_check(fabs(mean) < 0.02 && fabs(var - 1) < 0.02, "rng: normal mean 0 and variance 1", "mean %g var %g", mean, var);

  /* stream with offset k equals the stream with offset 0 from element 4k on */
  float *s0 = db_malloc(40 * sizeof *s0), *s5 = db_malloc(20 * sizeof *s5);
  db_rng_uniform_host(s0, 40, 9, 0, 0, 1);
  db_rng_uniform_host(s5, 20, 9, 5, 0, 1);
  th_check(!memcmp(s0 + 20, s5, 20 * sizeof *s5), "rng: a counter offset of k skips 4k elements", "differ");
  db_rng_uniform_host(s5, 20, 10, 0, 0, 1);
  th_check(memcmp(s0, s5, 20 * sizeof *s5) != 0, "rng: different seeds give different streams", "same");
  free(s0); free(s5); free(h); free(d);
  db_arena_free(a);
}
