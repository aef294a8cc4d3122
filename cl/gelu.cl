// GELU, tanh approximation (gelu_sig, gelu_grad in cl/common.clh).
// One kernel per vector width W (see ops/elementwise.c): work-item i handles
// elements [iW, iW + W), the last partial chunk element by element.
#define GELU_S(x) gelu_sig(x)
#define GELU_D(x, s) gelu_grad(x, s)

#define GELU_KERNELS(W)                                                                                     \
  __kernel void gelu_forward_w##W(__global float *out, ulong out_off, __global const float *inp,          \
                                  ulong inp_off, ulong n) {                                               \
    ulong i = get_global_id(0) * W;                                                                       \
    if (i + W <= n) {                                                                                     \
      float##W x = vload##W(0, inp + inp_off + i);                                                       \
      vstore##W(x * GELU_S(x), 0, out + out_off + i);                                                     \
    } else                                                                                                \
      for (; i < n; i++) {                                                                                \
        float x = inp[inp_off + i];                                                                       \
        out[out_off + i] = x * GELU_S(x);                                                                 \
      }                                                                                                   \
  }                                                                                                       \
  __kernel void gelu_backward_w##W(__global float *dinp, ulong dinp_off, __global const float *dout,      \
                                   ulong dout_off, __global const float *inp, ulong inp_off, ulong n) {   \
    ulong i = get_global_id(0) * W;                                                                       \
    if (i + W <= n) {                                                                                     \
      float##W x = vload##W(0, inp + inp_off + i), s = GELU_S(x);                                        \
      float##W d = vload##W(0, dinp + dinp_off + i) + vload##W(0, dout + dout_off + i) * GELU_D(x, s);   \
      vstore##W(d, 0, dinp + dinp_off + i);                                                               \
    } else                                                                                                \
      for (; i < n; i++) {                                                                                \
        float x = inp[inp_off + i], s = GELU_S(x);                                                        \
        dinp[dinp_off + i] += dout[dout_off + i] * GELU_D(x, s);                                          \
      }                                                                                                   \
  }                                                                                                       \
  /* In place: d = d * gelu'(x), for callers with no separate input-gradient */                          \
  /* buffer (the DiT MLP, where it saves a (B,T,4C) scratch). */                                          \
  __kernel void gelu_backward_inplace_w##W(__global float *d, ulong d_off, __global const float *inp,     \
                                           ulong inp_off, ulong n) {                                      \
    ulong i = get_global_id(0) * W;                                                                       \
    if (i + W <= n) {                                                                                     \
      float##W x = vload##W(0, inp + inp_off + i), s = GELU_S(x);                                        \
      vstore##W(vload##W(0, d + d_off + i) * GELU_D(x, s), 0, d + d_off + i);                            \
    } else                                                                                                \
      for (; i < n; i++) {                                                                                \
        float x = inp[inp_off + i], s = GELU_S(x);                                                        \
        d[d_off + i] *= GELU_D(x, s);                                                                     \
      }                                                                                                   \
  }

GELU_KERNELS(4)
GELU_KERNELS(16)
