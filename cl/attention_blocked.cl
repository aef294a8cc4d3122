// Fused attention for CPU drivers (PoCL): the same arithmetic as
// cl/attention.cl (online softmax forward saving the log-sum-exp, backward
// recomputing the probabilities), laid out for wide SIMD registers instead of
// work-group tiles. A work-item takes QB queries (forward, dq) or KB keys
// (dk, dv) of one (sample, head) and meets the other side 16 at a time, one
// per lane of a float16:
//   scores    s[lanes] = sum_d a[d] * XT[d][lanes]: a broadcast times a row of
//             a transposed copy (attention_transpose_heads writes K, V, Q or
//             dO of every head as (B*NH, HS, TP), TP = T rounded up to 16,
//             zeros past T), so 16 dot products are HS fused multiply-adds;
//   updates   acc[:] += p[lane] * X[row][:], X read in place from qkv or dout,
//             the accumulators HS/VD vectors of VD floats (registers).
// Every score, in every kernel here, is the same two fma chains (even d, odd
// d) added at the end, scaled after: the backward's probabilities
// exp(score - lse) use exactly the forward's scores.
// Build options: HS (head size), VD (4, 8 or 16, dividing HS), QB (forward), QD (dq), KB (dk, dv).
// mode: 0 bidirectional, 1 causal (query i sees key j iff j <= i), 2 mask
// (iff mask[b*mask_bstride + i*T + j] != 0), 3 block diffusion over T = 2n
// tokens [noisy | clean] (noisy query i sees key i and clean keys n+j, j < i;
// clean query n+i sees clean keys n+j, j <= i: as in cl/attention.cl, whose
// range helpers are repeated below; blocks of 16 keys or queries that no row
// of a work-item sees are skipped). A query that sees no key outputs 0 and
// saves lse 0, like the other kernels.

#ifndef HS
#define HS 16
#endif
#ifndef VD
#define VD 16
#endif
#ifndef QB
#define QB 4
#endif
#ifndef KB
#define KB 2
#endif
#ifndef QD
#define QD 2 // queries per work-item of dq: four score chains each, so fewer rows than the forward
#endif
#define NV (HS / VD)
#define LANES 16

#if VD == 16
typedef float16 floatd;
#define VLD(p) vload16(0, p)
#define VST(v, p) vstore16(v, 0, p)
#elif VD == 8
typedef float8 floatd;
#define VLD(p) vload8(0, p)
#define VST(v, p) vstore8(v, 0, p)
#elif VD == 4
typedef float4 floatd;
#define VLD(p) vload4(0, p)
#define VST(v, p) vstore4(v, 0, p)
#else
#error "VD must be 4, 8 or 16"
#endif

float hsum16(float16 v) {
  float8 a = v.lo + v.hi;
  float4 b = a.lo + a.hi;
  float2 c = b.lo + b.hi;
  return c.x + c.y;
}

float hmax16(float16 v) {
  float8 a = fmax(v.lo, v.hi);
  float4 b = fmax(a.lo, a.hi);
  float2 c = fmax(b.lo, b.hi);
  return fmax(c.x, c.y);
}

