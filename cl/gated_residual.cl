// Gated residual: out = x + gate[b] * y; gate at column gate_col of mod (B, ld).
// out may alias x: each work-item reads x[i] before writing out[i].
__kernel void gated_residual_forward(__global float *out, ulong out_off, __global const float *x, ulong x_off,
                                     __global const float *y, ulong y_off, __global const float *mod, ulong mod_off,
                                     int gate_col, int B, int T, int C, int ld) {
  ulong i = get_global_id(0);
  if (i >= (ulong)B * T * C) return;
  int c = i % C, b = i / ((ulong)T * C);
  out[out_off + i] = x[x_off + i] + mod[mod_off + (ulong)b * ld + gate_col + c] * y[y_off + i];
}

__kernel void gated_residual_backward_xy(__global float *dx, ulong dx_off, __global float *dy, ulong dy_off,
                                         __global const float *dout, ulong dout_off, __global const float *mod,
                                         ulong mod_off, int has_dx, int gate_col, int B, int T, int C, int ld) {
  ulong i = get_global_id(0);
  if (i >= (ulong)B * T * C) return;
  int c = i % C, b = i / ((ulong)T * C);
  float g = dout[dout_off + i];
  if (has_dx) dx[dx_off + i] += g;
  dy[dy_off + i] += g * mod[mod_off + (ulong)b * ld + gate_col + c];
}

// One work-item per (b, c), summing over tokens in order (deterministic).
__kernel void gated_residual_backward_gate(__global float *dmod, ulong dmod_off, __global const float *dout,
                                           ulong dout_off, __global const float *y, ulong y_off, int gate_col, int B,
                                           int T, int C, int ld) {
  ulong i = get_global_id(0);
  if (i >= (ulong)B * C) return;
  int c = i % C, b = i / C;
  ulong base = (ulong)b * T * C + c;
  float s = 0.0f;
  for (int t = 0; t < T; t++) s += dout[dout_off + base + (ulong)t * C] * y[y_off + base + (ulong)t * C];
  dmod[dmod_off + (ulong)b * ld + gate_col + c] += s;
}
