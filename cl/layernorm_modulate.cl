// Fused LayerNorm (no affine) + AdaLN modulation, as every DiT branch runs them:
//   xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (two-pass variance),
//   out = xhat * (1 + scale[b]) + shift[b],
// shift/scale at columns shift_col/scale_col of the packed mod (B, ld), b = row / T.
// One pass over the output instead of layernorm's write and modulate's
// read + write of the normalised tensor; the backward never materialises it.
// One kernel per vector width W (see ops/elementwise.c): the row kernels take
// one row per work-item and walk it in W-wide chunks (a scalar loop for the
// rest); the dmod kernel takes a W-wide chunk of channels of one sample.

// Horizontal sums: (s0 + s1) + (s2 + s3) for 4 lanes; for 16, the sums of
// its four quarters so formed, added left to right. Not written lane by lane
// (v.s0 + v.s1 ...): LLVM turns that into a shufflevector with undef mask
// lanes, on which Oclgrind 21.10's --uninitialized checker crashes, and sums
// of shuffled upper lanes of a float16 get false "uninitialized" reports
// from it (tests/oclgrind/shuffle_undef_repro.c). An even/odd pair add and
// dot(t, 1), which is exactly t.x + t.y (x * 1 is exact), and the quarters
// read back from a private copy avoid both: same sums, bit for bit, on every
// device; once per row, so no measurable cost.
float lnm_hsum4(float4 v) { return dot(v.even + v.odd, (float2)(1.0f)); }
float lnm_hsum16(float16 v) {
  float t[16];
  vstore16(v, 0, t);
  return lnm_hsum4(vload4(0, t)) + lnm_hsum4(vload4(1, t)) + lnm_hsum4(vload4(2, t)) + lnm_hsum4(vload4(3, t));
}

