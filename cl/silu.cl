// SiLU: x * sigmoid(x); d/dx = s * (1 + x * (1 - s)).
__kernel void silu_forward(__global float *out, ulong out_off, __global const float *inp, ulong inp_off, ulong n) {
  ulong i = get_global_id(0);
  if (i >= n) return;
  float x = inp[inp_off + i];
  out[out_off + i] = x / (1.0f + exp(-x));
}
__kernel void silu_backward(__global float *dinp, ulong dinp_off, __global const float *dout, ulong dout_off,
                            __global const float *inp, ulong inp_off, ulong n) {
  ulong i = get_global_id(0);
  if (i >= n) return;
  float x = inp[inp_off + i], s = 1.0f / (1.0f + exp(-x));
  dinp[dinp_off + i] += dout[dout_off + i] * s * (1.0f + x * (1.0f - s));
}
