// Per-sample weighted MSE, losses[n] = w[n] * sum_d (pred - target)^2 / D.
// Forward: one work-group per row (power-of-two size chosen by the host).


__kernel void weighted_mse_forward(__global float *losses, ulong losses_off, __global const float *pred,
                                   ulong pred_off, __global const float *target, ulong target_off,
                                   __global const float *weight, ulong weight_off, int D, __local float *buf) {
  int row = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  __global const float *x = pred + pred_off + (ulong)row * D;
  __global const float *y = target + target_off + (ulong)row * D;
  float s = 0.0f;
  for (int i = lid; i < D; i += nl) { float d = x[i] - y[i]; s += d * d; }
  s = wg_sum(buf, s);
  if (lid == 0) losses[losses_off + row] = weight[weight_off + row] * (s / D);
}

// dpred[n, d] += dlosses[n] * w[n] * 2 (pred - target) / D; 2-D grid (d, n).
__kernel void weighted_mse_backward(__global float *dpred, ulong dpred_off, __global const float *dlosses,
                                    ulong dlosses_off, __global const float *pred, ulong pred_off,
                                    __global const float *target, ulong target_off, __global const float *weight,
                                    ulong weight_off, int N, int D) {
  int d = get_global_id(0), n = get_global_id(1);
  if (d >= D || n >= N) return;
  ulong i = (ulong)n * D + d;
  float scale = dlosses[dlosses_off + n] * weight[weight_off + n] * (2.0f / D);
  dpred[dpred_off + i] += scale * (pred[pred_off + i] - target[target_off + i]);
}
