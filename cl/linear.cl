// Bias broadcast for linear (the GEMM itself is ops/gemm.c's): out[r, :] += bias,
// W floats per work-item on a (chunk, row) grid like the elementwise kernels
// (ops/elementwise.c): no per-element index division.
#define ADD_BIAS_KERNEL(W)                                                                                  \
  __kernel void add_bias_w##W(__global float *out, ulong out_off, __global const float *bias, ulong bias_off, \
                              int N, int OC) {                                                             \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= OC || r >= N) return;                                                                         \
    __global float *o = out + out_off + (ulong)r * OC;                                                     \
    __global const float *b = bias + bias_off;                                                             \
    if (c + W <= OC)                                                                                       \
      vstore##W(vload##W(0, o + c) + vload##W(0, b + c), 0, o + c);                                        \
    else                                                                                                   \
      for (; c < OC; c++) o[c] += b[c];                                                                    \
  }
ADD_BIAS_KERNEL(4)
ADD_BIAS_KERNEL(16)
