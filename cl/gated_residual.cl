// Gated residual: out = x + gate[b] * y; gate at column gate_col of mod (B, ld).
// out may alias x: each work-item reads its x chunk before writing it.
// One kernel per vector width W (see ops/elementwise.c), on a 2-D grid: dim 0
// over W-wide chunks of a row of C, dim 1 over the rows (one division, r / T,
// per work-item). A chunk that would cross the row end runs element by element.

#define GATED_RESIDUAL_KERNELS(W)                                                                            \
  __kernel void gated_residual_forward_w##W(__global float *out, ulong out_off, __global const float *x,    \
                                            ulong x_off, __global const float *y, ulong y_off,              \
                                            __global const float *mod, ulong mod_off, int gate_col, int B,   \
                                            int T, int C, int ld) {                                          \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= C || r >= B * T) return;                                                                      \
    __global const float *g = mod + mod_off + (ulong)(r / T) * ld + gate_col;                              \
    __global const float *xr = x + x_off + (ulong)r * C, *yr = y + y_off + (ulong)r * C;                   \
    __global float *o = out + out_off + (ulong)r * C;                                                      \
    if (c + W <= C)                                                                                        \
      vstore##W(vload##W(0, xr + c) + vload##W(0, g + c) * vload##W(0, yr + c), 0, o + c);                 \
    else                                                                                                   \
      for (; c < C; c++) o[c] = xr[c] + g[c] * yr[c];                                                      \
  }                                                                                                        \
  __kernel void gated_residual_backward_xy_w##W(__global float *dx, ulong dx_off, __global float *dy,       \
                                                ulong dy_off, __global const float *dout, ulong dout_off,   \
                                                __global const float *mod, ulong mod_off, int has_dx,       \
                                                int gate_col, int B, int T, int C, int ld) {                \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= C || r >= B * T) return;                                                                      \
    __global const float *g = mod + mod_off + (ulong)(r / T) * ld + gate_col;                              \
    __global const float *go = dout + dout_off + (ulong)r * C;                                             \
    __global float *dxr = dx + dx_off + (ulong)r * C, *dyr = dy + dy_off + (ulong)r * C;                   \
    if (c + W <= C) {                                                                                      \
      float##W gv = vload##W(0, go + c);                                                                   \
      if (has_dx) vstore##W(vload##W(0, dxr + c) + gv, 0, dxr + c);                                        \
      vstore##W(vload##W(0, dyr + c) + gv * vload##W(0, g + c), 0, dyr + c);                               \
    } else                                                                                                 \
      for (; c < C; c++) {                                                                                 \
        if (has_dx) dxr[c] += go[c];                                                                       \
        dyr[c] += go[c] * g[c];                                                                            \
      }                                                                                                    \
  }                                                                                                        \
  /* One work-item per (chunk of W channels, b), summing over tokens in order */                           \
  /* (deterministic; each channel's order is the same at any W). */                                        \
  __kernel void gated_residual_backward_gate_w##W(__global float *dmod, ulong dmod_off,                     \
                                                  __global const float *dout, ulong dout_off,               \
                                                  __global const float *y, ulong y_off, int gate_col, int B, \
                                                  int T, int C, int ld) {                                    \
    int c = get_global_id(0) * W, b = get_global_id(1);                                                    \
    if (c >= C || b >= B) return;                                                                          \
    __global const float *go = dout + dout_off + (ulong)b * T * C, *yb = y + y_off + (ulong)b * T * C;     \
    __global float *dg = dmod + dmod_off + (ulong)b * ld + gate_col;                                       \
    if (c + W <= C) {                                                                                      \
      float##W s = 0.0f;                                                                                   \
      for (int t = 0; t < T; t++) s += vload##W(0, go + (ulong)t * C + c) * vload##W(0, yb + (ulong)t * C + c); \
      vstore##W(vload##W(0, dg + c) + s, 0, dg + c);                                                       \
    } else                                                                                                 \
      for (; c < C; c++) {                                                                                 \
        float s = 0.0f;                                                                                    \
        for (int t = 0; t < T; t++) s += go[(ulong)t * C + c] * yb[(ulong)t * C + c];                      \
        dg[c] += s;                                                                                        \
      }                                                                                                    \
  }

GATED_RESIDUAL_KERNELS(4)
GATED_RESIDUAL_KERNELS(16)
