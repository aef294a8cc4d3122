/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
 * Counter-based: element i of a stream with (seed, offset) comes from counter
 * offset + i/4, word i%4, so host and device produce the same 32-bit words and
 * the same uniforms bit for bit. Normals come from Box-Muller on word pairs;
 * they agree with the device to a few ulps (libm vs OpenCL sin/cos/log). */
#include "base.h"
#include <math.h>

void db_philox4x32_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void db_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]) {
  const uint32_t ctr[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), 0, 0};
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  db_philox4x32_block(ctr, key, out);
}

/* 24 random bits into (0,1): never 0, so log() is safe. Exact in float. */
float db_u01(uint32_t x) { return ((float)(x >> 8) + 0.5f) * (1.0f / 16777216.0f); }

void db_rng_uniform_host(float *out, size_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  uint32_t w[4];
  for (size_t i = 0; i < n; i++) {
    if (i % 4 == 0) db_philox4x32(seed, offset + i / 4, w);
    out[i] = lo + (hi - lo) * db_u01(w[i % 4]);
  }
}

void db_rng_normal_host(float *out, size_t n, uint64_t seed, uint64_t offset) {
  uint32_t w[4];
  for (size_t i = 0; i < n; i++) {
    if (i % 4 == 0) db_philox4x32(seed, offset + i / 4, w);
    int pair = (int)(i % 4) / 2;
    float u1 = db_u01(w[2 * pair]), u2 = db_u01(w[2 * pair + 1]);
    float r = sqrtf(-2.0f * logf(u1));
    float th = 6.2831853071795864f * u2;
    out[i] = (i % 2 == 0) ? r * cosf(th) : r * sinf(th);
  }
}
