// LayerNorm without affine parameters. One work-group per row; the work-group
// size is a power of two (the host picks it) so the tree reductions are simple;
// a group of one work-item (a CPU driver's choice) takes the vector path.


// One work-item per row (what a CPU driver gets): 16 independent partial sums
// in a vector, added in a fixed order (row_lanes_total, cl/common.clh), so the
// row is not one chain of C dependent adds. Deterministic; the work-group
// path sums in its own order.
float row_sum(__global const float *x, int C) {
  float16 acc = (float16)(0.0f);
  int i = 0;
  for (; i + 16 <= C; i += 16) acc += vload16(0, x + i);
  float s = row_lanes_total(acc);
  for (; i < C; i++) s += x[i];
  return s;
}

float row_centred_sumsq(__global const float *x, float m, int C) {
  float16 acc = (float16)(0.0f);
  int i = 0;
  for (; i + 16 <= C; i += 16) {
    float16 d = vload16(0, x + i) - m;
    acc += d * d;
  }
  float s = row_lanes_total(acc);
  for (; i < C; i++) s += (x[i] - m) * (x[i] - m);
  return s;
}

__kernel void layernorm_forward(__global float *out, ulong out_off, __global float *mean, ulong mean_off,
                                __global float *rstd, ulong rstd_off, __global const float *inp, ulong inp_off,
                                int C, float eps, __local float *buf) {
  int row = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  __global const float *x = inp + inp_off + (ulong)row * C;
  __global float *y = out + out_off + (ulong)row * C;
  if (nl == 1) {
    float m = row_sum(x, C) / C, r = rsqrt(row_centred_sumsq(x, m, C) / C + eps);
    int i = 0;
    for (; i + 16 <= C; i += 16) vstore16((vload16(0, x + i) - m) * r, 0, y + i);
    for (; i < C; i++) y[i] = (x[i] - m) * r;
    mean[mean_off + row] = m;
    rstd[rstd_off + row] = r;
    return;
  }
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
  if (nl == 1) {
    float16 a1 = (float16)(0.0f), a2 = (float16)(0.0f);
    int i = 0;
    for (; i + 16 <= C; i += 16) {
      float16 g = vload16(0, dy + i);
      a1 += g;
      a2 += g * (vload16(0, x + i) - m) * r;
    }
    float s1 = row_lanes_total(a1), s2 = row_lanes_total(a2);
    for (int j = i; j < C; j++) { s1 += dy[j]; s2 += dy[j] * (x[j] - m) * r; }
    float mdy = s1 / C, mdyx = s2 / C;
    for (i = 0; i + 16 <= C; i += 16)
      vstore16(vload16(0, dx + i) + r * (vload16(0, dy + i) - mdy - (vload16(0, x + i) - m) * r * mdyx), 0, dx + i);
    for (; i < C; i++) dx[i] += r * (dy[i] - mdy - (x[i] - m) * r * mdyx);
    return;
  }
  float s1 = 0.0f, s2 = 0.0f;
  for (int i = lid; i < C; i += nl) { s1 += dy[i]; s2 += dy[i] * (x[i] - m) * r; }
  float mdy = wg_sum(buf, s1) / C;
  float mdyx = wg_sum(buf, s2) / C;
  for (int i = lid; i < C; i += nl) dx[i] += r * (dy[i] - mdy - (x[i] - m) * r * mdyx);
}
