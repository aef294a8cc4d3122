// concat_rows: out (B, Ra+Rc, D) = [a[b] ; c[b]] per sample b. A broadcast
// source (stride 0 between samples) is one (R, D) block used for every b.
// One work-item per float on a (D, B*(Ra+Rc)) grid: a copy, memory-bound.
__kernel void concat_rows_forward(__global float *out, ulong out_off, __global const float *a, ulong a_off,
                                  __global const float *c, ulong c_off, int B, int Ra, int Rc, int D,
                                  ulong a_stride, ulong c_stride) {
  int d = get_global_id(0), row = get_global_id(1), R = Ra + Rc;
  if (d >= D || row >= B * R) return;
  int b = row / R, r = row - b * R;
  float v = r < Ra ? a[a_off + b * a_stride + (ulong)r * D + d] : c[c_off + b * c_stride + (ulong)(r - Ra) * D + d];
  out[out_off + (ulong)row * D + d] = v;
}

// dsrc (B, Rs, D) += rows [r0, r0+Rs) of every sample of dout (B, R, D).
__kernel void concat_rows_backward(__global float *dsrc, ulong dsrc_off, __global const float *dout, ulong dout_off,
                                   int B, int R, int r0, int Rs, int D) {
  int d = get_global_id(0), row = get_global_id(1);
  if (d >= D || row >= B * Rs) return;
  int b = row / Rs, r = row - b * Rs;
  dsrc[dsrc_off + (ulong)row * D + d] += dout[dout_off + ((ulong)b * R + r0 + r) * D + d];
}