#define LNM_KERNELS(W)                                                                                       \
  __kernel void layernorm_modulate_forward_w##W(__global float *out, ulong out_off, __global float *mean,   \
                                                ulong mean_off, __global float *rstd, ulong rstd_off,       \
                                                __global const float *inp, ulong inp_off,                   \
                                                __global const float *mod, ulong mod_off, int shift_col,    \
                                                int scale_col, int N, int T, int C, int ld, float eps) {    \
    int r = get_global_id(0);                                                                              \
    if (r >= N) return;                                                                                    \
    __global const float *x = inp + inp_off + (ulong)r * C;                                                \
    __global const float *sh = mod + mod_off + (ulong)(r / T) * ld + shift_col;                            \
    __global const float *sc = mod + mod_off + (ulong)(r / T) * ld + scale_col;                            \
    __global float *y = out + out_off + (ulong)r * C;                                                      \
    int cv = C / W * W, c;                                                                                 \
    float##W v = 0.0f;                                                                                     \
    float s = 0.0f;                                                                                        \
    for (c = 0; c < cv; c += W) v += vload##W(0, x + c);                                                   \
    for (c = cv; c < C; c++) s += x[c];                                                                    \
    float m = (lnm_hsum##W(v) + s) / C;                                                                    \
    v = 0.0f;                                                                                              \
    s = 0.0f;                                                                                              \
    for (c = 0; c < cv; c += W) {                                                                          \
      float##W d = vload##W(0, x + c) - m;                                                                 \
      v += d * d;                                                                                          \
    }                                                                                                      \
    for (c = cv; c < C; c++) s += (x[c] - m) * (x[c] - m);                                                 \
    float rs = 1.0f / sqrt((lnm_hsum##W(v) + s) / C + eps);                                                \
    for (c = 0; c < cv; c += W)                                                                            \
      vstore##W((vload##W(0, x + c) - m) * rs * (1.0f + vload##W(0, sc + c)) + vload##W(0, sh + c), 0, y + c); \
    for (c = cv; c < C; c++) y[c] = (x[c] - m) * rs * (1.0f + sc[c]) + sh[c];                              \
    mean[mean_off + r] = m;                                                                                \
    rstd[rstd_off + r] = rs;                                                                               \
  }                                                                                                        \
  /* dinp += rstd (g - mean(g) - xhat mean(g xhat)), g = dout (1 + scale). */                             \
  __kernel void layernorm_modulate_backward_inp_w##W(__global float *dinp, ulong dinp_off,                  \
                                                     __global const float *dout, ulong dout_off,            \
                                                     __global const float *inp, ulong inp_off,              \
                                                     __global const float *mean, ulong mean_off,            \
                                                     __global const float *rstd, ulong rstd_off,            \
                                                     __global const float *mod, ulong mod_off,              \
                                                     int scale_col, int N, int T, int C, int ld) {          \
    int r = get_global_id(0);                                                                              \
    if (r >= N) return;                                                                                    \
    __global const float *x = inp + inp_off + (ulong)r * C, *dy = dout + dout_off + (ulong)r * C;          \
    __global const float *sc = mod + mod_off + (ulong)(r / T) * ld + scale_col;                            \
    __global float *dx = dinp + dinp_off + (ulong)r * C;                                                   \
    float m = mean[mean_off + r], rs = rstd[rstd_off + r];                                                 \
    int cv = C / W * W, c;                                                                                 \
    float##W vg = 0.0f, vgx = 0.0f;                                                                        \
    float sg = 0.0f, sgx = 0.0f;                                                                           \
    for (c = 0; c < cv; c += W) {                                                                          \
      float##W g = vload##W(0, dy + c) * (1.0f + vload##W(0, sc + c));                                    \
      vg += g;                                                                                             \
      vgx += g * (vload##W(0, x + c) - m) * rs;                                                            \
    }                                                                                                      \
    for (c = cv; c < C; c++) {                                                                             \
      float g = dy[c] * (1.0f + sc[c]);                                                                    \
      sg += g;                                                                                             \
      sgx += g * (x[c] - m) * rs;                                                                          \
    }                                                                                                      \
    float mg = (lnm_hsum##W(vg) + sg) / C, mgx = (lnm_hsum##W(vgx) + sgx) / C;                             \
    for (c = 0; c < cv; c += W) {                                                                          \
      float##W g = vload##W(0, dy + c) * (1.0f + vload##W(0, sc + c));                                    \
      float##W xh = (vload##W(0, x + c) - m) * rs;                                                         \
      vstore##W(vload##W(0, dx + c) + rs * (g - mg - xh * mgx), 0, dx + c);                                \
    }                                                                                                      \
    for (c = cv; c < C; c++) {                                                                             \
      float g = dy[c] * (1.0f + sc[c]), xh = (x[c] - m) * rs;                                              \
      dx[c] += rs * (g - mg - xh * mgx);                                                                   \
    }                                                                                                      \
  }                                                                                                        \
  /* dshift += sum_t dout, dscale += sum_t dout xhat: one work-item per (chunk */                          \
  /* of W channels, sample b), tokens in order (deterministic). */                                         \
  __kernel void layernorm_modulate_backward_mod_w##W(__global float *dmod, ulong dmod_off,                  \
                                                     __global const float *dout, ulong dout_off,            \
                                                     __global const float *inp, ulong inp_off,              \
                                                     __global const float *mean, ulong mean_off,            \
                                                     __global const float *rstd, ulong rstd_off,            \
                                                     int shift_col, int scale_col, int B, int T, int C,     \
                                                     int ld) {                                              \
    int c = get_global_id(0) * W, b = get_global_id(1);                                                    \
    if (c >= C || b >= B) return;                                                                          \
    __global const float *dy = dout + dout_off + (ulong)b * T * C, *x = inp + inp_off + (ulong)b * T * C;  \
    __global const float *mb = mean + mean_off + (ulong)b * T, *rb = rstd + rstd_off + (ulong)b * T;       \
    __global float *dm = dmod + dmod_off + (ulong)b * ld;                                                  \
    if (c + W <= C) {                                                                                      \
      float##W dsh = 0.0f, dsc = 0.0f;                                                                     \
      for (int t = 0; t < T; t++) {                                                                        \
        float##W g = vload##W(0, dy + (ulong)t * C + c);                                                   \
        dsh += g;                                                                                          \
        dsc += g * ((vload##W(0, x + (ulong)t * C + c) - mb[t]) * rb[t]);                                  \
      }                                                                                                    \
      vstore##W(vload##W(0, dm + shift_col + c) + dsh, 0, dm + shift_col + c);                             \
      vstore##W(vload##W(0, dm + scale_col + c) + dsc, 0, dm + scale_col + c);                             \
    } else                                                                                                 \
      for (; c < C; c++) {                                                                                 \
        float dsh = 0.0f, dsc = 0.0f;                                                                      \
        for (int t = 0; t < T; t++) {                                                                      \
          float g = dy[(ulong)t * C + c];                                                                  \
          dsh += g;                                                                                        \
          dsc += g * ((x[(ulong)t * C + c] - mb[t]) * rb[t]);                                              \
        }                                                                                                  \
        dm[shift_col + c] += dsh;                                                                          \
        dm[scale_col + c] += dsc;                                                                          \
      }                                                                                                    \
  }

LNM_KERNELS(4)
LNM_KERNELS(16)

// Work-group-per-row versions for devices whose row-reduction group size
// (db_row_group_size) is above 1, i.e. GPUs: work-item lid takes columns
// lid, lid + L, ... (coalesced), and the row sums go through wg_sum. Same
// formulas as the W-wide kernels above; dmod uses the W-wide kernel on every
// device (one work-item per channel chunk and sample, no reduction across
// work-items).
__kernel void layernorm_modulate_forward_group(__global float *out, ulong out_off, __global float *mean,
                                               ulong mean_off, __global float *rstd, ulong rstd_off,
                                               __global const float *inp, ulong inp_off, __global const float *mod,
                                               ulong mod_off, int shift_col, int scale_col, int T, int C, int ld,
                                               float eps, __local float *buf) {
  int r = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
  __global const float *x = inp + inp_off + (ulong)r * C;
  __global const float *sh = mod + mod_off + (ulong)(r / T) * ld + shift_col;
  __global const float *sc = mod + mod_off + (ulong)(r / T) * ld + scale_col;
  __global float *y = out + out_off + (ulong)r * C;
  float s = 0.0f;
  for (int c = lid; c < C; c += L) s += x[c];
  float m = wg_sum(buf, s) / C;
  s = 0.0f;
  for (int c = lid; c < C; c += L) s += (x[c] - m) * (x[c] - m);
  float rs = 1.0f / sqrt(wg_sum(buf, s) / C + eps);
  for (int c = lid; c < C; c += L) y[c] = (x[c] - m) * rs * (1.0f + sc[c]) + sh[c];
  if (lid == 0) {
    mean[mean_off + r] = m;
    rstd[rstd_off + r] = rs;
  }
}

__kernel void layernorm_modulate_backward_inp_group(__global float *dinp, ulong dinp_off, __global const float *dout,
                                                    ulong dout_off, __global const float *inp, ulong inp_off,
                                                    __global const float *mean, ulong mean_off,
                                                    __global const float *rstd, ulong rstd_off,
                                                    __global const float *mod, ulong mod_off, int scale_col, int T,
                                                    int C, int ld, __local float *buf) {
  int r = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
  __global const float *x = inp + inp_off + (ulong)r * C, *dy = dout + dout_off + (ulong)r * C;
  __global const float *sc = mod + mod_off + (ulong)(r / T) * ld + scale_col;
  __global float *dx = dinp + dinp_off + (ulong)r * C;
  float m = mean[mean_off + r], rs = rstd[rstd_off + r], sg = 0.0f, sgx = 0.0f;
  for (int c = lid; c < C; c += L) {
    float g = dy[c] * (1.0f + sc[c]);
    sg += g;
    sgx += g * (x[c] - m) * rs;
  }
  float mg = wg_sum(buf, sg) / C, mgx = wg_sum(buf, sgx) / C;
  for (int c = lid; c < C; c += L) {
    float g = dy[c] * (1.0f + sc[c]), xh = (x[c] - m) * rs;
    dx[c] += rs * (g - mg - xh * mgx);
  }
}
