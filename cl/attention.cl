// Fused multi-head attention, FlashAttention-2 style: q, k, v are read
// straight from the packed qkv (B, T, 3C) rows ([q | k | v], head h in columns
// h*hs .. (h+1)*hs of each), the forward keeps a running max and sum per query
// (online softmax) and saves only the log-sum-exp (B, NH, T); the backward
// recomputes each probability from q, k and that LSE. No (T, T) matrix exists
// anywhere. Every tensor comes as (buffer, element offset).
//
// Two launch shapes of the same arithmetic:
//   *_rows:  one work-item per row, keys (or queries) read from global memory,
//            no barriers: the CPU path (PoCL runs a work-group as a loop).
//   *_tiled: one work-group per (sample, head, block of get_local_size rows);
//            the group stages `tk` keys (or queries) at a time in local memory
//            behind barriers, each work-item then reads them from there: the
//            GPU path. Work-items past the last row load tiles but write nothing.
// mode: 0 bidirectional, 1 causal (query i sees key j iff j <= i), 2 mask
// (iff mask[b*mask_bstride + i*T + j] != 0; mask_bstride 0 shares one (T,T)),
// 3 block diffusion over T = 2n tokens [noisy 0..n-1 | clean 0..n-1]: noisy
// query i sees key i and clean keys n+j, j < i; clean query n+i sees clean
// keys n+j, j <= i. Modes 1 and 3 visit only the key (query) ranges a query
// (key) can see, and the tiled kernels skip tiles no row of the group sees.
// A query that sees no key outputs 0 and saves lse 0 (never read: such a
// query is visible to no key, so no backward loop reaches it).

#define HS_MAX 128 // private row buffers; the host rejects larger heads

// The per-row geometry shared by every kernel: row r of the flat (B, NH, T)
// order is token i of head h of sample b.
typedef struct {
  int b, h, i, hs;
  ulong ld;  // floats per qkv token: 3C
  ulong tok; // first qkv float of this sample's token 0, head h (q section)
} attn_row;

attn_row attn_row_of(ulong bh, int i, int T, int C, int NH) {
  attn_row r;
  // x - q * y, not x % y beside x / y: that pair makes LLVM emit a `freeze`,
  // which Oclgrind cannot run (tests/oclgrind/freeze_repro.c)
  r.b = (int)(bh / NH);
  r.h = (int)(bh - (ulong)r.b * NH);
  r.i = i;
  r.hs = C / NH;
  r.ld = 3 * (ulong)C;
  r.tok = (ulong)r.b * T * r.ld + (ulong)r.h * r.hs;
  return r;
}

int attn_visible(int mode, __global const float *m, int i, int j, int T) {
  if (mode == 1) return j <= i;
  if (mode == 2) return m[(ulong)i * T + j] != 0.0f;
  if (mode == 3) {
    int n = T >> 1;
    return i < n ? j == i || (j >= n && j < n + i) : j >= n && j <= i;
  }
  return 1;
}

