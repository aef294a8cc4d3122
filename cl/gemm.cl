// Row-major GEMM: C = alpha * op(A) * op(B) + beta * C, op(B) read along its
// rows (the NN and TN cases; ops/gemm.c turns NT into NN by transposing B).
// Parameters come as build options (defaults below make the file build alone):
//   TA       0: A is (M,K) with lda; 1: A is stored (K,M), op(A) = A^T
//   MDIMC    work-items per group along M (local size dim 1)
//   NDIMC    work-items per group along N (local size dim 0)
//   WPTM     rows of C per work-item (register tile height)
//   WPTN     vectors of C per work-item along N (register tile width / VW)
//   VW       vector width along N: 1, 2, 4, 8 or 16
//   KWG      K step of the local-memory tiles (LOCAL=1 only)
//   GROUPM   0: group (i, j) computes tile (i, j); G > 0: groups are renumbered
//            so that consecutive ones sweep G row-tiles of C per column-tile
//            before moving on (grouped ordering): the B panel a group reads is
//            still in cache for its successors. CPUs run groups in order.
//   LOCAL    1: stage A and B tiles in local memory (GPU style); 0: registers
//            only, straight from global memory (CPU style: caches do the staging)
// A group computes an (MWG = MDIMC*WPTM) x (NWG = NDIMC*WPTN*VW) tile of C.
// Work-item (tx, ty) owns rows ty*WPTM .. +WPTM of the tile and the vectors
// (j*NDIMC + tx)*VW, j < WPTN, so neighbouring work-items touch neighbouring
// columns (coalesced on GPUs). Every load past M, N or K reads 0 and every
// store is guarded, so any size works. Sums run over k in increasing order in
// every configuration's own way; a configuration is deterministic run to run.
#ifndef TA
#define TA 0
#endif
#ifndef MDIMC
#define MDIMC 4
#endif
#ifndef NDIMC
#define NDIMC 4
#endif
#ifndef WPTM
#define WPTM 4
#endif
#ifndef WPTN
#define WPTN 2
#endif
#ifndef VW
#define VW 4
#endif
#ifndef KWG
#define KWG 16
#endif
#ifndef LOCAL
#define LOCAL 0
#endif
#ifndef GROUPM
#define GROUPM 0
#endif
// FAULT=1 drops the last k of the sum: a deliberately wrong kernel that the
// tests hand to the tuner's validation to prove it rejects bad candidates.
#ifndef FAULT
#define FAULT 0
#endif
#define MWG (MDIMC * WPTM)
#define NWG (NDIMC * WPTN * VW)

#if VW == 1
typedef float floatv;
#define VLOAD(p) (*(p))
#define VSTORE(v, p) (*(p) = (v))
#elif VW == 2
typedef float2 floatv;
#define VLOAD(p) vload2(0, p)
#define VSTORE(v, p) vstore2(v, 0, p)
#elif VW == 4
typedef float4 floatv;
#define VLOAD(p) vload4(0, p)
#define VSTORE(v, p) vstore4(v, 0, p)
#elif VW == 8
typedef float8 floatv;
#define VLOAD(p) vload8(0, p)
#define VSTORE(v, p) vstore8(v, 0, p)
#elif VW == 16
typedef float16 floatv;
#define VLOAD(p) vload16(0, p)
#define VSTORE(v, p) vstore16(v, 0, p)
#else
#error "VW must be 1, 2, 4, 8 or 16"
#endif

// op(A)[m][k]
#if TA
#define A_AT(m, k) A[(size_t)(k) * lda + (m)]
#else
#define A_AT(m, k) A[(size_t)(m) * lda + (k)]
#endif

// VW consecutive elements of row k of B from column n, zeros past N.
static inline floatv load_b_row(__global const float *B, int ldb, int k, int n, int N) {
  __global const float *p = B + (size_t)k * ldb + n;
  if (n + VW <= N) return VLOAD(p);
  float t[VW];
  for (int v = 0; v < VW; v++) t[v] = n + v < N ? p[v] : 0.0f;
  return VLOAD(t);
}

static inline void store_c(__global float *C, int ldc, int m, int n, int M, int N, floatv acc, float alpha,
                           float beta) {
  if (m >= M) return;
  __global float *p = C + (size_t)m * ldc + n;
  if (n + VW <= N) {
    floatv r = alpha * acc;
    if (beta != 0.0f) r += beta * VLOAD(p); // beta == 0 never reads C (it may hold NaN)
    VSTORE(r, p);
    return;
  }
  float t[VW];
  VSTORE(acc, t);
  for (int v = 0; v < VW; v++)
    if (n + v < N) p[v] = beta != 0.0f ? alpha * t[v] + beta * p[v] : alpha * t[v];
}

