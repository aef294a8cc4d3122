// Sinusoidal embedding of one scalar per sample:
// out[n] = [cos(t f_0), ..., cos(t f_{h-1}), sin(t f_0), ..., sin(t f_{h-1})],
// h = D/2, f_k = exp(-ln(max_period) k / h). Precise cos/sin/exp (no native_).
// log_mp = ln(max_period), computed on the host in double.

float freq(int k, int h, float log_mp) { return exp(-log_mp * ((float)k / (float)h)); }

// 2-D grid (k, n): work-item (k, n) computes frequencies k .. k+W-1 of sample
// n (W from ops/elementwise.c) and writes both their cos and sin halves: one
// exp per frequency, and PoCL evaluates exp/cos/sin W lanes at a time.
#define TS_LANES4 ((float4)(0.0f, 1.0f, 2.0f, 3.0f))
#define TS_LANES16 ((float16)(0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f, 10.0f, 11.0f, 12.0f, 13.0f, \
                              14.0f, 15.0f))
#define TS_KERNELS(W)                                                                                        \
  __kernel void timestep_embedding_forward_w##W(__global float *out, ulong out_off, __global const float *t, \
                                                ulong t_off, int N, int D, float log_mp) {                   \
    int k = get_global_id(0) * W, n = get_global_id(1), h = D / 2;                                         \
    if (k >= h || n >= N) return;                                                                          \
    float tn = t[t_off + n];                                                                               \
    __global float *o = out + out_off + (ulong)n * D;                                                      \
    if (k + W <= h) {                                                                                      \
      float##W a = tn * exp(-log_mp * (((float)k + TS_LANES##W) / (float)h));                              \
      vstore##W(cos(a), 0, o + k);                                                                         \
      vstore##W(sin(a), 0, o + h + k);                                                                     \
    } else                                                                                                 \
      for (; k < h; k++) {                                                                                 \
        float a = tn * freq(k, h, log_mp);                                                                 \
        o[k] = cos(a);                                                                                     \
        o[h + k] = sin(a);                                                                                 \
      }                                                                                                    \
  }

TS_KERNELS(4)
TS_KERNELS(16)

// dt[n] += sum_k f_k (-dcos_k sin(t f_k) + dsin_k cos(t f_k)); one work-group
// (power-of-two size chosen by the host) per sample.
__kernel void timestep_embedding_backward(__global float *dt, ulong dt_off, __global const float *dout,
                                          ulong dout_off, __global const float *t, ulong t_off, int D,
                                          float log_mp, __local float *buf) {
  int n = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  int h = D / 2;
  float tn = t[t_off + n];
  __global const float *dy = dout + dout_off + (ulong)n * D;
  float s = 0.0f;
  for (int k = lid; k < h; k += nl) {
    float f = freq(k, h, log_mp), a = tn * f;
    s += f * (dy[h + k] * cos(a) - dy[k] * sin(a));
  }
  s = wg_sum(buf, s);
  if (lid == 0) dt[dt_off + n] += s;
}