// The keys query i can see, as two ranges [x, y) and [z, w) (the second
// often empty): causal stops at the diagonal; a noisy query of mode 3 sees
// itself and clean keys [n, n+i), a clean one [n, i].
int4 attn_key_ranges(int mode, int i, int T) {
  int n = T >> 1;
  if (mode == 1) return (int4)(0, min(i + 1, T), 0, 0);
  if (mode == 3) return i < n ? (int4)(i, i + 1, n, n + i) : (int4)(n, i + 1, 0, 0);
  return (int4)(0, T, 0, 0);
}
// The queries that can see key j, likewise: causal starts at the diagonal; a
// noisy key of mode 3 is seen by its own query only, clean key j by noisy
// queries (j-n, n) and clean queries [j, T).
int4 attn_query_ranges(int mode, int j, int T) {
  int n = T >> 1;
  if (mode == 1) return (int4)(j, T, 0, 0);
  if (mode == 3) return j < n ? (int4)(j, j + 1, 0, 0) : (int4)(j - n + 1, n, j, T);
  return (int4)(0, T, 0, 0);
}
// Keys a group of queries i0..i1 can see lie in [begin, end): the key ranges'
// hull (mode 3: begin grows with i; the end does not, it peaks at query n-1).
int attn_group_key_begin(int mode, int i0, int T) { return mode == 3 ? attn_key_ranges(3, i0, T).x : 0; }
int attn_group_key_end(int mode, int i0, int i1, int T) {
  if (mode == 1) return min(i1 + 1, T);
  if (mode != 3) return T;
  int n = T >> 1, e = i1 < n ? n + i1 : i1 + 1;
  return i0 < n ? max(e, n + min(i1, n - 1)) : e;
}
// Queries a group of keys j0..j1 is seen by start at: (the hull, as above)
int attn_group_query_begin(int mode, int j0, int j1, int T) {
  if (mode == 1) return j0;
  if (mode != 3) return 0;
  int n = T >> 1;
  return j0 < n ? (j1 >= n ? min(j0, 1) : j0) : j0 - n + 1;
}
// 0 when no query of i0..i1 sees any key of j0..j1 (bounds inclusive): a
// tile the whole group may skip. Only mode 3 has such tiles inside the hulls.
int attn_tile_needed(int mode, int i0, int i1, int j0, int j1, int T) {
  if (mode != 3) return 1;
  int n = T >> 1;
  if (max(i0, j0) <= min(min(i1, j1), n - 1)) return 1; // a noisy query on its own key
  int k0 = max(j0, n);                                   // the first clean key
  if (k0 > j1) return 0;
  return (i0 < n && k0 < n + min(i1, n - 1)) || (i1 >= n && k0 <= i1);
}

__global const float *attn_mask_of(int mode, __global const float *mask, ulong mask_off, ulong mask_bstride, int b) {
  return mode == 2 ? mask + mask_off + (ulong)b * mask_bstride : mask;
}

// Dot products and axpys over a head row, for each address space the
// second operand can live in.
// The row operands stay where they are (global memory, or the local tile):
// only the accumulators are private, so that a work-group of thousands of
// items (PoCL's maximum is 4096) fits the stack of a CPU driver's thread.
// Dot products sum 8 interleaved partial sums (d mod 8), then the 8 lanes in
// a fixed order, then the tail: a fixed order (no fast-math reassociation)
// whose 8 independent chains vectorise and do not wait on one add each. Every
// score goes through the same dot, so backward and forward agree bit for bit.
#define ATTN_ROW_HELPERS(AS, SFX)                                                        \
  float dot_##SFX(__global const float *a, AS const float *b, int n) {                  \
    float8 acc = (float8)(0.0f);                                                         \
    int d = 0;                                                                           \
    for (; d + 8 <= n; d += 8) acc += vload8(0, a + d) * vload8(0, b + d);               \
    float4 h = acc.lo + acc.hi;                                                          \
    float s = dot(h.even + h.odd, (float2)(1.0f)); /* lane sums Oclgrind can check */     \
    for (; d < n; d++) s += a[d] * b[d];                                                 \
    return s;                                                                            \
  }                                                                                      \
  void axpy_##SFX(float *y, float a, AS const float *x, int n) {                        \
    int d = 0;                                                                           \
    for (; d + 8 <= n; d += 8) vstore8(vload8(0, y + d) + a * vload8(0, x + d), 0, y + d); \
    for (; d < n; d++) y[d] += a * x[d];                                                 \
  }
ATTN_ROW_HELPERS(__global, g)
ATTN_ROW_HELPERS(__local, l)

// Four rows at once for the *_rows kernels: each of the four dots is
// computed exactly as dot_g computes it (same lanes, same order), but their
// four chains interleave, and the axpy reads and writes y once for four rows.
float4 dot4_g(__global const float *a, __global const float *b0, __global const float *b1,
              __global const float *b2, __global const float *b3, int n) {
  float8 c0 = (float8)(0.0f), c1 = c0, c2 = c0, c3 = c0;
  int d = 0;
  for (; d + 8 <= n; d += 8) {
    float8 x = vload8(0, a + d);
    c0 += x * vload8(0, b0 + d);
    c1 += x * vload8(0, b1 + d);
    c2 += x * vload8(0, b2 + d);
    c3 += x * vload8(0, b3 + d);
  }
  float4 h0 = c0.lo + c0.hi, h1 = c1.lo + c1.hi, h2 = c2.lo + c2.hi, h3 = c3.lo + c3.hi;
  const float2 one = (float2)(1.0f);
  float4 s = (float4)(dot(h0.even + h0.odd, one), dot(h1.even + h1.odd, one), dot(h2.even + h2.odd, one),
                      dot(h3.even + h3.odd, one));
  for (; d < n; d++) {
    s.x += a[d] * b0[d];
    s.y += a[d] * b1[d];
    s.z += a[d] * b2[d];
    s.w += a[d] * b3[d];
  }
  return s;
}

