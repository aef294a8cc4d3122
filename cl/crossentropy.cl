// Softmax cross-entropy. Forward: one work-group per row (power-of-two size,
// chosen by the host), three passes over the row: max, exp and its sum
// (exp stored in probs), scale.
// The loss is log(sum) - (x[t] - max), which stays accurate when p[t] is tiny.
// Targets: -1 is ignored (loss 0, no gradient); any other value outside
// [0, V) is invalid: its loss is NaN (so the mistake shows) and backward
// leaves its row untouched. Nothing is ever read out of bounds.



__kernel void crossentropy_forward(__global float *losses, ulong losses_off, __global float *probs,
                                   ulong probs_off, __global const float *logits, ulong logits_off,
                                   __global const int *targets, ulong targets_off, int V,
                                   __local float *buf) {
  int row = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  __global const float *x = logits + logits_off + (ulong)row * V;
  __global float *p = probs + probs_off + (ulong)row * V;
  float m = -INFINITY;
  for (int i = lid; i < V; i += nl) m = fmax(m, x[i]);
  m = wg_max(buf, m);
  float s = 0.0f;
  for (int i = lid; i < V; i += nl) { float e = exp(x[i] - m); p[i] = e; s += e; } // own elements only
  s = wg_sum(buf, s);
  float inv = 1.0f / s;
  for (int i = lid; i < V; i += nl) p[i] *= inv;
  if (lid == 0) {
    int t = targets[targets_off + row];
    float loss;
    if (t == -1) loss = 0.0f;
    else if (t < 0 || t >= V) loss = NAN;
    else loss = log(s) - (x[t] - m);
    losses[losses_off + row] = loss;
  }
}

// dlogits[n, v] += (probs[n, v] - (v == target[n])) * dlosses[n]; 2-D grid (v, n).
__kernel void crossentropy_backward(__global float *dlogits, ulong dlogits_off, __global const float *dlosses,
                                    ulong dlosses_off, __global const float *probs, ulong probs_off,
                                    __global const int *targets, ulong targets_off, int N, int V) {
  int v = get_global_id(0), n = get_global_id(1);
  if (v >= V || n >= N) return;
  int t = targets[targets_off + n];
  if (t < 0 || t >= V) return; // ignored (-1) or invalid target: no gradient
  ulong i = (ulong)n * V + v;
  float g = probs[probs_off + i] - (v == t ? 1.0f : 0.0f);
  dlogits[dlogits_off + i] += g * dlosses[dlosses_off + n];
}
