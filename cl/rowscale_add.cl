// rowscale_add: out[i,:] = a[i] x[i,:] + b[i] y[i,:] (x optional).
__kernel void rowscale_add_forward(__global float *out, ulong out_off, __global const float *a, ulong a_off,
                                   __global const float *x, ulong x_off, __global const float *b, ulong b_off,
                                   __global const float *y, ulong y_off, int has_x, int N, int D) {
  ulong i = get_global_id(0);
  if (i >= (ulong)N * D) return;
  ulong n = i / D;
  float v = b[b_off + n] * y[y_off + i];
  if (has_x) v += a[a_off + n] * x[x_off + i];
  out[out_off + i] = v;
}

__kernel void rowscale_add_backward(__global float *dx, ulong dx_off, __global float *dy, ulong dy_off,
                                    __global const float *dout, ulong dout_off, __global const float *a, ulong a_off,
                                    __global const float *b, ulong b_off, int has_dx, int has_dy, int N, int D) {
  ulong i = get_global_id(0);
  if (i >= (ulong)N * D) return;
  ulong n = i / D;
  float g = dout[dout_off + i];
  if (has_dx) dx[dx_off + i] += a[a_off + n] * g;
  if (has_dy) dy[dy_off + i] += b[b_off + n] * g;
}
