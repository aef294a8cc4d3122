// Overlapping image windows as transformer tokens, fused with a batch gather:
// out[b, t, y*w + x] = images[idx[b]][i*p - m + y][j*p - m + x], t = i*GW + j,
// GW = W/p, m = (w - p)/2; `pad` where the window leaves the image, and a whole
// token of `pad` for an idx outside [0, N_all) (never read out of bounds).
// has_idx = 0: idx is not read (may be a NULL buffer) and row b is images[b].
//
// One work-item per OUTPUT ELEMENT, on a 2-D grid (e, bt): e = y*w + x in
// [0, w*w), bt = b*T + t. Why not one per window row (patchify's choice): the
// output is (w/p)^2 times the image data it reads, so writes dominate the
// traffic, and with e along dimension 0 neighbouring work-items write
// neighbouring floats of one token (coalesced on a GPU; contiguous for a CPU
// work-group's loop) and read neighbouring pixels of one image row. The price
// is three 32-bit divisions per element, small next to the memory traffic.
// Every output element has exactly one writer.
__kernel void window_patches_forward(__global float *out, ulong out_off, __global const float *images,
                                     ulong images_off, __global const int *idx, ulong idx_off, int has_idx,
                                     int rows, int N_all, int H, int W, int p, int w, float pad) {
  int e = get_global_id(0), bt = get_global_id(1);
  int ww = w * w;
  if (e >= ww || bt >= rows) return;
  int GW = W / p, T = (H / p) * GW;
  int b = bt / T, t = bt - b * T;
  int i = t / GW, j = t - i * GW;
  int y = e / w, x = e - y * w;
  int m = (w - p) / 2;
  int n = has_idx ? idx[idx_off + (ulong)b] : b;
  int iy = i * p - m + y, ix = j * p - m + x;
  float v = pad;
  if (n >= 0 && n < N_all && iy >= 0 && iy < H && ix >= 0 && ix < W)
    v = images[images_off + ((ulong)n * H + (ulong)iy) * W + (ulong)ix];
  out[out_off + (ulong)bt * ww + (ulong)e] = v;
}