void axpy4_g(float *y, float4 p, __global const float *x0, __global const float *x1, __global const float *x2,
             __global const float *x3, int n) {
  int d = 0;
  for (; d + 8 <= n; d += 8)
    vstore8(vload8(0, y + d) + ((p.x * vload8(0, x0 + d) + p.y * vload8(0, x1 + d)) +
                                (p.z * vload8(0, x2 + d) + p.w * vload8(0, x3 + d))),
            0, y + d);
  for (; d < n; d++) y[d] += (p.x * x0[d] + p.y * x1[d]) + (p.z * x2[d] + p.w * x3[d]);
}

// Visibility of (query i, key j) for the four pairs (i + k*di, j + k*dj), k = 0..3.
int4 attn_visible4(int mode, __global const float *m, int i, int di, int j, int dj, int T) {
  return (int4)(attn_visible(mode, m, i, j, T), attn_visible(mode, m, i + di, j + dj, T),
                attn_visible(mode, m, i + 2 * di, j + 2 * dj, T), attn_visible(mode, m, i + 3 * di, j + 3 * dj, T));
}

// x where visible, else `other`
float4 attn_where4(int4 vis, float4 x, float other) {
  return (float4)(vis.x ? x.x : other, vis.y ? x.y : other, vis.z ? x.z : other, vis.w ? x.w : other);
}

// One online-softmax step: key score s joins the running max mx and sum l;
// acc (the unnormalised output) is rescaled when the max grows.
float attn_online_weight(float s, float *mx, float *l, float *acc, int hs) {
  if (s > *mx) {
    float corr = exp(*mx - s); // 0 on the first visible key (mx = -inf)
    *l *= corr;
    for (int d = 0; d < hs; d++) acc[d] *= corr;
    *mx = s;
  }
  float p = exp(s - *mx);
  *l += p;
  return p;
}

void attn_store_row(__global float *out, ulong out_off, __global float *lse, ulong lse_off, ulong row, attn_row r,
                    int T, int C, float mx, float l, const float *acc) {
  __global float *o = out + out_off + ((ulong)r.b * T + r.i) * C + (ulong)r.h * r.hs;
  if (mx == -INFINITY) { // no visible key
    for (int d = 0; d < r.hs; d++) o[d] = 0.0f;
    lse[lse_off + row] = 0.0f;
    return;
  }
  float inv = 1.0f / l;
  for (int d = 0; d < r.hs; d++) o[d] = acc[d] * inv;
  lse[lse_off + row] = mx + log(l);
}

// A score is scale * (q . k), summed in d order, in every kernel: the
// backward's probabilities exp(score - lse) then match the forward's exactly.

// ---------------------------------------------------------------- forward

