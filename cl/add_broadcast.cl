// add_broadcast: out = x + y tiled over x (n = repeats * m).
// One kernel per vector width W (see ops/elementwise.c). The forward runs on
// a 2-D grid: dim 0 over W-wide chunks of y's m elements, dim 1 over the
// repeats (no i % m per element); a chunk crossing the end of y runs element
// by element.
#define ADD_BROADCAST_KERNELS(W)                                                                             \
  __kernel void add_broadcast_forward_w##W(__global float *out, ulong out_off, __global const float *x,     \
                                           ulong x_off, __global const float *y, ulong y_off, int m,        \
                                           int repeats) {                                                   \
    int j = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (j >= m || r >= repeats) return;                                                                    \
    __global const float *xr = x + x_off + (ulong)r * m, *yv = y + y_off;                                  \
    __global float *o = out + out_off + (ulong)r * m;                                                      \
    if (j + W <= m)                                                                                        \
      vstore##W(vload##W(0, xr + j) + vload##W(0, yv + j), 0, o + j);                                      \
    else                                                                                                   \
      for (; j < m; j++) o[j] = xr[j] + yv[j];                                                             \
  }                                                                                                        \
  __kernel void add_broadcast_backward_x_w##W(__global float *dx, ulong dx_off, __global const float *dout, \
                                              ulong dout_off, ulong n) {                                    \
    ulong i = get_global_id(0) * W;                                                                        \
    if (i + W <= n)                                                                                        \
      vstore##W(vload##W(0, dx + dx_off + i) + vload##W(0, dout + dout_off + i), 0, dx + dx_off + i);      \
    else                                                                                                   \
      for (; i < n; i++) dx[dx_off + i] += dout[dout_off + i];                                             \
  }                                                                                                        \
  /* One work-item per W elements of y: sums their repeats in order. */                                    \
  __kernel void add_broadcast_backward_y_w##W(__global float *dy, ulong dy_off, __global const float *dout, \
                                              ulong dout_off, int m, int repeats) {                         \
    int j = get_global_id(0) * W;                                                                          \
    if (j >= m) return;                                                                                    \
    __global const float *g = dout + dout_off;                                                             \
    __global float *d = dy + dy_off;                                                                       \
    if (j + W <= m) {                                                                                      \
      float##W s = 0.0f;                                                                                   \
      for (int r = 0; r < repeats; r++) s += vload##W(0, g + (ulong)r * m + j);                            \
      vstore##W(vload##W(0, d + j) + s, 0, d + j);                                                         \
    } else                                                                                                 \
      for (; j < m; j++) {                                                                                 \
        float s = 0.0f;                                                                                    \
        for (int r = 0; r < repeats; r++) s += g[(ulong)r * m + j];                                        \
        d[j] += s;                                                                                         \
      }                                                                                                    \
  }

ADD_BROADCAST_KERNELS(4)
ADD_BROADCAST_KERNELS(16)