// lanes 0..15 as ints
int16 lane_ids(void) { return (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }

// Mode 3's ranges (as attn_group_key_end, attn_group_query_begin and
// attn_tile_needed of cl/attention.cl): keys queries i0..i1 see lie in
// [bd_key_begin(i0), bd_key_end(i0, i1)); queries keys j0..j1 are seen by
// start at bd_query_begin(j0, j1); bd_needed: some query of i0..i1 sees some
// key of j0..j1 (bounds inclusive).
int bd_key_begin(int i0, int T) { return min(i0, T >> 1); }
int bd_key_end(int i0, int i1, int T) {
  int n = T >> 1, e = i1 < n ? n + i1 : i1 + 1;
  return i0 < n ? max(e, n + min(i1, n - 1)) : e;
}
int bd_query_begin(int j0, int j1, int T) {
  int n = T >> 1;
  return j0 < n ? (j1 >= n ? min(j0, 1) : j0) : j0 - n + 1;
}
int bd_needed(int i0, int i1, int j0, int j1, int T) {
  int n = T >> 1;
  if (max(i0, j0) <= min(min(i1, j1), n - 1)) return 1;
  int k0 = max(j0, n);
  if (k0 > j1) return 0;
  return (i0 < n && k0 < n + min(i1, n - 1)) || (i1 >= n && k0 <= i1);
}
// mode 3 visibility of key j (lanes) to query i (lanes)
int16 bd_visible(int16 i, int16 j, int T) {
  int16 n = (int16)(T >> 1);
  return select(j >= n && j <= i, j == i || (j >= n && j < n + i), i < n);
}

// s where key j0+lane is visible to query i (and lane < n), else -inf
float16 mask_keys(float16 s, int mode, __global const float *m, int i, int j0, int n, int T) {
  int16 lane = lane_ids(), vis = lane < (int16)(n);
  if (mode == 1) vis &= lane + (int16)(j0) <= (int16)(i);
  if (mode == 3) vis &= bd_visible((int16)(i), lane + (int16)(j0), T);
  if (mode == 2) {
    float mv[LANES];
    for (int l = 0; l < LANES; l++) mv[l] = l < n ? m[(ulong)i * T + j0 + l] : 0.0f;
    vis &= vload16(0, mv) != (float16)(0.0f);
  }
  return select((float16)(-INFINITY), s, vis);
}

// 1 where query i0+lane (lane < n) sees key j, else 0
int16 visible_queries(int mode, __global const float *m, int i0, int n, int j, int T) {
  int16 lane = lane_ids(), vis = lane < (int16)(n);
  if (mode == 1) vis &= lane + (int16)(i0) >= (int16)(j);
  if (mode == 3) vis &= bd_visible(lane + (int16)(i0), (int16)(j), T);
  if (mode == 2) {
    float mv[LANES];
    for (int l = 0; l < LANES; l++) mv[l] = l < n ? m[(ulong)(i0 + l) * T + j] : 0.0f;
    vis &= vload16(0, mv) != (float16)(0.0f);
  }
  return vis;
}

// lanes < n of x[0..n), 0 elsewhere
float16 load_lanes(__global const float *x, int n) {
  if (n == LANES) return vload16(0, x);
  float t[LANES];
  for (int l = 0; l < LANES; l++) t[l] = l < n ? x[l] : 0.0f;
  return vload16(0, t);
}

// (B,T,ld) rows, head h of a section starting at src_off -> dst (B*NH, HS, tp).
// A work-item moves 16 tokens x HS: reads each token's head row (contiguous),
// writes 16 floats per d (one vector store); zeros past T. Grid tp/16 x B*NH.
__kernel void attention_transpose_heads(__global float *dst, ulong dst_off, __global const float *src, ulong src_off,
                                        ulong ld, int B, int T, int NH, int tp) {
  int j0 = get_global_id(0) * LANES;
  ulong bh = get_global_id(1);
  if (j0 >= tp || bh >= (ulong)B * NH) return;
  ulong b = bh / NH, h = bh - b * NH; // not %: see attn_row_of in cl/attention.cl
  __global const float *s = src + src_off + b * T * ld + h * HS;
  __global float *o = dst + dst_off + bh * HS * tp + j0;
  const int n = min(LANES, T - j0);
  for (int d0 = 0; d0 < HS; d0 += 4) { // 4 rows of the output at a time: 16 x 4 block
    float4 col[LANES];
#pragma unroll
    for (int l = 0; l < LANES; l++) col[l] = l < n ? vload4(0, s + (ulong)(j0 + l) * ld + d0) : (float4)(0.0f);
    vstore16((float16)(col[0].x, col[1].x, col[2].x, col[3].x, col[4].x, col[5].x, col[6].x, col[7].x, col[8].x,
                       col[9].x, col[10].x, col[11].x, col[12].x, col[13].x, col[14].x, col[15].x), 0, o + (ulong)d0 * tp);
    vstore16((float16)(col[0].y, col[1].y, col[2].y, col[3].y, col[4].y, col[5].y, col[6].y, col[7].y, col[8].y,
                       col[9].y, col[10].y, col[11].y, col[12].y, col[13].y, col[14].y, col[15].y), 0, o + (ulong)(d0 + 1) * tp);
    vstore16((float16)(col[0].z, col[1].z, col[2].z, col[3].z, col[4].z, col[5].z, col[6].z, col[7].z, col[8].z,
                       col[9].z, col[10].z, col[11].z, col[12].z, col[13].z, col[14].z, col[15].z), 0, o + (ulong)(d0 + 2) * tp);
    vstore16((float16)(col[0].w, col[1].w, col[2].w, col[3].w, col[4].w, col[5].w, col[6].w, col[7].w, col[8].w,
                       col[9].w, col[10].w, col[11].w, col[12].w, col[13].w, col[14].w, col[15].w), 0, o + (ulong)(d0 + 3) * tp);
  }
}

// ---------------------------------------------------------------- forward
__kernel void attention_forward_blocked(__global float *out, ulong out_off, __global float *lse, ulong lse_off,
                                        __global const float *kt, ulong kt_off, __global const float *qkv,
                                        ulong qkv_off, __global const float *mask, ulong mask_off, ulong mask_bstride,
                                        int B, int T, int C, int NH, float scale, int mode, int tp) {
  const int nqb = (T + QB - 1) / QB;
  ulong g = get_global_id(0);
  if (g >= (ulong)B * NH * nqb) return;
  ulong bh = g / nqb, b = bh / NH, h = bh - b * NH, ld = 3 * (ulong)C;
  int i0 = (int)(g - bh * nqb) * QB;
  __global const float *base = qkv + qkv_off + b * T * ld + h * HS, *vals = base + 2 * C;
  __global const float *ktb = kt + kt_off + bh * HS * tp;
  __global const float *m = mode == 2 ? mask + mask_off + b * mask_bstride : mask;
  __global const float *q[QB];
  floatd o[QB][NV];
  float mx[QB], l[QB], pa[QB][LANES];
#pragma unroll
  for (int qi = 0; qi < QB; qi++) {
    q[qi] = base + (ulong)min(i0 + qi, T - 1) * ld; // rows past T compute, never store
    mx[qi] = -INFINITY;
    l[qi] = 0.0f;
#pragma unroll
    for (int v = 0; v < NV; v++) o[qi][v] = (floatd)(0.0f);
  }
  const int i1 = min(i0 + QB - 1, T - 1); // causal: the block's last query decides
  const int jend = mode == 1 ? i1 + 1 : mode == 3 ? bd_key_end(i0, i1, T) : T;
  const int jbeg = mode == 3 ? bd_key_begin(i0, T) / LANES * LANES : 0;
  for (int j0 = jbeg; j0 < jend; j0 += LANES) {
    if (mode == 3 && !bd_needed(i0, i1, j0, min(j0 + LANES, jend) - 1, T)) continue;
    float16 s0[QB], s1[QB];
#pragma unroll
    for (int qi = 0; qi < QB; qi++) s0[qi] = s1[qi] = (float16)(0.0f);
#pragma unroll
    for (int d = 0; d < HS; d += 2) {
      float16 k0 = vload16(0, ktb + (ulong)d * tp + j0), k1 = vload16(0, ktb + (ulong)(d + 1) * tp + j0);
#pragma unroll
      for (int qi = 0; qi < QB; qi++) {
        s0[qi] = fma((float16)(q[qi][d]), k0, s0[qi]);
        s1[qi] = fma((float16)(q[qi][d + 1]), k1, s1[qi]);
      }
    }
    const int n = min(LANES, jend - j0);
#pragma unroll
    for (int qi = 0; qi < QB; qi++) {
      float16 s = mask_keys((s0[qi] + s1[qi]) * scale, mode, m, min(i0 + qi, T - 1), j0, n, T);
      float bm = hmax16(s);
      if (bm > mx[qi]) {
        float corr = exp(mx[qi] - bm); // 0 on the first visible key (mx = -inf)
        l[qi] *= corr;
#pragma unroll
        for (int v = 0; v < NV; v++) o[qi][v] *= corr;
        mx[qi] = bm;
      }
      float16 p = mx[qi] == -INFINITY ? (float16)(0.0f) : exp(s - mx[qi]); // 0 where invisible
      l[qi] += hsum16(p);
      vstore16(p, 0, pa[qi]);
    }
    for (int jj = 0; jj < n; jj++) {
      __global const float *vr = vals + (ulong)(j0 + jj) * ld;
      floatd vv[NV];
#pragma unroll
      for (int v = 0; v < NV; v++) vv[v] = VLD(vr + v * VD);
#pragma unroll
      for (int qi = 0; qi < QB; qi++)
#pragma unroll
        for (int v = 0; v < NV; v++) o[qi][v] = fma((floatd)(pa[qi][jj]), vv[v], o[qi][v]);
    }
  }
#pragma unroll
  for (int qi = 0; qi < QB; qi++) {
    int i = i0 + qi;
    if (i >= T) break;
    __global float *orow = out + out_off + (b * T + i) * C + h * HS;
    float inv = mx[qi] == -INFINITY ? 0.0f : 1.0f / l[qi]; // no visible key: 0
#pragma unroll
    for (int v = 0; v < NV; v++) VST(o[qi][v] * inv, orow + v * VD);
    lse[lse_off + bh * T + i] = mx[qi] == -INFINITY ? 0.0f : mx[qi] + log(l[qi]);
  }
}

// ---------------------------------------------------------------- backward
// With P = softmax(S), O = P V, dO given, D_i = rowsum(dO_i * O_i):
//   dP_ij = dO_i . v_j,  dS_ij = P_ij (dP_ij - D_i),
//   dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i P_ij dO_i.
// tr holds the transposed heads: section 0 Q, 1 K, 2 V, 3 dO, each (B*NH, HS, tp).

// dq of QD query rows; keys 16 at a time.
__kernel void attention_backward_dq_blocked(__global float *dqkv, ulong dqkv_off, __global const float *dout,
                                            ulong dout_off, __global const float *lse, ulong lse_off,
                                            __global const float *dsum, ulong dsum_off, __global const float *tr,
                                            ulong tr_off, __global const float *qkv, ulong qkv_off,
                                            __global const float *mask, ulong mask_off, ulong mask_bstride, int B,
                                            int T, int C, int NH, float scale, int mode, int tp) {
  const int nqb = (T + QD - 1) / QD;
  ulong g = get_global_id(0);
  if (g >= (ulong)B * NH * nqb) return;
  ulong bh = g / nqb, b = bh / NH, h = bh - b * NH, ld = 3 * (ulong)C, sec = (ulong)B * NH * HS * tp;
  int i0 = (int)(g - bh * nqb) * QD;
  __global const float *base = qkv + qkv_off + b * T * ld + h * HS, *keys = base + C;
  __global const float *ktb = tr + tr_off + sec + bh * HS * tp, *vtb = ktb + sec;
  __global const float *m = mode == 2 ? mask + mask_off + b * mask_bstride : mask;
  __global const float *q[QD], *dO[QD];
  floatd dq[QD][NV];
  float L[QD], D[QD], pa[QD][LANES];
#pragma unroll
  for (int qi = 0; qi < QD; qi++) {
    int i = min(i0 + qi, T - 1);
    q[qi] = base + (ulong)i * ld;
    dO[qi] = dout + dout_off + (b * T + i) * C + h * HS;
    L[qi] = lse[lse_off + bh * T + i];
    D[qi] = dsum[dsum_off + bh * T + i];
#pragma unroll
    for (int v = 0; v < NV; v++) dq[qi][v] = (floatd)(0.0f);
  }
  const int i1 = min(i0 + QD - 1, T - 1);
  const int jend = mode == 1 ? i1 + 1 : mode == 3 ? bd_key_end(i0, i1, T) : T;
  const int jbeg = mode == 3 ? bd_key_begin(i0, T) / LANES * LANES : 0;
  for (int j0 = jbeg; j0 < jend; j0 += LANES) {
    if (mode == 3 && !bd_needed(i0, i1, j0, min(j0 + LANES, jend) - 1, T)) continue;
    float16 s0[QD], s1[QD], e0[QD], e1[QD];
#pragma unroll
    for (int qi = 0; qi < QD; qi++) s0[qi] = s1[qi] = e0[qi] = e1[qi] = (float16)(0.0f);
#pragma unroll
    for (int d = 0; d < HS; d += 2) {
      float16 k0 = vload16(0, ktb + (ulong)d * tp + j0), k1 = vload16(0, ktb + (ulong)(d + 1) * tp + j0);
      float16 v0 = vload16(0, vtb + (ulong)d * tp + j0), v1 = vload16(0, vtb + (ulong)(d + 1) * tp + j0);
#pragma unroll
      for (int qi = 0; qi < QD; qi++) {
        s0[qi] = fma((float16)(q[qi][d]), k0, s0[qi]);
        s1[qi] = fma((float16)(q[qi][d + 1]), k1, s1[qi]);
        e0[qi] = fma((float16)(dO[qi][d]), v0, e0[qi]);
        e1[qi] = fma((float16)(dO[qi][d + 1]), v1, e1[qi]);
      }
    }
    const int n = min(LANES, jend - j0);
#pragma unroll
    for (int qi = 0; qi < QD; qi++) {
      float16 s = mask_keys((s0[qi] + s1[qi]) * scale, mode, m, min(i0 + qi, T - 1), j0, n, T);
      float16 p = exp(s - L[qi]); // 0 where invisible
      vstore16(p * ((e0[qi] + e1[qi]) - D[qi]), 0, pa[qi]);
    }
    for (int jj = 0; jj < n; jj++) {
      __global const float *kr = keys + (ulong)(j0 + jj) * ld;
      floatd kv[NV];
#pragma unroll
      for (int v = 0; v < NV; v++) kv[v] = VLD(kr + v * VD);
#pragma unroll
      for (int qi = 0; qi < QD; qi++)
#pragma unroll
        for (int v = 0; v < NV; v++) dq[qi][v] = fma((floatd)(pa[qi][jj]), kv[v], dq[qi][v]);
    }
  }
#pragma unroll
  for (int qi = 0; qi < QD; qi++) {
    int i = i0 + qi;
    if (i >= T) break;
    __global float *dst = dqkv + dqkv_off + b * T * ld + h * HS + (ulong)i * ld;
#pragma unroll
    for (int v = 0; v < NV; v++) VST(VLD(dst + v * VD) + scale * dq[qi][v], dst + v * VD);
  }
}

// dk, dv of KB key rows; queries 16 at a time.
__kernel void attention_backward_dkv_blocked(__global float *dqkv, ulong dqkv_off, __global const float *dout,
                                             ulong dout_off, __global const float *lse, ulong lse_off,
                                             __global const float *dsum, ulong dsum_off, __global const float *tr,
                                             ulong tr_off, __global const float *qkv, ulong qkv_off,
                                             __global const float *mask, ulong mask_off, ulong mask_bstride, int B,
                                             int T, int C, int NH, float scale, int mode, int tp) {
  const int nkb = (T + KB - 1) / KB;
  ulong g = get_global_id(0);
  if (g >= (ulong)B * NH * nkb) return;
  ulong bh = g / nkb, b = bh / NH, h = bh - b * NH, ld = 3 * (ulong)C, sec = (ulong)B * NH * HS * tp;
  int j0 = (int)(g - bh * nkb) * KB;
  __global const float *base = qkv + qkv_off + b * T * ld + h * HS;
  __global const float *douts = dout + dout_off + b * T * C + h * HS;
  __global const float *qtb = tr + tr_off + bh * HS * tp, *otb = qtb + 3 * sec;
  __global const float *lse_bh = lse + lse_off + bh * T, *dsum_bh = dsum + dsum_off + bh * T;
  __global const float *m = mode == 2 ? mask + mask_off + b * mask_bstride : mask;
  __global const float *k[KB], *vr[KB];
  floatd dk[KB][NV], dv[KB][NV];
  float pa[KB][LANES], da[KB][LANES];
#pragma unroll
  for (int kj = 0; kj < KB; kj++) {
    int j = min(j0 + kj, T - 1);
    k[kj] = base + (ulong)j * ld + C;
    vr[kj] = k[kj] + C;
#pragma unroll
    for (int v = 0; v < NV; v++) dk[kj][v] = dv[kj][v] = (floatd)(0.0f);
  }
  const int j1 = min(j0 + KB - 1, T - 1);
  const int istart = mode == 1 ? j0 / LANES * LANES // causal: queries from the block's first key on
                     : mode == 3 ? bd_query_begin(j0, j1, T) / LANES * LANES : 0;
  for (int i0 = istart; i0 < T; i0 += LANES) {
    const int n = min(LANES, T - i0);
    if (mode == 3 && !bd_needed(i0, i0 + n - 1, j0, j1, T)) continue;
    float16 L = load_lanes(lse_bh + i0, n), D = load_lanes(dsum_bh + i0, n);
    float16 s0[KB], s1[KB], e0[KB], e1[KB];
#pragma unroll
    for (int kj = 0; kj < KB; kj++) s0[kj] = s1[kj] = e0[kj] = e1[kj] = (float16)(0.0f);
#pragma unroll
    for (int d = 0; d < HS; d += 2) {
      float16 q0 = vload16(0, qtb + (ulong)d * tp + i0), q1 = vload16(0, qtb + (ulong)(d + 1) * tp + i0);
      float16 o0 = vload16(0, otb + (ulong)d * tp + i0), o1 = vload16(0, otb + (ulong)(d + 1) * tp + i0);
#pragma unroll
      for (int kj = 0; kj < KB; kj++) {
        s0[kj] = fma((float16)(k[kj][d]), q0, s0[kj]);
        s1[kj] = fma((float16)(k[kj][d + 1]), q1, s1[kj]);
        e0[kj] = fma((float16)(vr[kj][d]), o0, e0[kj]);
        e1[kj] = fma((float16)(vr[kj][d + 1]), o1, e1[kj]);
      }
    }
#pragma unroll
    for (int kj = 0; kj < KB; kj++) {
      int16 vis = visible_queries(mode, m, i0, n, min(j0 + kj, T - 1), T);
      float16 p = select((float16)(0.0f), exp((s0[kj] + s1[kj]) * scale - L), vis);
      vstore16(p, 0, pa[kj]);
      vstore16(p * ((e0[kj] + e1[kj]) - D), 0, da[kj]);
    }
    for (int ii = 0; ii < n; ii++) {
      __global const float *qr = base + (ulong)(i0 + ii) * ld, *orow = douts + (ulong)(i0 + ii) * C;
      floatd qv[NV], ov[NV];
#pragma unroll
      for (int v = 0; v < NV; v++) {
        qv[v] = VLD(qr + v * VD);
        ov[v] = VLD(orow + v * VD);
      }
#pragma unroll
      for (int kj = 0; kj < KB; kj++)
#pragma unroll
        for (int v = 0; v < NV; v++) {
          dv[kj][v] = fma((floatd)(pa[kj][ii]), ov[v], dv[kj][v]);
          dk[kj][v] = fma((floatd)(da[kj][ii]), qv[v], dk[kj][v]);
        }
    }
  }
#pragma unroll
  for (int kj = 0; kj < KB; kj++) {
    int j = j0 + kj;
    if (j >= T) break;
    __global float *dst = dqkv + dqkv_off + b * T * ld + h * HS + (ulong)j * ld + C;
#pragma unroll
    for (int v = 0; v < NV; v++) {
      VST(VLD(dst + v * VD) + scale * dk[kj][v], dst + v * VD);
      VST(VLD(dst + C + v * VD) + dv[kj][v], dst + C + v * VD);
    }
  }
}