__kernel void attention_forward_rows(__global float *out, ulong out_off, __global float *lse, ulong lse_off,
                                     __global const float *qkv, ulong qkv_off, __global const float *mask,
                                     ulong mask_off, ulong mask_bstride, int B, int T, int C, int NH, float scale,
                                     int mode) {
  ulong row = get_global_id(0);
  if (row >= (ulong)B * NH * T) return;
  ulong bh = row / T;
  attn_row r = attn_row_of(bh, (int)(row - bh * T), T, C, NH);
  __global const float *m = attn_mask_of(mode, mask, mask_off, mask_bstride, r.b);
  __global const float *keys = qkv + qkv_off + r.tok + C, *vals = keys + C;
  __global const float *q = qkv + qkv_off + r.tok + (ulong)r.i * r.ld;
  float acc[HS_MAX], mx = -INFINITY, l = 0.0f;
  for (int d = 0; d < r.hs; d++) acc[d] = 0.0f;
  int4 kr = attn_key_ranges(mode, r.i, T);
  for (int rg = 0; rg < 2; rg++) {
    int j = rg ? kr.z : kr.x, jend = rg ? kr.w : kr.y;
    for (; j + 4 <= jend; j += 4) { // four keys per step: one max update, one pass over acc
      int4 vis = attn_visible4(mode, m, r.i, 0, j, 1, T);
      if (!any(vis != 0)) continue;
      __global const float *k0 = keys + (ulong)j * r.ld, *v0 = vals + (ulong)j * r.ld;
      float4 s = attn_where4(vis, scale * dot4_g(q, k0, k0 + r.ld, k0 + 2 * r.ld, k0 + 3 * r.ld, r.hs), -INFINITY);
      float bm = fmax(fmax(s.x, s.y), fmax(s.z, s.w));
      if (bm > mx) {
        float corr = exp(mx - bm);
        l *= corr;
        for (int d = 0; d < r.hs; d++) acc[d] *= corr;
        mx = bm;
      }
      float4 p = exp(s - mx); // 0 where invisible (s = -inf, mx finite)
      l += dot(p.even + p.odd, (float2)(1.0f));
      axpy4_g(acc, p, v0, v0 + r.ld, v0 + 2 * r.ld, v0 + 3 * r.ld, r.hs);
    }
    for (; j < jend; j++) {
      if (!attn_visible(mode, m, r.i, j, T)) continue;
      float s = scale * dot_g(q, keys + (ulong)j * r.ld, r.hs);
      float p = attn_online_weight(s, &mx, &l, acc, r.hs);
      axpy_g(acc, p, vals + (ulong)j * r.ld, r.hs);
    }
  }
  attn_store_row(out, out_off, lse, lse_off, row, r, T, C, mx, l, acc);
}

// Stages rows j0 .. j0+n-1 (n <= tk) of two qkv sections (or of dout) into
// local tiles of n x hs; the whole group takes part.
void attn_stage(__local float *ta, __local float *tb, __global const float *a, __global const float *b, ulong ld,
                int j0, int n, int hs) {
  int lid = get_local_id(0), nl = get_local_size(0);
  for (int e = lid; e < n * hs; e += nl) {
    int jj = e / hs, d = e - jj * hs;
    ta[e] = a[(ulong)(j0 + jj) * ld + d];
    tb[e] = b[(ulong)(j0 + jj) * ld + d];
  }
}

__kernel void attention_forward_tiled(__global float *out, ulong out_off, __global float *lse, ulong lse_off,
                                      __global const float *qkv, ulong qkv_off, __global const float *mask,
                                      ulong mask_off, ulong mask_bstride, int B, int T, int C, int NH, float scale,
                                      int mode, int tk, __local float *kt, __local float *vt) {
  int nl = get_local_size(0), nqb = (T + nl - 1) / nl;
  ulong g = get_group_id(0);
  ulong bh = g / nqb;
  int i0 = (int)(g - bh * nqb) * nl, i = i0 + get_local_id(0), live = i < T;
  attn_row r = attn_row_of(bh, i, T, C, NH);
  ulong row = bh * T + i;
  __global const float *m = attn_mask_of(mode, mask, mask_off, mask_bstride, r.b);
  __global const float *keys = qkv + qkv_off + r.tok + C, *vals = keys + C;
  __global const float *q = qkv + qkv_off + r.tok + (ulong)i * r.ld;
  float acc[HS_MAX], mx = -INFINITY, l = 0.0f;
  for (int d = 0; d < r.hs; d++) acc[d] = 0.0f;
  int i1 = min(i0 + nl - 1, T - 1), jend = attn_group_key_end(mode, i0, i1, T);
  for (int j0 = attn_group_key_begin(mode, i0, T); j0 < jend; j0 += tk) {
    int n = min(tk, jend - j0);
    if (!attn_tile_needed(mode, i0, i1, j0, j0 + n - 1, T)) continue; // the same for the whole group
    attn_stage(kt, vt, keys, vals, r.ld, j0, n, r.hs);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (live)
      for (int jj = 0; jj < n; jj++) {
        if (!attn_visible(mode, m, i, j0 + jj, T)) continue;
        float s = scale * dot_l(q, kt + jj * r.hs, r.hs);
        float p = attn_online_weight(s, &mx, &l, acc, r.hs);
        axpy_l(acc, p, vt + jj * r.hs, r.hs);
      }
    barrier(CLK_LOCAL_MEM_FENCE); // the next tile overwrites kt, vt
  }
  if (live) attn_store_row(out, out_off, lse, lse_off, row, r, T, C, mx, l, acc);
}

