// AdamW step for one tensor, following torch.optim.AdamW:
//   g = s * grad   (s: global-norm clip factor, computed here from normsq[0])
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p = p * (1 - lr wd)                                  (decoupled decay)
//   p = p - lr * (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)  (bc = 1 - beta^step)
// The host passes inv_bc1 = 1/bc1 and inv_sqrt_bc2 = 1/sqrt(bc2), computed in
// double. grad is read, never modified.
__kernel void adamw_step(__global float *param, ulong param_off, __global const float *grad, ulong grad_off,
                         __global float *mom, ulong mom_off, __global float *var, ulong var_off,
                         __global const float *normsq, ulong normsq_off, ulong n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, float clip, float inv_bc1,
                         float inv_sqrt_bc2) {
  ulong i = get_global_id(0);
  if (i >= n) return;
  float s = 1.0f;
  if (clip > 0.0f) {
    float norm = sqrt(normsq[normsq_off]);
    if (norm > clip) s = clip / (norm + 1e-6f);
  }
  float g = s * grad[grad_off + i];
  float m = beta1 * mom[mom_off + i] + (1.0f - beta1) * g;
  float v = beta2 * var[var_off + i] + (1.0f - beta2) * g * g;
  mom[mom_off + i] = m;
  var[var_off + i] = v;
  float p = param[param_off + i];
  p = p * (1.0f - lr * weight_decay);
  p = p - lr * (m * inv_bc1) / (sqrt(v) * inv_sqrt_bc2 + eps);
  param[param_off + i] = p;
}
