/* The two model-driven figures of `dblocks report` (issue 12), drawn with cairo:
 * they run a trained model and show what each block does to a sample. */
#ifndef DB_REPORT_TRACES_H
#define DB_REPORT_TRACES_H
#include "../runtime/db.h"
#include <stdint.h>
/* Image runs: the denoising trajectory: one row per class, columns at the σ where each block hands over
 * (plus `inside` steps within each block), each cell showing D(z) above z; PNG at png_path. Returns 0, or
 * fails with db_fail naming the problem. */
int report_image_trajectory(db_ctx *ctx, const char *run_dir, const char *png_path, int inside, uint64_t seed);
/* LM runs: the generation trace of one token: per diffusion step, the top-k candidates of the denoised byte
 * distribution, grouped by the block that ran the step; SVG at svg_path. */
int report_lm_trace(db_ctx *ctx, const char *run_dir, const char *prompt, const char *svg_path, int top_k, uint64_t seed);
#endif