// ---------------------------------------------------------------- backward
// With P = softmax(S), O = P V, dO given:
//   D_i = rowsum(dO_i * O_i),  dP_ij = dO_i . v_j,  dS_ij = P_ij (dP_ij - D_i)
//   dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i P_ij dO_i
// dq is gathered per query row, dk and dv per key row: every gradient row has
// one owner, so no atomics, and each adds (+=) its row to dqkv once.

// dsum (B, NH, T) = D; one work-item per row.
__kernel void attention_backward_dsum(__global float *dsum, ulong dsum_off, __global const float *dout,
                                      ulong dout_off, __global const float *out, ulong out_off, int B, int T, int C,
                                      int NH) {
  ulong row = get_global_id(0);
  if (row >= (ulong)B * NH * T) return;
  ulong bh = row / T;
  attn_row r = attn_row_of(bh, (int)(row - bh * T), T, C, NH);
  ulong o = ((ulong)r.b * T + r.i) * C + (ulong)r.h * r.hs;
  float s = 0.0f;
  for (int d = 0; d < r.hs; d++) s += dout[dout_off + o + d] * out[out_off + o + d];
  dsum[dsum_off + row] = s;
}

void attn_add_row(__global float *dst, const float *src, float scale, int hs) {
  for (int d = 0; d < hs; d++) dst[d] += scale * src[d];
}

// dq of one query row: the keys come one at a time from global memory.
__kernel void attention_backward_dq_rows(__global float *dqkv, ulong dqkv_off, __global const float *dout,
                                         ulong dout_off, __global const float *lse, ulong lse_off,
                                         __global const float *dsum, ulong dsum_off, __global const float *qkv,
                                         ulong qkv_off, __global const float *mask, ulong mask_off,
                                         ulong mask_bstride, int B, int T, int C, int NH, float scale, int mode) {
  ulong row = get_global_id(0);
  if (row >= (ulong)B * NH * T) return;
  ulong bh = row / T;
  attn_row r = attn_row_of(bh, (int)(row - bh * T), T, C, NH);
  __global const float *m = attn_mask_of(mode, mask, mask_off, mask_bstride, r.b);
  __global const float *keys = qkv + qkv_off + r.tok + C, *vals = keys + C;
  __global const float *q = qkv + qkv_off + r.tok + (ulong)r.i * r.ld;
  __global const float *dO = dout + dout_off + ((ulong)r.b * T + r.i) * C + (ulong)r.h * r.hs;
  float dq[HS_MAX], L = lse[lse_off + row], D = dsum[dsum_off + row];
  for (int d = 0; d < r.hs; d++) dq[d] = 0.0f;
  int4 kr = attn_key_ranges(mode, r.i, T);
  for (int rg = 0; rg < 2; rg++) {
    int j = rg ? kr.z : kr.x, jend = rg ? kr.w : kr.y;
    for (; j + 4 <= jend; j += 4) {
      int4 vis = attn_visible4(mode, m, r.i, 0, j, 1, T);
      if (!any(vis != 0)) continue;
      __global const float *k0 = keys + (ulong)j * r.ld, *v0 = vals + (ulong)j * r.ld;
      __global const float *k1 = k0 + r.ld, *k2 = k1 + r.ld, *k3 = k2 + r.ld;
      float4 p = attn_where4(vis, exp(scale * dot4_g(q, k0, k1, k2, k3, r.hs) - L), 0.0f);
      float4 ds = p * (dot4_g(dO, v0, v0 + r.ld, v0 + 2 * r.ld, v0 + 3 * r.ld, r.hs) - D);
      axpy4_g(dq, ds, k0, k1, k2, k3, r.hs);
    }
    for (; j < jend; j++) {
      if (!attn_visible(mode, m, r.i, j, T)) continue;
      __global const float *kj = keys + (ulong)j * r.ld;
      float p = exp(scale * dot_g(q, kj, r.hs) - L);
      float ds = p * (dot_g(dO, vals + (ulong)j * r.ld, r.hs) - D);
      axpy_g(dq, ds, kj, r.hs);
    }
  }
  attn_add_row(dqkv + dqkv_off + r.tok + (ulong)r.i * r.ld, dq, scale, r.hs);
}

