/* `dblocks demo` (what `make demo` runs): trains a small B = 3 DiffusionBlocks
 * DiT on Fashion-MNIST, samples a grid, and evaluates it: a few minutes on a
 * 2-core CPU through PoCL, then writes the run's report (RUN/report/index.html).
 * Re-running continues or reuses the trained blocks. */
#include "../models/classifier.h"
#include "../models/image_task.h"
#include "cli.h"
#include "eval_util.h"
#include "sample_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int cmd_report(int argc, char **argv); /* tools/cmd_report.c */

int cmd_demo(int argc, char **argv) {
  const char *device = NULL, *out = "build/demo", *data = NULL;
  int steps = 0, per_class = 30;
  cli_opt opts[] = {
      {"out", OPT_STR, &out, "run directory (default build/demo)"},
      {"steps", OPT_INT, &steps, "steps per block (default: sized for about 6 minutes on a 2-core CPU)"},
      {"per-class", OPT_INT, &per_class, "samples per class for the evaluation (default 30)"},
      {"data", OPT_STR, &data, "IDX directory (default Fashion-MNIST)"},
      {"device", OPT_STR, &device, "P:D device"},
  };
  cli_parse("demo", "dblocks demo [options]\n  train a small B = 3 model, sample a grid, evaluate it", opts,
            (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  double t0 = db_now();
  db_ctx *ctx = db_init(device);
  train_opts o = {0};
  run_config_defaults(&o.rc);
  /* small enough for a CPU: 7x7 patches of 4x4 pixels, 6 layers in 3 blocks of 2 */
  o.rc.model.width = 64;
  o.rc.model.heads = 4;
  o.rc.model.patch = 4;
  o.rc.layers = 6;
  o.rc.blocks = 3;
  o.rc.batch = 64;
  o.rc.lr = 3e-3; /* high for a transformer, but it learns the class conditioning in few steps */
  o.rc.steps = steps > 0 ? steps : 400;
  run_config_finish(&o.rc);
  o.out_dir = out;
  o.only_block = -1;
  o.log_every = 10;
  o.progress = 1;
  o.ckpt_every = 0;
  char manifest[1024];
  snprintf(manifest, sizeof manifest, "%s/manifest.json", out);
  struct stat st;
  o.resume = stat(manifest, &st) == 0; /* a second `make demo` reuses what is trained */
  printf("dblocks demo on %s\n", ctx->dev.name);
  printf("1. train: Fashion-MNIST, DiT width %d, patch %d, L = %d layers in B = %d blocks, batch %d, %d steps per block\n",
         o.rc.model.width, o.rc.model.patch, o.rc.layers, o.rc.blocks, o.rc.batch, o.rc.steps);
  fflush(stdout);
  size_t dataset_bytes;
  train_result tr = image_train(ctx, &o, data, &dataset_bytes);
  printf("   %ld steps in %.0f s, peak device memory %.1f MiB (%.1f MiB of it the resident dataset)\n", tr.steps_run,
         tr.seconds, tr.peak_bytes / 1048576.0, dataset_bytes / 1048576.0);
  printf("2. sample: 50 Euler steps, guidance 2.0, one row per class\n");
  fflush(stdout);
  sample_request grid = {out, 50, 0, 2.0, 7.0, 10, 0, NULL, NULL};
  sample_run(ctx, &grid, 1);
  printf("3. evaluate: %d samples per class against the test set\n", per_class);
  fflush(stdout);
  char png[1100], npy[1100];
  snprintf(png, sizeof png, "%s/eval_samples.png", out);
  snprintf(npy, sizeof npy, "%s/eval_samples.npy", out);
  sample_request q = {out, 50, 0, 2.0, 7.0, per_class, 1, png, npy};
  float *images;
  int *labels, n;
  sample_run_collect(ctx, &q, 0, &images, &labels, &n, NULL);
  const char *clf_path = eval_default_classifier_path();
  classifier *clf = eval_classifier(ctx, clf_path, data, 0, 8);
  eval_result r = eval_samples(ctx, clf, data, images, labels, n);
  printf("   Frechet distance (classifier features): %.3f\n", r.frechet);
  printf("   conditional accuracy: %.1f %% of %d samples (chance 10 %%; classifier test accuracy %.1f %%)\n",
         100 * r.cond_acc, n, 100 * r.clf_test_acc);
  char mpath[1100];
  snprintf(mpath, sizeof mpath, "%s/metrics.json", out);
  eval_write_json(mpath, &r, db_now() - t0);
  free(images);
  free(labels);
  clf_free(clf);
  db_shutdown(ctx);
  printf("4. report: figures of the run and one HTML page (docs/report.md)\n");
  fflush(stdout);
  char run_arg[1100];
  snprintf(run_arg, sizeof run_arg, "%s", out);
  char *rargv[] = {"report", "--run", run_arg, NULL};
  cmd_report(3, rargv);
  printf("done in %.0f s\n  samples grid: %s/samples.png\n  metrics:      %s\n  report:       %s/report/index.html\n",
         db_now() - t0, out, mpath, out);
  return 0;
}
