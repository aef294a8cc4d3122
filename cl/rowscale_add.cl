// rowscale_add: out[i,:] = a[i] x[i,:] + b[i] y[i,:] (x optional).
// One kernel per vector width W (see ops/elementwise.c) on a 2-D grid: dim 0
// over W-wide chunks of a row of D, dim 1 over rows (no index division); a
// chunk crossing the row end runs element by element.
#define ROWSCALE_ADD_KERNELS(W)                                                                              \
  __kernel void rowscale_add_forward_w##W(__global float *out, ulong out_off, __global const float *a,      \
                                          ulong a_off, __global const float *x, ulong x_off,                \
                                          __global const float *b, ulong b_off, __global const float *y,    \
                                          ulong y_off, int has_x, int N, int D) {                           \
    int c = get_global_id(0) * W, n = get_global_id(1);                                                    \
    if (c >= D || n >= N) return;                                                                          \
    ulong r = (ulong)n * D;                                                                                \
    float bn = b[b_off + n], an = has_x ? a[a_off + n] : 0.0f;                                             \
    __global const float *xr = x + x_off + r, *yr = y + y_off + r;                                         \
    __global float *o = out + out_off + r;                                                                 \
    if (c + W <= D) {                                                                                      \
      float##W v = bn * vload##W(0, yr + c);                                                               \
      if (has_x) v += an * vload##W(0, xr + c);                                                            \
      vstore##W(v, 0, o + c);                                                                              \
    } else                                                                                                 \
      for (; c < D; c++) o[c] = has_x ? bn * yr[c] + an * xr[c] : bn * yr[c];                              \
  }                                                                                                        \
  __kernel void rowscale_add_backward_w##W(__global float *dx, ulong dx_off, __global float *dy, ulong dy_off, \
                                           __global const float *dout, ulong dout_off,                      \
                                           __global const float *a, ulong a_off, __global const float *b,   \
                                           ulong b_off, int has_dx, int has_dy, int N, int D) {             \
    int c = get_global_id(0) * W, n = get_global_id(1);                                                    \
    if (c >= D || n >= N) return;                                                                          \
    ulong r = (ulong)n * D;                                                                                \
    __global const float *g = dout + dout_off + r;                                                         \
    __global float *dxr = dx + dx_off + r, *dyr = dy + dy_off + r;                                         \
    if (c + W <= D) {                                                                                      \
      float##W gv = vload##W(0, g + c);                                                                    \
      if (has_dx) vstore##W(vload##W(0, dxr + c) + a[a_off + n] * gv, 0, dxr + c);                         \
      if (has_dy) vstore##W(vload##W(0, dyr + c) + b[b_off + n] * gv, 0, dyr + c);                         \
    } else                                                                                                 \
      for (; c < D; c++) {                                                                                 \
        if (has_dx) dxr[c] += a[a_off + n] * g[c];                                                         \
        if (has_dy) dyr[c] += b[b_off + n] * g[c];                                                         \
      }                                                                                                    \
  }

ROWSCALE_ADD_KERNELS(4)
ROWSCALE_ADD_KERNELS(16)
