// Glue ops of the denoiser: per-row scaled sums, broadcast adds, token means.
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

__kernel void mean_tokens_forward(__global float *out, ulong out_off, __global const float *x, ulong x_off, int B,
                                  int T, int C) {
  ulong i = get_global_id(0);
  if (i >= (ulong)B * C) return;
  ulong b = i / C, c = i % C;
  float s = 0.0f;
  for (int t = 0; t < T; t++) s += x[x_off + (b * T + t) * C + c];
  out[out_off + i] = s / T;
}

__kernel void mean_tokens_backward(__global float *dx, ulong dx_off, __global const float *dout, ulong dout_off, int B,
                                   int T, int C) {
  ulong i = get_global_id(0);
  if (i >= (ulong)B * T * C) return;
  ulong c = i % C, b = i / ((ulong)T * C);
  dx[dx_off + i] += dout[dout_off + b * C + c] / T;
}
