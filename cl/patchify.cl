// Images (N, Cin, H, W) <-> tokens (N, T, P), T = (H/p)(W/p) row-major over
// the patch grid (gy, gx), P = p*p*Cin with element e = (py*p + px)*Cin + c.
// Both kernels are the same permutation seen from either side; `acc` selects
// dst += src (backward) or dst = src (forward). Each iterates over its
// destination, so writes are contiguous and every element has one writer.

// dst: tokens, src: images. One work-item per token element.
__kernel void patch_to_tokens(__global float *dst, ulong dst_off, __global const float *src, ulong src_off,
                              ulong total, int Cin, int H, int W, int p, int acc) {
  ulong o = get_global_id(0);
  if (o >= total) return;
  int P = p * p * Cin, GW = W / p, T = (H / p) * GW;
  int e = (int)(o % (ulong)P);
  ulong r = o / (ulong)P;
  int tok = (int)(r % (ulong)T);
  ulong n = r / (ulong)T;
  int c = e % Cin, pp = e / Cin, px = pp % p, py = pp / p;
  int gx = tok % GW, gy = tok / GW;
  ulong i = ((n * Cin + c) * H + (ulong)(gy * p + py)) * W + (ulong)(gx * p + px);
  float v = src[src_off + i];
  if (acc) dst[dst_off + o] += v;
  else dst[dst_off + o] = v;
}

// dst: images, src: tokens. One work-item per image element.
__kernel void patch_to_image(__global float *dst, ulong dst_off, __global const float *src, ulong src_off,
                             ulong total, int Cin, int H, int W, int p, int acc) {
  ulong i = get_global_id(0);
  if (i >= total) return;
  int x = (int)(i % (ulong)W);
  ulong r = i / (ulong)W;
  int y = (int)(r % (ulong)H);
  r /= (ulong)H;
  int c = (int)(r % (ulong)Cin);
  ulong n = r / (ulong)Cin;
  int P = p * p * Cin, GW = W / p, T = (H / p) * GW;
  int tok = (y / p) * GW + x / p, e = ((y % p) * p + x % p) * Cin + c;
  ulong o = (n * T + (ulong)tok) * P + (ulong)e;
  float v = src[src_off + o];
  if (acc) dst[dst_off + i] += v;
  else dst[dst_off + i] = v;
}
