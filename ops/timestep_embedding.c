/* Sinusoidal timestep / noise-level embedding (DiT's t_embedder input, EDM's
 * c_noise), with the gradient to t for completeness. */
#include "ops.h"
#include <math.h>

/* Kernel handles (db_kernel_ref, runtime/db.h): resolved once per context. */
static elem_ref K_FORWARD = ELEM_REF("timestep_embedding", "timestep_embedding_forward");
static db_kernel_ref K_BACKWARD = DB_KERNEL_REF("timestep_embedding", "timestep_embedding_backward");

static void check_args(const char *op, int N, int D, float max_period) {
  if (N < 0) db_fail("%s: invalid N=%d", op, N);
  if (D <= 0 || D % 2) db_fail("%s: D=%d must be even and positive (cos and sin halves)", op, D);
  if (!(max_period > 0.0f)) db_fail("%s: max_period=%g must be positive", op, (double)max_period);
}

void timestep_embedding_forward(db_ctx *ctx, db_tensor out, db_tensor t, int N, int D, float max_period) {
  const char *op = "timestep_embedding_forward";
  check_args(op, N, D, max_period);
  db_check_numel(out, (size_t)N * D, op, "out");
  db_check_numel(t, (size_t)N, op, "t");
  if (N == 0) return;
  db_args a = elem_args(ctx, &K_FORWARD);
  db_arg_tensor(&a, out);
  db_arg_tensor(&a, t);
  db_arg_i32(&a, N);
  db_arg_i32(&a, D);
  db_arg_f32(&a, (float)log((double)max_period));
  elem_launch_rows(&a, D / 2, (size_t)N); /* W frequencies (cos and sin) per work-item */
}

void timestep_embedding_backward(db_ctx *ctx, db_tensor dt, db_tensor dout, db_tensor t, int N, int D,
                                 float max_period) {
  const char *op = "timestep_embedding_backward";
  check_args(op, N, D, max_period);
  db_check_numel(dt, (size_t)N, op, "dt");
  db_check_numel(dout, (size_t)N * D, op, "dout");
  db_check_numel(t, (size_t)N, op, "t");
  size_t wg = db_row_group_size(ctx, D / 2);
  db_args a = db_args_ref(ctx, &K_BACKWARD);
  db_arg_tensor(&a, dt);
  db_arg_tensor(&a, dout);
  db_arg_tensor(&a, t);
  db_arg_i32(&a, D);
  db_arg_f32(&a, (float)log((double)max_period));
  db_arg_local(&a, wg * sizeof(float));
  db_launch_1d(&a, (size_t)N * wg, wg);
}
