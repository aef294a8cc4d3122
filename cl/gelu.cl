// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#define GELU_K 0.7978845608028654f
__kernel void gelu_forward(__global float *out, ulong out_off, __global const float *inp, ulong inp_off, ulong n) {
  ulong i = get_global_id(0);
  if (i >= n) return;
  float x = inp[inp_off + i];
  out[out_off + i] = 0.5f * x * (1.0f + tanh(GELU_K * (x + 0.044715f * x * x * x)));
}
__kernel void gelu_backward(__global float *dinp, ulong dinp_off, __global const float *dout, ulong dout_off,
                            __global const float *inp, ulong inp_off, ulong n) {
  ulong i = get_global_id(0);
  if (i >= n) return;
  float x = inp[inp_off + i];
  float th = tanh(GELU_K * (x + 0.044715f * x * x * x));
  float d = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
  dinp[dinp_off + i] += dout[dout_off + i] * d;
}

// In place: d = d * gelu'(x). For callers that need no separate input gradient
// buffer (the DiT layer's MLP, where it saves a (B,T,4C) scratch).
__kernel void gelu_backward_inplace(__global float *d, ulong d_off, __global const float *inp, ulong inp_off, ulong n) {
  ulong i = get_global_id(0);
  if (i >= n) return;
  float x = inp[inp_off + i];
  float th = tanh(GELU_K * (x + 0.044715f * x * x * x));
  d[d_off + i] *= 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
}
