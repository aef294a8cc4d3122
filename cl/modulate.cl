// AdaLN modulation: out = x * (1 + scale[b]) + shift[b], broadcast over tokens.
// shift/scale live at columns shift_col/scale_col of the packed mod (B, ld).
__kernel void modulate_forward(__global float *out, ulong out_off, __global const float *inp, ulong inp_off,
                               __global const float *mod, ulong mod_off, int shift_col, int scale_col, int B, int T,
                               int C, int ld) {
  ulong i = get_global_id(0);
  if (i >= (ulong)B * T * C) return;
  int c = i % C, b = i / ((ulong)T * C);
  __global const float *m = mod + mod_off + (ulong)b * ld;
  out[out_off + i] = inp[inp_off + i] * (1.0f + m[scale_col + c]) + m[shift_col + c];
}

__kernel void modulate_backward_inp(__global float *dinp, ulong dinp_off, __global const float *dout, ulong dout_off,
                                    __global const float *mod, ulong mod_off, int scale_col, int B, int T, int C,
                                    int ld) {
  ulong i = get_global_id(0);
  if (i >= (ulong)B * T * C) return;
  int c = i % C, b = i / ((ulong)T * C);
  dinp[dinp_off + i] += dout[dout_off + i] * (1.0f + mod[mod_off + (ulong)b * ld + scale_col + c]);
}

// One work-item per (b, c): sums over the T tokens in order (deterministic).
__kernel void modulate_backward_mod(__global float *dmod, ulong dmod_off, __global const float *dout, ulong dout_off,
                                    __global const float *inp, ulong inp_off, int shift_col, int scale_col, int B,
                                    int T, int C, int ld) {
  ulong i = get_global_id(0);
  if (i >= (ulong)B * C) return;
  int c = i % C, b = i / C;
  ulong base = (ulong)b * T * C + c;
  float dshift = 0.0f, dscale = 0.0f;
  for (int t = 0; t < T; t++) {
    float g = dout[dout_off + base + (ulong)t * C];
    dshift += g;
    dscale += g * inp[inp_off + base + (ulong)t * C];
  }
  dmod[dmod_off + (ulong)b * ld + shift_col + c] += dshift;
  dmod[dmod_off + (ulong)b * ld + scale_col + c] += dscale;
}
