// mean_tokens: (B,T,C) -> (B,C) mean over tokens.
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
