/* Device draws of the Philox streams (host side and the stream layout in
 * philox.c, kernels in cl/rng.cl). */
#include "db.h"

/* Kernel handles (db_kernel_ref): resolved once per context. */
static db_kernel_ref K_NORMAL = DB_KERNEL_REF("rng", "rng_normal");
static db_kernel_ref K_UNIFORM = DB_KERNEL_REF("rng", "rng_uniform");

static void rng_launch(db_ctx *ctx, db_kernel_ref *kernel, db_tensor t, uint64_t seed, uint64_t offset, float a, float b) {
  db_args k = db_args_ref(ctx, kernel);
  db_arg_tensor(&k, t);
  db_arg_u64(&k, (uint64_t)db_numel(t));
  db_arg_u64(&k, seed);
  db_arg_u64(&k, offset);
  db_arg_f32(&k, a);
  db_arg_f32(&k, b);
  db_launch_1d(&k, (db_numel(t) + 3) / 4, 0); /* one work-item per counter */
}

void db_rng_normal(db_ctx *ctx, db_tensor t, uint64_t seed, uint64_t offset, float mean, float std) {
  rng_launch(ctx, &K_NORMAL, t, seed, offset, mean, std);
}
void db_rng_uniform(db_ctx *ctx, db_tensor t, uint64_t seed, uint64_t offset, float lo, float hi) {
  rng_launch(ctx, &K_UNIFORM, t, seed, offset, lo, hi);
}
