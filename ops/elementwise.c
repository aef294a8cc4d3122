/* Launch shapes of the vectorised elementwise kernels (gelu, silu, modulate,
 * gated_residual, bias_gelu, ...). Each work-item handles W consecutive floats
 * through vloadW/vstoreW (any float alignment, so tensor offsets need no
 * special case) and a scalar loop for the last partial chunk. W = 16 on a CPU:
 * PoCL then calls the 16-lane exp and fills an AVX-512 register, where one
 * float per work-item ran tanh/exp one lane at a time (gelu: 2 -> 8 GB/s).
 * W = 4 elsewhere: a float4 per work-item keeps GPU loads coalesced. */
#include "ops.h"
#include <stdio.h>

static int forced_width;

void elem_force_width(int w) {
  if (w != 0 && w != 4 && w != 16) db_fail("elem_force_width: width %d is not 0 (automatic), 4 or 16", w);
  forced_width = w;
}

int elem_width(db_ctx *ctx) {
  if (forced_width) return forced_width;
  return (ctx->dev.type & CL_DEVICE_TYPE_CPU) ? 16 : 4;
}


db_args elem_args(db_ctx *ctx, elem_ref *r) {
  return db_args_ref(ctx, elem_width(ctx) == 16 ? &r->w16 : &r->w4);
}

void elem_launch(db_args *a, size_t n) {
  size_t w = (size_t)elem_width(a->ctx);
  db_launch_1d(a, (n + w - 1) / w, 0);
}

/* 2-D: dim 0 over the W-wide chunks of a row of C, dim 1 over the rows; a
 * group covers all chunks of a few rows, so no work-item divides an index. */
void elem_launch_rows(db_args *a, int C, size_t rows) {
  size_t w = (size_t)elem_width(a->ctx), chunks = ((size_t)C + w - 1) / w, l0 = 1;
  while (l0 * 2 <= a->ctx->wg && l0 < chunks) l0 *= 2;
  size_t l1 = a->ctx->wg / l0 ? a->ctx->wg / l0 : 1;
  while (l1 > 1 && l1 / 2 >= rows) l1 /= 2;
  db_launch_2d(a, chunks, rows, l0, l1);
}
