// Embedding lookup and its deterministic scatter-add backward.
// An index outside [0, V) is skipped: forward writes a zero row, backward
// adds nothing for it. No float atomics anywhere.

// out[n, c] = table[idx[n], c]; 2-D grid (c, n).
__kernel void embedding_forward(__global float *out, ulong out_off, __global const int *idx, ulong idx_off,
                                __global const float *table, ulong table_off, int N, int C, int V) {
  int c = get_global_id(0), n = get_global_id(1);
  if (c >= C || n >= N) return;
  int v = idx[idx_off + n];
  out[out_off + (ulong)n * C + c] = (v >= 0 && v < V) ? table[table_off + (ulong)v * C + c] : 0.0f;
}

// dtable[idx[n], c] += dout[n, c], deterministically.
// Work-group (ct, vb) owns the vocabulary rows [vb*B, vb*B + B) and the
// columns [ct*CT, ct*CT + CT); work-item lid handles the columns lid, lid + L,
// ... of that tile (L = the work-group size). Every dtable element has exactly
// one owner work-item, so there are no races. The group walks idx in chunks
// of L: each work-item tests one index against the group's row range, a local
// prefix sum compacts the hits in ascending n, then each work-item adds the
// hits' dout values for its columns in that order. Every dtable[v, c]
// therefore receives its contributions in ascending n, whatever the launch
// shape, so the result is identical from run to run (and across devices that
// round float adds the same way).
__kernel void embedding_backward(__global float *dtable, ulong dtable_off, __global const float *dout,
                                 ulong dout_off, __global const int *idx, ulong idx_off, int N, int C, int V,
                                 int B, int CT, __local int *scan, __local int *hit_n, __local int *hit_v) {
  int lid = get_local_id(0), L = get_local_size(0);
  int c0 = get_group_id(0) * CT, c1 = min(c0 + CT, C);
  int v_lo = get_group_id(1) * B, v_hi = min(v_lo + B, V);
  __global float *dt = dtable + dtable_off;
  __global const float *dy = dout + dout_off;
  for (int n0 = 0; n0 < N; n0 += L) {
    int n = n0 + lid;
    int v = n < N ? idx[idx_off + n] : -1;
    int hit = v >= v_lo && v < v_hi;
    scan[lid] = hit;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 1; s < L; s <<= 1) { // inclusive Hillis-Steele scan
      int t = lid >= s ? scan[lid - s] : 0;
      barrier(CLK_LOCAL_MEM_FENCE);
      scan[lid] += t;
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    int count = scan[L - 1];
    if (hit) { hit_n[scan[lid] - 1] = n; hit_v[scan[lid] - 1] = v; }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int j = 0; j < count; j++) {
      __global float *drow = dt + (ulong)hit_v[j] * C;
      __global const float *yrow = dy + (ulong)hit_n[j] * C;
      for (int c = c0 + lid; c < c1; c += L) drow[c] += yrow[c];
    }
    barrier(CLK_LOCAL_MEM_FENCE); // the lists are rewritten by the next chunk
  }
}
