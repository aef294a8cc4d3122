// Bias broadcast for linear: the GEMM itself is ops/gemm.c's.
__kernel void add_bias(__global float *out, ulong out_off, __global const float *bias, ulong bias_off, int N, int OC) {
  ulong i = get_global_id(0);
  if (i >= (ulong)N * OC) return;
  out[out_off + i] += bias[bias_off + i % OC];
}
