#include "sample_util.h"
#include "../data/image_io.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sample_run_collect(db_ctx *ctx, const sample_request *q, int verbose, float **images, int **labels_out, int *n_out,
                        run_config *rc_out) {
  run_config rc;
  manifest_read(q->run, &rc);
  if (rc.task != TASK_IMAGE)
    db_fail("sample: %s/manifest.json is a%s %s run, not an image generator (use dblocks %s)", q->run,
            rc.task == TASK_LM ? "n" : "", task_name(rc.task), rc.task == TASK_LM ? "lm-sample" : "classify-eval");
  if (q->per_class < 1) db_fail("sample: --per-class %d must be positive", q->per_class);
  dit_block *blocks = db_calloc((size_t)rc.blocks, sizeof *blocks);
  for (int b = 0; b < rc.blocks; b++) {
    char name[32], path[1024];
    snprintf(name, sizeof name, "block %d", b);
    dit_block_create(ctx, &blocks[b], rc.model, name);
    if (block_load(ctx, q->run, b, &blocks[b].ps) < 0) {
      block_file(path, sizeof path, q->run, b);
      db_fail("sample: %s is missing: train block %d first (dblocks train --out %s --block %d)", path, b, q->run, b);
    }
  }
  int C = rc.model.n_classes, n = C * q->per_class;
  size_t img = (size_t)rc.model.in_ch * rc.model.img_h * rc.model.img_w;
  int *labels = db_malloc((size_t)n * sizeof *labels);
  for (int i = 0; i < n; i++) labels[i] = i / q->per_class; /* one grid row per class */
  float *out = db_malloc((size_t)n * img * sizeof *out);
  sampler_opts so = {q->steps, q->rho, q->heun, q->guidance, q->seed, 256};
  double t0 = db_now();
  sample_images(ctx, blocks, &rc, labels, n, so, out);
  double dt = db_now() - t0;
  char png[1024], npy[1024], lab[1100];
  if (q->png) snprintf(png, sizeof png, "%s", q->png); else snprintf(png, sizeof png, "%s/samples.png", q->run);
  if (q->npy) snprintf(npy, sizeof npy, "%s", q->npy); else snprintf(npy, sizeof npy, "%s/samples.npy", q->run);
  snprintf(lab, sizeof lab, "%.*s_labels.npy", (int)(strlen(npy) > 4 && !strcmp(npy + strlen(npy) - 4, ".npy") ? strlen(npy) - 4 : strlen(npy)), npy);
  png_write_grid(png, out, n, rc.model.img_h, rc.model.img_w, q->per_class, 2, 2);
  npy_write_f32(npy, out, 4, (int[]){n, rc.model.in_ch, rc.model.img_h, rc.model.img_w});
  npy_write_i32(lab, labels, 1, (int[]){n});
  if (verbose)
    printf("sampled %d images (%d steps %s, guidance %g) in %.1f s\n  grid:    %s\n  samples: %s\n  labels:  %s\n", n,
           q->steps, q->heun ? "heun" : "euler", q->guidance, dt, png, npy, lab);
  for (int b = 0; b < rc.blocks; b++) dit_block_destroy(&blocks[b]);
  free(blocks);
  if (images) *images = out; else free(out);
  if (labels_out) *labels_out = labels; else free(labels);
  if (n_out) *n_out = n;
  if (rc_out) *rc_out = rc;
}

void sample_run(db_ctx *ctx, const sample_request *q, int verbose) {
  sample_run_collect(ctx, q, verbose, NULL, NULL, NULL, NULL);
}
