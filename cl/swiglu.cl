// SwiGLU of a fused linear's output: inp (N, 2H) is [a | b] per row,
// out (N, H) = silu(a) * b, silu(a) = a * sigmoid(a);
// backward: da += dout * b * s (1 + a (1 - s)), db += dout * a * s, s = sigmoid(a).
// The sigmoid never overflows: e = exp(-|a|) <= 1, s = 1/(1+e) for a >= 0,
// e/(1+e) below (so s is 0 at -inf, not a NaN, and has no cancellation).
// One kernel per vector width W (see ops/elementwise.c), 2-D grid: dim 0 over
// W-wide chunks of the H columns, dim 1 over rows; a chunk crossing the row
// end runs element by element.
#define SWIGLU_SIG(T)                                                                                        \
  __attribute__((overloadable)) T swiglu_sig(T x) {                                                          \
    T e = exp(-fabs(x)), r = 1.0f / (1.0f + e);                                                              \
    return select(e * r, r, x >= 0.0f);                                                                      \
  }
SWIGLU_SIG(float)
SWIGLU_SIG(float4)
SWIGLU_SIG(float16)

#define SWIGLU_KERNELS(W)                                                                                    \
  __kernel void swiglu_forward_w##W(__global float *out, ulong out_off, __global const float *inp,         \
                                    ulong inp_off, int N, int H) {                                          \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= H || r >= N) return;                                                                          \
    __global const float *a = inp + inp_off + (ulong)r * 2 * H, *b = a + H;                                \
    __global float *y = out + out_off + (ulong)r * H;                                                      \
    if (c + W <= H) {                                                                                      \
      float##W x = vload##W(0, a + c);                                                                     \
      vstore##W(x * swiglu_sig(x) * vload##W(0, b + c), 0, y + c);                                        \
    } else                                                                                                 \
      for (; c < H; c++) y[c] = a[c] * swiglu_sig(a[c]) * b[c];                                            \
  }                                                                                                        \
  __kernel void swiglu_backward_w##W(__global float *dinp, ulong dinp_off, __global const float *dout,     \
                                     ulong dout_off, __global const float *inp, ulong inp_off, int N, int H) { \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= H || r >= N) return;                                                                          \
    __global const float *a = inp + inp_off + (ulong)r * 2 * H, *b = a + H;                                \
    __global const float *g = dout + dout_off + (ulong)r * H;                                              \
    __global float *da = dinp + dinp_off + (ulong)r * 2 * H, *db = da + H;                                 \
    if (c + W <= H) {                                                                                      \
      float##W x = vload##W(0, a + c), s = swiglu_sig(x), d = vload##W(0, g + c);                          \
      vstore##W(vload##W(0, da + c) + d * vload##W(0, b + c) * s * (1.0f + x * (1.0f - s)), 0, da + c);   \
      vstore##W(vload##W(0, db + c) + d * x * s, 0, db + c);                                               \
    } else                                                                                                 \
      for (; c < H; c++) {                                                                                 \
        float x = a[c], s = swiglu_sig(x);                                                                 \
        da[c] += g[c] * b[c] * s * (1.0f + x * (1.0f - s));                                                \
        db[c] += g[c] * x * s;                                                                             \
      }                                                                                                    \
  }

SWIGLU_KERNELS(4)
SWIGLU_KERNELS(16)
