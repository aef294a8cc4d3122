// LayerNorm without affine parameters. One work-group per row; the work-group
// size is a power of two (the host picks it) so the tree reductions are simple.


__kernel void layernorm_forward(__global float *out, ulong out_off, __global float *mean, ulong mean_off,
                                __global float *rstd, ulong rstd_off, __global const float *inp, ulong inp_off,
                                int C, float eps, __local float *buf) {
  int row = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  __global const float *x = inp + inp_off + (ulong)row * C;
  __global float *y = out + out_off + (ulong)row * C;
  float s = 0.0f;
  for (int i = lid; i < C; i += nl) s += x[i];
  float m = wg_sum(buf, s) / C;
  // second pass over the centred values: no cancellation for large means
  float v = 0.0f;
  for (int i = lid; i < C; i += nl) { float d = x[i] - m; v += d * d; }
  float r = rsqrt(wg_sum(buf, v) / C + eps);
  for (int i = lid; i < C; i += nl) y[i] = (x[i] - m) * r;
  if (lid == 0) { mean[mean_off + row] = m; rstd[rstd_off + row] = r; }
}

// dx += rstd * (dy - mean(dy) - xhat * mean(dy * xhat))
__kernel void layernorm_backward(__global float *dinp, ulong dinp_off, __global const float *dout, ulong dout_off,
                                 __global const float *inp, ulong inp_off, __global const float *mean,
                                 ulong mean_off, __global const float *rstd, ulong rstd_off, int C,
                                 __local float *buf) {
  int row = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  __global const float *x = inp + inp_off + (ulong)row * C;
  __global const float *dy = dout + dout_off + (ulong)row * C;
  __global float *dx = dinp + dinp_off + (ulong)row * C;
  float m = mean[mean_off + row], r = rstd[rstd_off + row];
  float s1 = 0.0f, s2 = 0.0f;
  for (int i = lid; i < C; i += nl) { s1 += dy[i]; s2 += dy[i] * (x[i] - m) * r; }
  float mdy = wg_sum(buf, s1) / C;
  float mdyx = wg_sum(buf, s2) / C;
  for (int i = lid; i < C; i += nl) dx[i] += r * (dy[i] - mdy - (x[i] - m) * r * mdyx);
}
