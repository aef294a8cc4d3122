// Deterministic two-pass reductions to a scalar. Pass 1: a fixed number of
// work-groups, each thread a strided loop, then a tree over the group, one
// partial per group. Pass 2: one work-group sums the partials in a fixed
// order. The work-group size is a power of two (the host picks it), and the
// grouping depends only on n and that size, so results repeat bit for bit.


// partials[group] = sum over this group's strided share of x (or x^2 when square)
__kernel void reduce_partials(__global float *partials, ulong part_off, __global const float *inp, ulong inp_off,
                              ulong n, int square, __local float *buf) {
  ulong i = get_global_id(0), stride = get_global_size(0);
  __global const float *x = inp + inp_off;
  float s = 0.0f;
  if (square)
    for (; i < n; i += stride) { float v = x[i]; s += v * v; }
  else
    for (; i < n; i += stride) s += x[i];
  float r = wg_sum(buf, s);
  if (get_local_id(0) == 0) partials[part_off + get_group_id(0)] = r;
}

// out[0] = sum of partials (add: out[0] += sum), one work-group
__kernel void reduce_final(__global float *out, ulong out_off, __global const float *partials, ulong part_off,
                           int n_partials, int add, __local float *buf) {
  int lid = get_local_id(0), nl = get_local_size(0);
  float s = 0.0f;
  for (int i = lid; i < n_partials; i += nl) s += partials[part_off + i];
  float r = wg_sum(buf, s);
  if (lid == 0) out[out_off] = add ? out[out_off] + r : r;
}
