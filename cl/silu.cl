// SiLU: x * sigmoid(x); d/dx = s * (1 + x * (1 - s)).
// One kernel per vector width W (see ops/elementwise.c): work-item i handles
// elements [iW, iW + W), the last partial chunk element by element.
#define SILU_S(x) (1.0f / (1.0f + exp(-(x))))

#define SILU_KERNELS(W)                                                                                     \
  __kernel void silu_forward_w##W(__global float *out, ulong out_off, __global const float *inp,          \
                                  ulong inp_off, ulong n) {                                               \
    ulong i = get_global_id(0) * W;                                                                       \
    if (i + W <= n) {                                                                                     \
      float##W x = vload##W(0, inp + inp_off + i);                                                       \
      vstore##W(x * SILU_S(x), 0, out + out_off + i);                                                     \
    } else                                                                                                \
      for (; i < n; i++) {                                                                                \
        float x = inp[inp_off + i];                                                                       \
        out[out_off + i] = x * SILU_S(x);                                                                 \
      }                                                                                                   \
  }                                                                                                       \
  __kernel void silu_backward_w##W(__global float *dinp, ulong dinp_off, __global const float *dout,      \
                                   ulong dout_off, __global const float *inp, ulong inp_off, ulong n) {   \
    ulong i = get_global_id(0) * W;                                                                       \
    if (i + W <= n) {                                                                                     \
      float##W x = vload##W(0, inp + inp_off + i), s = SILU_S(x);                                        \
      float##W d = vload##W(0, dinp + dinp_off + i) + vload##W(0, dout + dout_off + i) * s * (1.0f + x * (1.0f - s)); \
      vstore##W(d, 0, dinp + dinp_off + i);                                                               \
    } else                                                                                                \
      for (; i < n; i++) {                                                                                \
        float x = inp[inp_off + i], s = SILU_S(x);                                                        \
        dinp[dinp_off + i] += dout[dout_off + i] * s * (1.0f + x * (1.0f - s));                           \
      }                                                                                                   \
  }

SILU_KERNELS(4)
SILU_KERNELS(16)
