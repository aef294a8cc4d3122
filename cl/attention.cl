// Multi-head self-attention (llm.c layout). The GEMMs run in CLBlast; these
// kernels move heads in and out of the (.., B, NH, T, hs) layout and do the
// row softmax and its backward. Every tensor comes as (buffer, element offset).

// dst (S, B, NH, T, hs) from src (B, T, ld): section s of head h of token t is
// src columns s*C + h*hs .. s*C + (h+1)*hs. S = 3 for packed qkv (ld = 3C),
// S = 1 for dout (ld = C). One work-item per dst element; writes coalesce.
__kernel void attention_gather_heads(__global float *dst, ulong dst_off, __global const float *src, ulong src_off,
                                     int S, int B, int T, int C, int NH, int ld) {
  ulong i = get_global_id(0);
  int hs = C / NH;
  ulong n = (ulong)S * B * NH * T * hs;
  if (i >= n) return;
  int d = (int)(i % hs);
  ulong r = i / hs;
  int t = (int)(r % T); r /= T;
  int h = (int)(r % NH); r /= NH;
  int b = (int)(r % B);
  int s = (int)(r / B);
  dst[dst_off + i] = src[src_off + ((ulong)b * T + t) * ld + (ulong)s * C + (ulong)h * hs + d];
}

// The inverse: dst (B, T, S*C) from src (S, B, NH, T, hs); accumulate != 0
// adds instead of storing. One work-item per dst element.
__kernel void attention_scatter_heads(__global float *dst, ulong dst_off, __global const float *src, ulong src_off,
                                      int S, int B, int T, int C, int NH, int accumulate) {
  ulong i = get_global_id(0);
  int hs = C / NH, ld = S * C;
  ulong n = (ulong)B * T * ld;
  if (i >= n) return;
  int col = (int)(i % ld);
  ulong bt = i / ld;
  int t = (int)(bt % T), b = (int)(bt / T);
  int s = col / C, c = col % C;
  int h = c / hs, d = c % hs;
  float v = src[src_off + ((((ulong)s * B + b) * NH + h) * T + t) * hs + d];
  if (accumulate) dst[dst_off + i] += v;
  else dst[dst_off + i] = v;
}



// mode: 0 bidirectional, 1 causal (key j visible to query i iff j <= i),
// 2 mask (visible iff mask[i*T + j] != 0).
int attn_visible(int mode, __global const float *mask, int i, int j, int T) {
  if (mode == 1) return j <= i;
  if (mode == 2) return mask[(ulong)i * T + j] != 0.0f;
  return 1;
}

// In place over att (B*NH*T rows of T scores): att = softmax(scale * scores)
// over the visible keys, exactly 0 elsewhere; a row with no visible key
// becomes all zeros. One work-group per row.
__kernel void attention_softmax_forward(__global float *att, ulong att_off, __global const float *mask,
                                        ulong mask_off, int T, float scale, int mode, __local float *buf) {
  ulong row = get_group_id(0);
  int lid = get_local_id(0), nl = get_local_size(0);
  int i = (int)(row % T); // the query
  __global float *a = att + att_off + row * T;
  __global const float *m = mode == 2 ? mask + mask_off : mask;
  int jend = mode == 1 ? i + 1 : T;
  float mx = -INFINITY;
  for (int j = lid; j < jend; j += nl)
    if (attn_visible(mode, m, i, j, T)) mx = fmax(mx, a[j]);
  mx = wg_max(buf, mx);
  if (mx == -INFINITY) { // nothing visible (or every visible score is -inf)
    for (int j = lid; j < T; j += nl) a[j] = 0.0f;
    return;
  }
  float s = 0.0f;
  for (int j = lid; j < T; j += nl) {
    float e = (j < jend && attn_visible(mode, m, i, j, T)) ? exp(scale * (a[j] - mx)) : 0.0f;
    a[j] = e;
    s += e;
  }
  float inv = 1.0f / wg_sum(buf, s);
  for (int j = lid; j < T; j += nl) a[j] *= inv; // each item rescales the entries it wrote
}

// In place over datt: dpre = scale * att * (datt - sum_j att*datt). Masked
// entries have att = 0 and so get 0. One work-group per row.
__kernel void attention_softmax_backward(__global float *datt, ulong datt_off, __global const float *att,
                                         ulong att_off, int T, float scale, __local float *buf) {
  ulong row = get_group_id(0);
  int lid = get_local_id(0), nl = get_local_size(0);
  __global float *dp = datt + datt_off + row * T;
  __global const float *p = att + att_off + row * T;
  float s = 0.0f;
  for (int j = lid; j < T; j += nl) s += p[j] * dp[j];
  s = wg_sum(buf, s);
  for (int j = lid; j < T; j += nl) dp[j] = scale * p[j] * (dp[j] - s);
}
