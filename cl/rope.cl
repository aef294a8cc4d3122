// Rotary position embedding (RoPE), GPT-NeoX "rotate half" pairing, in place
// on the first ncols columns of each row of x (N, ld), in heads of hs
// columns: within a head, columns i and i + hs/2 (i < hs/2) rotate by
//   theta = pos * inv_freq_i,  inv_freq_i = base^(-2i/hs),
//   x'_i = x_i cos - x_{i+hs/2} sin,  x'_{i+hs/2} = x_{i+hs/2} cos + x_i sin,
// pos = pos0 + (row mod period). sign = -1 rotates by -theta (the backward:
// a rotation's transpose is its inverse). One work-item per pair.
//
// Precision: inv_freq = exp2(-(2i/hs) log2(base)) in float (relative error a
// few 1e-7); the product pos * inv_freq keeps its rounding error as a second
// term (fma), added through cos/sin of the small remainder, so the angle's
// error is inv_freq's alone: about pos * 1e-7 radians (4e-4 at pos 4096).
__kernel void rope_rotate(__global float *x, ulong x_off, int N, int ncols, int ld, int hs, int pos0, int period,
                          float log2_base, float sign) {
  ulong gid = get_global_id(0);
  int hh = hs / 2, pairs = ncols / 2;
  if (gid >= (ulong)N * pairs) return;
  // x - q * y, not x % y beside x / y (no LLVM freeze: see cl/attention.cl)
  ulong r = gid / pairs;
  int p = (int)(gid - r * pairs);
  int h = p / hh, i = p - h * hh;
  ulong rq = r / period;
  float pos = (float)(pos0 + (int)(r - rq * period));
  float inv_freq = exp2(-((float)(2 * i) / (float)hs) * log2_base);
  float th = pos * inv_freq, tl = fma(pos, inv_freq, -th); // pos * inv_freq = th + tl exactly
  float c = cos(th), s = sin(th); // not sincos: Oclgrind's checker cannot follow its pointer
  float c2 = c - s * tl, s2 = s + c * tl; // cos, sin of th + tl to first order: |tl| <= half an ulp of th
  s2 *= sign;
  __global float *e = x + x_off + r * (ulong)ld + (ulong)h * hs + i;
  float a = e[0], b = e[hh];
  e[0] = a * c2 - b * s2;
  e[hh] = b * c2 + a * s2;
}
