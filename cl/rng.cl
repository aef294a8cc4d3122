// Philox4x32-10, identical to runtime/rng.c: work-item g fills elements
// 4g..4g+3 of the stream from counter (offset + g).
// Exact host/device agreement needs a*b+c rounded twice, as the host does:
#pragma OPENCL FP_CONTRACT OFF
uint4 philox4x32(ulong seed, ulong counter) {
  uint c0 = (uint)counter, c1 = (uint)(counter >> 32), c2 = 0, c3 = 0;
  uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint hi0 = mul_hi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    uint hi1 = mul_hi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return (uint4)(c0, c1, c2, c3);
}

float u01(uint x) { return ((float)(x >> 8) + 0.5f) * (1.0f / 16777216.0f); }

__kernel void rng_uniform(__global float *out, ulong out_off, ulong n, ulong seed, ulong offset,
                          float lo, float hi) {
  ulong g = get_global_id(0);
  if (4 * g >= n) return;
  uint4 w = philox4x32(seed, offset + g);
  uint ws[4] = {w.x, w.y, w.z, w.w};
  for (int j = 0; j < 4; j++)
    if (4 * g + j < n) out[out_off + 4 * g + j] = lo + (hi - lo) * u01(ws[j]);
}

__kernel void rng_normal(__global float *out, ulong out_off, ulong n, ulong seed, ulong offset,
                         float mean, float std) {
  ulong g = get_global_id(0);
  if (4 * g >= n) return;
  uint4 w = philox4x32(seed, offset + g);
  // Box-Muller on the two pairs at once: one log, sqrt and sincos per pair
  // (two-lane vectors), not one per output
  float2 u1 = (float2)(u01(w.x), u01(w.z)), u2 = (float2)(u01(w.y), u01(w.w));
  float2 r = sqrt(-2.0f * log(u1)), c, sn = sincos(6.2831853071795864f * u2, &c);
  float z[4] = {r.x * c.x, r.x * sn.x, r.y * c.y, r.y * sn.y};
  for (int j = 0; j < 4; j++)
    if (4 * g + j < n) out[out_off + 4 * g + j] = mean + std * z[j];
}
