/* Device draws of the Philox streams (host side and the stream layout in
 * philox.c, kernels in cl/rng.cl). */
#include "db.h"

static void rng_launch(db_ctx *ctx, const char *kernel, db_tensor t, uint64_t seed, uint64_t offset, float a, float b) {
  db_args k = db_args_begin(ctx, "rng", kernel);
  db_arg_tensor(&k, t);
  db_arg_u64(&k, (uint64_t)db_numel(t));
  db_arg_u64(&k, seed);
  db_arg_u64(&k, offset);
  db_arg_f32(&k, a);
  db_arg_f32(&k, b);
  db_launch_1d(&k, (db_numel(t) + 3) / 4, 0); /* one work-item per counter */
}

void db_rng_normal(db_ctx *ctx, db_tensor t, uint64_t seed, uint64_t offset, float mean, float std) {
  rng_launch(ctx, "rng_normal", t, seed, offset, mean, std);
}
void db_rng_uniform(db_ctx *ctx, db_tensor t, uint64_t seed, uint64_t offset, float lo, float hi) {
  rng_launch(ctx, "rng_uniform", t, seed, offset, lo, hi);
}
