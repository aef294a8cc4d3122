// Images (N, Cin, H, W) <-> tokens (N, T, P), T = (H/p)(W/p) row-major over
// the patch grid (gy, gx), P = p*p*Cin with element e = (py*p + px)*Cin + c.
// Both kernels are the same permutation seen from either side; `acc` selects
// dst += src (backward) or dst = src (forward). Every element has one writer.
// 2-D grid (gx, r), r = (n*Cin + c)*H + y an image row: a work-item moves the
// p pixels of one patch row (contiguous in the image, Cin apart in the token),
// so it divides six times (32-bit) per p elements, not six 64-bit divisions
// per element.

// First image and token indices of the patch row (gx, r); the k-th pixel of
// it is image element i0 + k, token element o0 + k * Cin.
void patch_row(int gx, int r, int Cin, int H, int W, int p, ulong *i0, ulong *o0) {
  int y = r % H, nc = r / H, c = nc % Cin, n = nc / Cin;
  int GW = W / p, T = (H / p) * GW, P = p * p * Cin;
  *i0 = (ulong)r * W + (ulong)gx * p;
  *o0 = ((ulong)n * T + (ulong)((y / p) * GW + gx)) * P + (ulong)((y % p) * p * Cin + c);
}

// dst: tokens, src: images.
__kernel void patch_to_tokens(__global float *dst, ulong dst_off, __global const float *src, ulong src_off,
                              int rows, int Cin, int H, int W, int p, int acc) {
  int gx = get_global_id(0), r = get_global_id(1);
  if (gx >= W / p || r >= rows) return;
  ulong i0, o0;
  patch_row(gx, r, Cin, H, W, p, &i0, &o0);
  __global float *d = dst + dst_off + o0;
  __global const float *s = src + src_off + i0;
  if (acc)
    for (int k = 0; k < p; k++) d[(ulong)k * Cin] += s[k];
  else
    for (int k = 0; k < p; k++) d[(ulong)k * Cin] = s[k];
}

// dst: images, src: tokens.
__kernel void patch_to_image(__global float *dst, ulong dst_off, __global const float *src, ulong src_off,
                             int rows, int Cin, int H, int W, int p, int acc) {
  int gx = get_global_id(0), r = get_global_id(1);
  if (gx >= W / p || r >= rows) return;
  ulong i0, o0;
  patch_row(gx, r, Cin, H, W, p, &i0, &o0);
  __global float *d = dst + dst_off + i0;
  __global const float *s = src + src_off + o0;
  if (acc)
    for (int k = 0; k < p; k++) d[k] += s[(ulong)k * Cin];
  else
    for (int k = 0; k < p; k++) d[k] = s[(ulong)k * Cin];
}
