/* AdamW with bias correction, decoupled weight decay and global-norm clipping.
 * The squared global norm is reduced on the device into normsq and the clip
 * factor is computed by the update kernel itself: no host read per step. */
#include "ops.h"
#include <math.h>

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static db_kernel_ref K_STEP = DB_KERNEL_REF("adamw", "adamw_step");

void global_norm_squared(db_ctx *ctx, db_tensor normsq, const db_tensor *grads, int n_tensors) {
  db_check_numel(normsq, 1, "global_norm_squared", "normsq");
  if (n_tensors < 0) db_fail("global_norm_squared: n_tensors = %d, must be >= 0", n_tensors);
  if (n_tensors > 0 && !grads) db_fail("global_norm_squared: grads array is NULL");
  db_zero(ctx, normsq);
  for (int i = 0; i < n_tensors; i++) {
    if (db_is_null(grads[i])) db_fail("global_norm_squared: grads[%d] is missing (null tensor)", i);
    reduce_sumsq_add(ctx, normsq, grads[i], db_numel(grads[i]));
  }
}

static void check_same(db_tensor t, size_t n, int i, const char *arg) {
  if (db_is_null(t)) db_fail("adamw_update: tensor %d: %s is missing (null tensor)", i, arg);
  if (t.dtype != DB_F32) db_fail("adamw_update: tensor %d: %s is not float32", i, arg);
  if (db_numel(t) != n)
    db_fail("adamw_update: tensor %d: %s has %zu elements, params has %zu", i, arg, db_numel(t), n);
}

void adamw_update(db_ctx *ctx, const db_tensor *params, const db_tensor *grads, const db_tensor *m,
                  const db_tensor *v, const int *decay, int n_tensors, db_tensor normsq, adamw_config cfg,
                  int step) {
  if (step < 1) db_fail("adamw_update: step = %d, must be >= 1 (steps are 1-based)", step);
  if (n_tensors < 0) db_fail("adamw_update: n_tensors = %d, must be >= 0", n_tensors);
  if (n_tensors > 0 && (!params || !grads || !m || !v))
    db_fail("adamw_update: params, grads, m and v arrays must not be NULL");
  if (!(cfg.beta1 >= 0.0f && cfg.beta1 < 1.0f) || !(cfg.beta2 >= 0.0f && cfg.beta2 < 1.0f))
    db_fail("adamw_update: betas (%g, %g) must lie in [0, 1)", (double)cfg.beta1, (double)cfg.beta2);
  db_check_numel(normsq, 1, "adamw_update", "normsq");
  for (int i = 0; i < n_tensors; i++) {
    if (db_is_null(params[i])) db_fail("adamw_update: tensor %d: params is missing (null tensor)", i);
    size_t n = db_numel(params[i]);
    check_same(params[i], n, i, "params");
    check_same(grads[i], n, i, "grads");
    check_same(m[i], n, i, "m");
    check_same(v[i], n, i, "v");
  }

  global_norm_squared(ctx, normsq, grads, n_tensors);

  double bc1 = 1.0 - pow((double)cfg.beta1, (double)step);
  double bc2 = 1.0 - pow((double)cfg.beta2, (double)step);
  float inv_bc1 = (float)(1.0 / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
  for (int i = 0; i < n_tensors; i++) {
    size_t n = db_numel(params[i]);
    if (n == 0) continue;
    float wd = (!decay || decay[i]) ? cfg.weight_decay : 0.0f;
    db_args a = db_args_ref(ctx, &K_STEP);
    db_arg_tensor(&a, params[i]);
    db_arg_tensor(&a, grads[i]);
    db_arg_tensor(&a, m[i]);
    db_arg_tensor(&a, v[i]);
    db_arg_tensor(&a, normsq);
    db_arg_u64(&a, (uint64_t)n);
    db_arg_f32(&a, cfg.lr);
    db_arg_f32(&a, cfg.beta1);
    db_arg_f32(&a, cfg.beta2);
    db_arg_f32(&a, cfg.eps);
    db_arg_f32(&a, wd);
    db_arg_f32(&a, cfg.clip);
    db_arg_f32(&a, inv_bc1);
    db_arg_f32(&a, inv_sqrt_bc2);
    db_launch_1d(&a, n, 0);
  }
}