__kernel __attribute__((reqd_work_group_size(NDIMC, MDIMC, 1)))
void gemm(int M, int N, int K, float alpha, float beta,
          __global const float *A, ulong a_off, int lda, ulong a_stride,
          __global const float *B, ulong b_off, int ldb, ulong b_stride,
          __global float *C, ulong c_off, int ldc, ulong c_stride) {
  const int tx = get_local_id(0), ty = get_local_id(1);
#if GROUPM
  const int num_n = get_num_groups(0), num_m = get_num_groups(1);
  const int id = get_group_id(1) * num_n + get_group_id(0);
  // x - (x / y) * y rather than x % y next to x / y: the pair makes LLVM emit
  // a `freeze` that Oclgrind cannot run (tests/oclgrind/freeze_repro.c)
  const int band = id / (GROUPM * num_n), in_group = id - band * (GROUPM * num_n);
  const int first_m = band * GROUPM, rows_here = min(num_m - first_m, GROUPM);
  const int col = in_group / rows_here;
  const int m0 = (first_m + (in_group - col * rows_here)) * MWG, n0 = col * NWG;
#else
  const int m0 = get_group_id(1) * MWG, n0 = get_group_id(0) * NWG;
#endif
  const size_t batch = get_global_id(2);
#if FAULT
  K = K > 1 ? K - 1 : K;
#endif
  A += a_off + batch * a_stride;
  B += b_off + batch * b_stride;
  C += c_off + batch * c_stride;
  floatv acc[WPTM][WPTN];
  #pragma unroll
  for (int i = 0; i < WPTM; i++)
    #pragma unroll
    for (int j = 0; j < WPTN; j++) acc[i][j] = (floatv)(0.0f);
  const int mi = m0 + ty * WPTM; // first row of this work-item

#if LOCAL
  __local float As[KWG][MWG];       // As[k][m] = op(A)[m0+m][k0+k]
  __local floatv Bs[KWG][NWG / VW]; // Bs[k][v] = B[k0+k][n0 + v*VW ...]
  const int lid = ty * NDIMC + tx, nthreads = MDIMC * NDIMC;
  for (int k0 = 0; k0 < K; k0 += KWG) {
    for (int e = lid; e < KWG * MWG; e += nthreads) {
#if TA
      int k = e / MWG, m = e - k * MWG; // consecutive items read consecutive m of a row of A
#else
      int m = e / KWG, k = e - m * KWG; // consecutive items read consecutive k of a row of A
#endif
      As[k][m] = (m0 + m < M && k0 + k < K) ? A_AT(m0 + m, k0 + k) : 0.0f;
    }
    for (int e = lid; e < KWG * (NWG / VW); e += nthreads) {
      int k = e / (NWG / VW), v = e - k * (NWG / VW);
      Bs[k][v] = k0 + k < K ? load_b_row(B, ldb, k0 + k, n0 + v * VW, N) : (floatv)(0.0f);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = 0; k < KWG; k++) {
      floatv b[WPTN];
      #pragma unroll
      for (int j = 0; j < WPTN; j++) b[j] = Bs[k][j * NDIMC + tx];
      #pragma unroll
      for (int i = 0; i < WPTM; i++) {
        float a = As[k][ty * WPTM + i];
        #pragma unroll
        for (int j = 0; j < WPTN; j++) acc[i][j] = fma((floatv)(a), b[j], acc[i][j]);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#else
  // Rows past M read row M-1 instead of branching in the inner loop; their
  // results are never stored.
  int rows[WPTM];
  #pragma unroll
  for (int i = 0; i < WPTM; i++) rows[i] = min(mi + i, M - 1);
  int full = 1;
  #pragma unroll
  for (int j = 0; j < WPTN; j++) full &= n0 + (j * NDIMC + tx) * VW + VW <= N;
  if (full) {
    for (int k = 0; k < K; k++) {
      floatv b[WPTN];
      #pragma unroll
      for (int j = 0; j < WPTN; j++) b[j] = VLOAD(B + (size_t)k * ldb + n0 + (j * NDIMC + tx) * VW);
      #pragma unroll
      for (int i = 0; i < WPTM; i++) {
        float a = A_AT(rows[i], k);
        #pragma unroll
        for (int j = 0; j < WPTN; j++) acc[i][j] = fma((floatv)(a), b[j], acc[i][j]);
      }
    }
  } else {
    for (int k = 0; k < K; k++) {
      floatv b[WPTN];
      #pragma unroll
      for (int j = 0; j < WPTN; j++) b[j] = load_b_row(B, ldb, k, n0 + (j * NDIMC + tx) * VW, N);
      #pragma unroll
      for (int i = 0; i < WPTM; i++) {
        float a = A_AT(rows[i], k);
        #pragma unroll
        for (int j = 0; j < WPTN; j++) acc[i][j] = fma((floatv)(a), b[j], acc[i][j]);
      }
    }
  }
#endif
  #pragma unroll
  for (int i = 0; i < WPTM; i++)
    #pragma unroll
    for (int j = 0; j < WPTN; j++) store_c(C, ldc, mi + i, n0 + (j * NDIMC + tx) * VW, M, N, acc[i][j], alpha, beta);
}

// C = alpha * sum_s W[s] + beta * C over S partial products W (S,M,N) of a
// split-K product, summed in s order (deterministic). beta = 0 never reads C.
__kernel void gemm_sum_partials(__global float *C, ulong c_off, int ldc, __global const float *W, ulong w_off, int S,
                                int M, int N, float alpha, float beta) {
  const int n = get_global_id(0), m = get_global_id(1);
  if (m >= M || n >= N) return;
  __global const float *w = W + w_off + (size_t)m * N + n;
  float s = 0.0f;
  for (int p = 0; p < S; p++) s += w[(size_t)p * M * N];
  __global float *c = C + c_off + (size_t)m * ldc + n;
  *c = beta != 0.0f ? alpha * s + beta * *c : alpha * s;
}

// out (K,N) = in^T where in is (N,K) with leading dimension ld_in: turns the
// NT product into NN. Batched over dim 2 with strides. Plain element copy:
// the transposed operand is a weight (OC x IC), small next to the product.
__kernel void gemm_transpose(__global float *out, ulong out_off, int ld_out, ulong out_stride,
                             __global const float *in, ulong in_off, int ld_in, ulong in_stride, int rows_in,
                             int cols_in) {
  const size_t batch = get_global_id(2);
  const int c = get_global_id(0), r = get_global_id(1); // element (r, c) of `in`
  if (r >= rows_in || c >= cols_in) return;
  out[out_off + batch * out_stride + (size_t)c * ld_out + r] = in[in_off + batch * in_stride + (size_t)r * ld_in + c];
}

// sums[n] += sum over rows of X[r][n] (X is (rows, N) with ld): the bias
// gradient of linear. One work-item per column, rows in order: deterministic.
__kernel void gemm_colsum(__global float *sums, ulong s_off, __global const float *X, ulong x_off, int ld, int rows,
                          int N) {
  const int n = get_global_id(0);
  if (n >= N) return;
  __global const float *p = X + x_off + n;
  float s = 0.0f;
  for (int r = 0; r < rows; r++) s += p[(size_t)r * ld];
  sums[s_off + n] += s;
}

// Column sums in two passes, for tall X: partials[c][n] = sum of rows
// [c*chunk, (c+1)*chunk) of column n (a work-item per (16 columns, chunk), so
// both cores and every SIMD lane have work; each column still sums its rows
// in order), then sums[n] += the partials in chunk order: deterministic,
// whatever the device.
__kernel void gemm_colsum_partial(__global float *partials, ulong p_off, __global const float *X, ulong x_off, int ld,
                                  int rows, int N, int chunk) {
  const int n0 = get_global_id(0) * 16, c = get_global_id(1);
  if (n0 >= N) return;
  const int r0 = c * chunk, r1 = min(rows, r0 + chunk);
  __global const float *p = X + x_off + n0;
  __global float *out = partials + p_off + (size_t)c * N + n0;
  if (n0 + 16 <= N) {
    float16 s = (float16)(0.0f);
    for (int r = r0; r < r1; r++) s += vload16(0, p + (size_t)r * ld);
    vstore16(s, 0, out);
    return;
  }
  for (int n = 0; n < N - n0; n++) {
    float s = 0.0f;
    for (int r = r0; r < r1; r++) s += p[(size_t)r * ld + n];
    out[n] = s;
  }
}

__kernel void gemm_colsum_finish(__global float *sums, ulong s_off, __global const float *partials, ulong p_off,
                                 int chunks, int N) {
  const int n = get_global_id(0);
  if (n >= N) return;
  float s = 0.0f;
  for (int c = 0; c < chunks; c++) s += partials[p_off + (size_t)c * N + n];
  sums[s_off + n] += s;
}

// Copy-bandwidth roof for `dblocks bench ops`: out = in, float4 at a time.
__kernel void gemm_copy4(__global float4 *out, __global const float4 *in, int n4) {
  const int i = get_global_id(0);
  if (i < n4) out[i] = in[i];
}
