// AdaLN modulation: out = x * (1 + scale[b]) + shift[b], broadcast over tokens.
// shift/scale live at columns shift_col/scale_col of the packed mod (B, ld).
// One kernel per vector width W (see ops/elementwise.c). The elementwise
// kernels run on a 2-D grid: dim 0 over W-wide chunks of a row of C, dim 1
// over the B*T rows, so a work-item divides once (row / T), not per element.
// A chunk that would cross the row end runs element by element.

#define MODULATE_KERNELS(W)                                                                                  \
  __kernel void modulate_forward_w##W(__global float *out, ulong out_off, __global const float *inp,       \
                                      ulong inp_off, __global const float *mod, ulong mod_off, int shift_col, \
                                      int scale_col, int B, int T, int C, int ld) {                          \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= C || r >= B * T) return;                                                                      \
    __global const float *m = mod + mod_off + (ulong)(r / T) * ld;                                         \
    __global const float *x = inp + inp_off + (ulong)r * C;                                                \
    __global float *y = out + out_off + (ulong)r * C;                                                      \
    if (c + W <= C)                                                                                        \
      vstore##W(vload##W(0, x + c) * (1.0f + vload##W(0, m + scale_col + c)) + vload##W(0, m + shift_col + c), \
                0, y + c);                                                                                  \
    else                                                                                                   \
      for (; c < C; c++) y[c] = x[c] * (1.0f + m[scale_col + c]) + m[shift_col + c];                       \
  }                                                                                                        \
  __kernel void modulate_backward_inp_w##W(__global float *dinp, ulong dinp_off, __global const float *dout, \
                                           ulong dout_off, __global const float *mod, ulong mod_off,        \
                                           int scale_col, int B, int T, int C, int ld) {                    \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= C || r >= B * T) return;                                                                      \
    __global const float *m = mod + mod_off + (ulong)(r / T) * ld + scale_col;                             \
    __global const float *g = dout + dout_off + (ulong)r * C;                                              \
    __global float *d = dinp + dinp_off + (ulong)r * C;                                                    \
    if (c + W <= C)                                                                                        \
      vstore##W(vload##W(0, d + c) + vload##W(0, g + c) * (1.0f + vload##W(0, m + c)), 0, d + c);          \
    else                                                                                                   \
      for (; c < C; c++) d[c] += g[c] * (1.0f + m[c]);                                                     \
  }                                                                                                        \
  /* One work-item per (chunk of W channels, b): sums over the T tokens in */                              \
  /* order (deterministic; each channel's order is the same at any W). */                                  \
  __kernel void modulate_backward_mod_w##W(__global float *dmod, ulong dmod_off, __global const float *dout, \
                                           ulong dout_off, __global const float *inp, ulong inp_off,        \
                                           int shift_col, int scale_col, int B, int T, int C, int ld) {     \
    int c = get_global_id(0) * W, b = get_global_id(1);                                                    \
    if (c >= C || b >= B) return;                                                                          \
    __global const float *g = dout + dout_off + (ulong)b * T * C;                                          \
    __global const float *x = inp + inp_off + (ulong)b * T * C;                                            \
    __global float *dm = dmod + dmod_off + (ulong)b * ld;                                                  \
    if (c + W <= C) {                                                                                      \
      float##W dshift = 0.0f, dscale = 0.0f;                                                               \
      for (int t = 0; t < T; t++) {                                                                        \
        float##W gt = vload##W(0, g + (ulong)t * C + c);                                                   \
        dshift += gt;                                                                                      \
        dscale += gt * vload##W(0, x + (ulong)t * C + c);                                                  \
      }                                                                                                    \
      vstore##W(vload##W(0, dm + shift_col + c) + dshift, 0, dm + shift_col + c);                          \
      vstore##W(vload##W(0, dm + scale_col + c) + dscale, 0, dm + scale_col + c);                          \
    } else                                                                                                 \
      for (; c < C; c++) {                                                                                 \
        float dshift = 0.0f, dscale = 0.0f;                                                                \
        for (int t = 0; t < T; t++) {                                                                      \
          float gt = g[(ulong)t * C + c];                                                                  \
          dshift += gt;                                                                                    \
          dscale += gt * x[(ulong)t * C + c];                                                              \
        }                                                                                                  \
        dm[shift_col + c] += dshift;                                                                       \
        dm[scale_col + c] += dscale;                                                                       \
      }                                                                                                    \
  }

MODULATE_KERNELS(4)
MODULATE_KERNELS(16)
