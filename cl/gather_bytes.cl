// A batch gather from a resident byte table, converted to float on the way:
// out[b, d] = (float)table[idx[b], d] / div + shift, rounded as the C
// expression `(float)v / div + shift` rounds on the host (IEEE single, round
// to nearest at each step); a whole row of `shift` for an idx outside [0, V)
// (what byte 0 gives; never a read out of bounds).
//
// OpenCL 1.2 lets x / y be off by 2.5 ulp (GPU drivers use a reciprocal), so
// the quotient is not written as a division: the host passes rcp = 1/div,
// correctly rounded, and the kernel takes one Markstein step,
//   q0 = v * rcp,  r = fma(-q0, div, v)  (exact),  q = fma(r, rcp, q0),
// which is the correctly rounded v / div (Markstein's theorem: rcp within half
// an ulp of 1/div, q0 within one ulp of v/div; no overflow or underflow for
// v in 0..255). Multiplication, fma and addition are correctly rounded in
// OpenCL, so every device gives the host's floats bit for bit; tests check
// all 256 byte values against data/idx.h's v/127.5f - 1.0f.
//
// One work-item per output element on a 2-D grid (d, b), like
// embedding_forward: neighbouring work-items read neighbouring bytes of a row
// and write neighbouring floats.
#pragma OPENCL FP_CONTRACT OFF

__kernel void gather_bytes_forward(__global float *out, ulong out_off, __global const int *idx, ulong idx_off,
                                   __global const uchar *table, ulong table_off, int B, int D, int V, float div,
                                   float rcp, float shift) {
  int d = get_global_id(0), b = get_global_id(1);
  if (d >= D || b >= B) return;
  int v = idx[idx_off + b];
  float x = 0.0f;
  if (v >= 0 && v < V) {
    float a = (float)table[table_off + (ulong)v * D + d];
    float q0 = a * rcp;
    float r = fma(-q0, div, a);
    x = fma(r, rcp, q0);
  }
  out[out_off + (ulong)b * D + d] = x + shift;
}
