// mean_tokens: (B,T,C) -> (B,C) mean over tokens.
// One kernel per vector width W (see ops/elementwise.c): the forward takes a
// W-wide chunk of channels of one sample (tokens summed in order), the
// backward a W-wide chunk of one (b, t) row on a 2-D grid; a chunk crossing
// the row end runs element by element.
#define MEAN_TOKENS_KERNELS(W)                                                                               \
  __kernel void mean_tokens_forward_w##W(__global float *out, ulong out_off, __global const float *x,       \
                                         ulong x_off, int B, int T, int C) {                                \
    int c = get_global_id(0) * W, b = get_global_id(1);                                                    \
    if (c >= C || b >= B) return;                                                                          \
    __global const float *xb = x + x_off + (ulong)b * T * C;                                               \
    __global float *o = out + out_off + (ulong)b * C;                                                      \
    if (c + W <= C) {                                                                                      \
      float##W s = 0.0f;                                                                                   \
      for (int t = 0; t < T; t++) s += vload##W(0, xb + (ulong)t * C + c);                                 \
      vstore##W(s / T, 0, o + c);                                                                          \
    } else                                                                                                 \
      for (; c < C; c++) {                                                                                 \
        float s = 0.0f;                                                                                    \
        for (int t = 0; t < T; t++) s += xb[(ulong)t * C + c];                                             \
        o[c] = s / T;                                                                                      \
      }                                                                                                    \
  }                                                                                                        \
  __kernel void mean_tokens_backward_w##W(__global float *dx, ulong dx_off, __global const float *dout,     \
                                          ulong dout_off, int B, int T, int C) {                            \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= C || r >= B * T) return;                                                                      \
    __global const float *g = dout + dout_off + (ulong)(r / T) * C;                                        \
    __global float *d = dx + dx_off + (ulong)r * C;                                                        \
    if (c + W <= C)                                                                                        \
      vstore##W(vload##W(0, d + c) + vload##W(0, g + c) / T, 0, d + c);                                    \
    else                                                                                                   \
      for (; c < C; c++) d[c] += g[c] / T;                                                                 \
  }

MEAN_TOKENS_KERNELS(4)
MEAN_TOKENS_KERNELS(16)
