// add_broadcast: out = x + y tiled over x.
__kernel void add_broadcast_forward(__global float *out, ulong out_off, __global const float *x, ulong x_off,
                                    __global const float *y, ulong y_off, ulong n, ulong m) {
  ulong i = get_global_id(0);
  if (i >= n) return;
  out[out_off + i] = x[x_off + i] + y[y_off + i % m];
}

__kernel void add_broadcast_backward_x(__global float *dx, ulong dx_off, __global const float *dout, ulong dout_off,
                                       ulong n) {
  ulong i = get_global_id(0);
  if (i >= n) return;
  dx[dx_off + i] += dout[dout_off + i];
}

// One work-item per element of y: sums its n/m repeats in order.
__kernel void add_broadcast_backward_y(__global float *dy, ulong dy_off, __global const float *dout, ulong dout_off,
                                       ulong n, ulong m) {
  ulong j = get_global_id(0);
  if (j >= m) return;
  float s = 0.0f;
  for (ulong i = j; i < n; i += m) s += dout[dout_off + i];
  dy[dy_off + j] += s;
}
