// Sinusoidal embedding of one scalar per sample:
// out[n] = [cos(t f_0), ..., cos(t f_{h-1}), sin(t f_0), ..., sin(t f_{h-1})],
// h = D/2, f_k = exp(-ln(max_period) k / h). Precise cos/sin/exp (no native_).
// log_mp = ln(max_period), computed on the host in double.

float freq(int k, int h, float log_mp) { return exp(-log_mp * ((float)k / (float)h)); }

// 2-D grid (j, n) over the D outputs of each sample.
__kernel void timestep_embedding_forward(__global float *out, ulong out_off, __global const float *t, ulong t_off,
                                         int N, int D, float log_mp) {
  int j = get_global_id(0), n = get_global_id(1);
  if (j >= D || n >= N) return;
  int h = D / 2, k = j < h ? j : j - h;
  float a = t[t_off + n] * freq(k, h, log_mp);
  out[out_off + (ulong)n * D + j] = j < h ? cos(a) : sin(a);
}


// dt[n] += sum_k f_k (-dcos_k sin(t f_k) + dsin_k cos(t f_k)); one work-group
// (power-of-two size chosen by the host) per sample.
__kernel void timestep_embedding_backward(__global float *dt, ulong dt_off, __global const float *dout,
                                          ulong dout_off, __global const float *t, ulong t_off, int D,
                                          float log_mp, __local float *buf) {
  int n = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  int h = D / 2;
  float tn = t[t_off + n];
  __global const float *dy = dout + dout_off + (ulong)n * D;
  float s = 0.0f;
  for (int k = lid; k < h; k += nl) {
    float f = freq(k, h, log_mp), a = tn * f;
    s += f * (dy[h + k] * cos(a) - dy[k] * sin(a));
  }
  s = wg_sum(buf, s);
  if (lid == 0) dt[dt_off + n] += s;
}
