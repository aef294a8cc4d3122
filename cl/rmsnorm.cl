// RMSNorm without affine parameters (AdaLN supplies the scale):
// out = x * rstd, rstd = 1 / sqrt(mean(x^2) + eps). One work-group per row,
// a power-of-two size (the host picks it); a group of one work-item (a CPU
// driver's choice) sums 16 lanes of a vector (row_lanes_total, fixed order).

// sum of a[i] * b[i] over a row, by one work-item
float row_dot(__global const float *a, __global const float *b, int C) {
  float16 acc = (float16)(0.0f);
  int i = 0;
  for (; i + 16 <= C; i += 16) acc += vload16(0, a + i) * vload16(0, b + i);
  float s = row_lanes_total(acc);
  for (; i < C; i++) s += a[i] * b[i];
  return s;
}

__kernel void rmsnorm_forward(__global float *out, ulong out_off, __global float *rstd, ulong rstd_off,
                              __global const float *inp, ulong inp_off, int C, float eps, __local float *buf) {
  int row = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  __global const float *x = inp + inp_off + (ulong)row * C;
  __global float *y = out + out_off + (ulong)row * C;
  float ss;
  if (nl == 1) ss = row_dot(x, x, C);
  else {
    float s = 0.0f;
    for (int i = lid; i < C; i += nl) s += x[i] * x[i];
    ss = wg_sum(buf, s);
  }
  float r = rsqrt(ss / C + eps);
  for (int i = lid; i < C; i += nl) y[i] = x[i] * r;
  if (lid == 0) rstd[rstd_off + row] = r;
}

// dx += rstd * (dy - xhat * mean(dy * xhat)), xhat = x * rstd
__kernel void rmsnorm_backward(__global float *dinp, ulong dinp_off, __global const float *dout, ulong dout_off,
                               __global const float *inp, ulong inp_off, __global const float *rstd, ulong rstd_off,
                               int C, __local float *buf) {
  int row = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  __global const float *x = inp + inp_off + (ulong)row * C;
  __global const float *dy = dout + dout_off + (ulong)row * C;
  __global float *dx = dinp + dinp_off + (ulong)row * C;
  float r = rstd[rstd_off + row], sdx;
  if (nl == 1) sdx = row_dot(dy, x, C);
  else {
    float s = 0.0f;
    for (int i = lid; i < C; i += nl) s += dy[i] * x[i];
    sdx = wg_sum(buf, s);
  }
  float k = sdx * r * r / C; // mean(dy * xhat) * rstd: x[i] * k = xhat[i] * mean(dy * xhat)
  for (int i = lid; i < C; i += nl) dx[i] += r * (dy[i] - x[i] * k);
}