__kernel void attention_backward_dq_tiled(__global float *dqkv, ulong dqkv_off, __global const float *dout,
                                          ulong dout_off, __global const float *lse, ulong lse_off,
                                          __global const float *dsum, ulong dsum_off, __global const float *qkv,
                                          ulong qkv_off, __global const float *mask, ulong mask_off,
                                          ulong mask_bstride, int B, int T, int C, int NH, float scale, int mode,
                                          int tk, __local float *kt, __local float *vt) {
  int nl = get_local_size(0), nqb = (T + nl - 1) / nl;
  ulong g = get_group_id(0);
  ulong bh = g / nqb;
  int i0 = (int)(g - bh * nqb) * nl, i = i0 + get_local_id(0), live = i < T;
  attn_row r = attn_row_of(bh, i, T, C, NH);
  ulong row = bh * T + i;
  __global const float *m = attn_mask_of(mode, mask, mask_off, mask_bstride, r.b);
  __global const float *keys = qkv + qkv_off + r.tok + C, *vals = keys + C;
  __global const float *q = qkv + qkv_off + r.tok + (ulong)i * r.ld;
  __global const float *dO = dout + dout_off + ((ulong)r.b * T + i) * C + (ulong)r.h * r.hs;
  float dq[HS_MAX], L = 0.0f, D = 0.0f;
  if (live) {
    L = lse[lse_off + row];
    D = dsum[dsum_off + row];
  }
  for (int d = 0; d < r.hs; d++) dq[d] = 0.0f;
  int i1 = min(i0 + nl - 1, T - 1), jend = attn_group_key_end(mode, i0, i1, T);
  for (int j0 = attn_group_key_begin(mode, i0, T); j0 < jend; j0 += tk) {
    int n = min(tk, jend - j0);
    if (!attn_tile_needed(mode, i0, i1, j0, j0 + n - 1, T)) continue; // the same for the whole group
    attn_stage(kt, vt, keys, vals, r.ld, j0, n, r.hs);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (live)
      for (int jj = 0; jj < n; jj++) {
        if (!attn_visible(mode, m, i, j0 + jj, T)) continue;
        float p = exp(scale * dot_l(q, kt + jj * r.hs, r.hs) - L);
        float ds = p * (dot_l(dO, vt + jj * r.hs, r.hs) - D);
        axpy_l(dq, ds, kt + jj * r.hs, r.hs);
      }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (live) attn_add_row(dqkv + dqkv_off + r.tok + (ulong)i * r.ld, dq, scale, r.hs);
}

// dk, dv of one key row j: the queries that see it, one at a time.
__kernel void attention_backward_dkv_rows(__global float *dqkv, ulong dqkv_off, __global const float *dout,
                                          ulong dout_off, __global const float *lse, ulong lse_off,
                                          __global const float *dsum, ulong dsum_off, __global const float *qkv,
                                          ulong qkv_off, __global const float *mask, ulong mask_off,
                                          ulong mask_bstride, int B, int T, int C, int NH, float scale, int mode) {
  ulong row = get_global_id(0);
  if (row >= (ulong)B * NH * T) return;
  ulong bh = row / T;
  attn_row r = attn_row_of(bh, (int)(row - bh * T), T, C, NH);
  int j = r.i;
  __global const float *m = attn_mask_of(mode, mask, mask_off, mask_bstride, r.b);
  __global const float *queries = qkv + qkv_off + r.tok;
  __global const float *douts = dout + dout_off + (ulong)r.b * T * C + (ulong)r.h * r.hs;
  __global const float *k = queries + (ulong)j * r.ld + C, *v = k + C;
  float dk[HS_MAX], dv[HS_MAX];
  for (int d = 0; d < r.hs; d++) dk[d] = dv[d] = 0.0f;
  __global const float *lse_bh = lse + lse_off + bh * T, *dsum_bh = dsum + dsum_off + bh * T;
  int4 qr = attn_query_ranges(mode, j, T);
  for (int rg = 0; rg < 2; rg++) {
    int i = rg ? qr.z : qr.x, iend = rg ? qr.w : qr.y;
    for (; i + 4 <= iend; i += 4) {
      int4 vis = attn_visible4(mode, m, i, 1, j, 0, T);
      if (!any(vis != 0)) continue;
      __global const float *q0 = queries + (ulong)i * r.ld, *o0 = douts + (ulong)i * C;
      __global const float *q1 = q0 + r.ld, *q2 = q1 + r.ld, *q3 = q2 + r.ld;
      __global const float *o1 = o0 + C, *o2 = o1 + C, *o3 = o2 + C;
      float4 p = attn_where4(vis, exp(scale * dot4_g(k, q0, q1, q2, q3, r.hs) - vload4(0, lse_bh + i)), 0.0f);
      float4 ds = p * (dot4_g(v, o0, o1, o2, o3, r.hs) - vload4(0, dsum_bh + i));
      axpy4_g(dv, p, o0, o1, o2, o3, r.hs);
      axpy4_g(dk, ds, q0, q1, q2, q3, r.hs);
    }
    for (; i < iend; i++) {
      if (!attn_visible(mode, m, i, j, T)) continue;
      __global const float *qi = queries + (ulong)i * r.ld, *dOi = douts + (ulong)i * C;
      float p = exp(scale * dot_g(qi, k, r.hs) - lse[lse_off + bh * T + i]);
      float ds = p * (dot_g(v, dOi, r.hs) - dsum[dsum_off + bh * T + i]);
      axpy_g(dv, p, dOi, r.hs);
      axpy_g(dk, ds, qi, r.hs);
    }
  }
  __global float *dst = dqkv + dqkv_off + r.tok + (ulong)j * r.ld;
  attn_add_row(dst + C, dk, scale, r.hs);
  attn_add_row(dst + 2 * C, dv, 1.0f, r.hs);
}

// Stages query rows i0 .. i0+n-1: q into qt, dO into ot, their LSE and D.
void attn_stage_queries(__local float *qt, __local float *ot, __local float *lt, __local float *dt,
                        __global const float *queries, ulong ld, __global const float *douts, int C,
                        __global const float *lse_bh, __global const float *dsum_bh, int i0, int n, int hs) {
  int lid = get_local_id(0), nl = get_local_size(0);
  for (int e = lid; e < n * hs; e += nl) {
    int ii = e / hs, d = e - ii * hs;
    qt[e] = queries[(ulong)(i0 + ii) * ld + d];
    ot[e] = douts[(ulong)(i0 + ii) * C + d];
  }
  for (int ii = lid; ii < n; ii += nl) {
    lt[ii] = lse_bh[i0 + ii];
    dt[ii] = dsum_bh[i0 + ii];
  }
}

__kernel void attention_backward_dkv_tiled(__global float *dqkv, ulong dqkv_off, __global const float *dout,
                                           ulong dout_off, __global const float *lse, ulong lse_off,
                                           __global const float *dsum, ulong dsum_off, __global const float *qkv,
                                           ulong qkv_off, __global const float *mask, ulong mask_off,
                                           ulong mask_bstride, int B, int T, int C, int NH, float scale, int mode,
                                           int tk, __local float *qt, __local float *ot, __local float *lt,
                                           __local float *dt) {
  int nl = get_local_size(0), nkb = (T + nl - 1) / nl;
  ulong g = get_group_id(0), bh = g / nkb;
  int j0 = (int)(g - bh * nkb) * nl, j = j0 + get_local_id(0), live = j < T;
  attn_row r = attn_row_of(bh, j, T, C, NH);
  __global const float *m = attn_mask_of(mode, mask, mask_off, mask_bstride, r.b);
  __global const float *queries = qkv + qkv_off + r.tok;
  __global const float *douts = dout + dout_off + (ulong)r.b * T * C + (ulong)r.h * r.hs;
  __global const float *k = queries + (ulong)j * r.ld + C, *v = k + C;
  float dk[HS_MAX], dv[HS_MAX];
  for (int d = 0; d < r.hs; d++) dk[d] = dv[d] = 0.0f;
  int j1 = min(j0 + nl - 1, T - 1);
  for (int i0 = attn_group_query_begin(mode, j0, j1, T); i0 < T; i0 += tk) {
    int n = min(tk, T - i0);
    if (!attn_tile_needed(mode, i0, i0 + n - 1, j0, j1, T)) continue; // the same for the whole group
    attn_stage_queries(qt, ot, lt, dt, queries, r.ld, douts, C, lse + lse_off + bh * T, dsum + dsum_off + bh * T, i0,
                       n, r.hs);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (live)
      for (int ii = 0; ii < n; ii++) {
        if (!attn_visible(mode, m, i0 + ii, j, T)) continue;
        __local const float *qi = qt + ii * r.hs, *dOi = ot + ii * r.hs;
        float p = exp(scale * dot_l(k, qi, r.hs) - lt[ii]);
        float ds = p * (dot_l(v, dOi, r.hs) - dt[ii]);
        axpy_l(dv, p, dOi, r.hs);
        axpy_l(dk, ds, qi, r.hs);
      }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (live) {
    __global float *dst = dqkv + dqkv_off + r.tok + (ulong)j * r.ld;
    attn_add_row(dst + C, dk, scale, r.hs);
    attn_add_row(dst + 2 * C, dv, 1.0f, r.hs);
  }
}

// ---------------------------------------------------------------- decoding
// One new token per sequence with a K/V cache: qkv (B, Tcap, 3C), the query
// of row n-1 against keys and values of rows 0..n-1 (the last row of causal
// attention over the first n rows). One work-group per (sample, head): work-
// item lid takes keys lid, lid + nl, ... with its own online softmax; the
// group then merges the partial (max, sum, acc) through wg_max and wg_sum
// (a group of one, a CPU driver's choice, needs no merge). out (B, C).
__kernel void attention_decode_forward(__global float *out, ulong out_off, __global const float *qkv, ulong qkv_off,
                                       int n, int Tcap, int C, int NH, float scale, __local float *buf) {
  ulong bh = get_group_id(0);
  int lid = get_local_id(0), nl = get_local_size(0);
  int b = (int)(bh / NH), h = (int)(bh - (ulong)b * NH), hs = C / NH; // not %: see attn_row_of
  ulong ld = 3 * (ulong)C;
  __global const float *base = qkv + qkv_off + (ulong)b * Tcap * ld + (ulong)h * hs;
  __global const float *q = base + (ulong)(n - 1) * ld, *keys = base + C, *vals = base + 2 * C;
  float acc[HS_MAX], mx = -INFINITY, l = 0.0f;
  for (int d = 0; d < hs; d++) acc[d] = 0.0f;
  for (int j = lid; j < n; j += nl) {
    float s = scale * dot_g(q, keys + (ulong)j * ld, hs);
    float p = attn_online_weight(s, &mx, &l, acc, hs);
    axpy_g(acc, p, vals + (ulong)j * ld, hs);
  }
  __global float *o = out + out_off + (ulong)b * C + (ulong)h * hs;
  if (nl == 1) {
    for (int d = 0; d < hs; d++) o[d] = acc[d] / l;
    return;
  }
  float M = wg_max(buf, mx);                        // finite: key 0 belongs to work-item 0
  float corr = mx == -INFINITY ? 0.0f : exp(mx - M); // an item without keys adds nothing
  float inv = 1.0f / wg_sum(buf, l * corr);
  for (int d = 0; d < hs; d++) {
    float v = wg_sum(buf, acc[d] * corr);
    if (lid == 0) o[d] = v * inv;
  }
}
