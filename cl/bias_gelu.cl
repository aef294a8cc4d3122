// Fused bias + GELU of the DiT MLP: out = gelu(x + bias[c]) over rows of C,
// one pass instead of linear's add_bias pass and then gelu's. GELU (tanh
// approximation) z * gelu_sig(z), its derivative gelu_grad (cl/common.clh,
// shared with cl/gelu.cl).
// One kernel per vector width W (see ops/elementwise.c), 2-D grid: dim 0 over
// W-wide chunks of a row, dim 1 over rows; a chunk crossing the row end runs
// element by element.
#define BG_S(z) gelu_sig(z)
#define BG_D(z, s) gelu_grad(z, s)

#define BIAS_GELU_KERNELS(W)                                                                                 \
  __kernel void bias_gelu_forward_w##W(__global float *out, ulong out_off, __global const float *inp,      \
                                       ulong inp_off, __global const float *bias, ulong bias_off, int N,    \
                                       int C) {                                                             \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= C || r >= N) return;                                                                          \
    __global const float *x = inp + inp_off + (ulong)r * C, *b = bias + bias_off;                          \
    __global float *y = out + out_off + (ulong)r * C;                                                      \
    if (c + W <= C) {                                                                                      \
      float##W z = vload##W(0, x + c) + vload##W(0, b + c);                                                \
      vstore##W(z * BG_S(z), 0, y + c);                                                                    \
    } else                                                                                                 \
      for (; c < C; c++) {                                                                                 \
        float z = x[c] + b[c];                                                                             \
        y[c] = z * BG_S(z);                                                                                \
      }                                                                                                    \
  }                                                                                                        \
  /* dinp += dout * gelu'(x + b) (accumulate = 1), or d = d * gelu'(x + b) in */                          \
  /* place (accumulate = 0, dinp and dout the same buffer). */                                             \
  __kernel void bias_gelu_backward_inp_w##W(__global float *dinp, ulong dinp_off, __global const float *dout, \
                                            ulong dout_off, __global const float *inp, ulong inp_off,       \
                                            __global const float *bias, ulong bias_off, int accumulate,     \
                                            int N, int C) {                                                 \
    int c = get_global_id(0) * W, r = get_global_id(1);                                                    \
    if (c >= C || r >= N) return;                                                                          \
    __global const float *x = inp + inp_off + (ulong)r * C, *b = bias + bias_off;                          \
    __global const float *g = dout + dout_off + (ulong)r * C;                                              \
    __global float *d = dinp + dinp_off + (ulong)r * C;                                                    \
    if (c + W <= C) {                                                                                      \
      float##W z = vload##W(0, x + c) + vload##W(0, b + c), s = BG_S(z);                                   \
      float##W v = vload##W(0, g + c) * BG_D(z, s);                                                        \
      if (accumulate) v += vload##W(0, d + c);                                                             \
      vstore##W(v, 0, d + c);                                                                              \
    } else                                                                                                 \
      for (; c < C; c++) {                                                                                 \
        float z = x[c] + b[c], s = BG_S(z), v = g[c] * BG_D(z, s);                                         \
        d[c] = accumulate ? d[c] + v : v;                                                                  \
      }                                                                                                    \
  }                                                                                                        \
  /* dbias[c] += sum over rows of dout * gelu'(x + b): one work-item per */                                \
  /* chunk of W columns, rows in order (deterministic). */                                                 \
  __kernel void bias_gelu_backward_bias_w##W(__global float *dbias, ulong dbias_off,                        \
                                             __global const float *dout, ulong dout_off,                    \
                                             __global const float *inp, ulong inp_off,                      \
                                             __global const float *bias, ulong bias_off, int N, int C) {    \
    int c = get_global_id(0) * W;                                                                          \
    if (c >= C) return;                                                                                    \
    __global const float *x = inp + inp_off, *g = dout + dout_off, *b = bias + bias_off;                   \
    __global float *db = dbias + dbias_off;                                                                \
    if (c + W <= C) {                                                                                      \
      float##W bv = vload##W(0, b + c), acc = 0.0f;                                                        \
      for (int r = 0; r < N; r++) {                                                                        \
        float##W z = vload##W(0, x + (ulong)r * C + c) + bv, s = BG_S(z);                                  \
        acc += vload##W(0, g + (ulong)r * C + c) * BG_D(z, s);                                             \
      }                                                                                                    \
      vstore##W(vload##W(0, db + c) + acc, 0, db + c);                                                     \
    } else                                                                                                 \
      for (; c < C; c++) {                                                                                 \
        float acc = 0.0f;                                                                                  \
        for (int r = 0; r < N; r++) {                                                                      \
          float z = x[(ulong)r * C + c] + b[c], s = BG_S(z);                                               \
          acc += g[(ulong)r * C + c] * BG_D(z, s);                                                         \
        }                                                                                                  \
        db[c] += acc;                                                                                      \
      }                                                                                                    \
  }

BIAS_GELU_KERNELS(4)
BIAS_GELU_KERNELS(16)
