/* `dblocks classify-eval`: test accuracy of a trained diffusion classifier
 * (train --task classify), one Euler step per block (docs/classify.md).
 * `dblocks classify-backprop`: the backprop ViT baseline, i.e. the evaluation
 * classifier (models/classifier.h) trained end to end by its recipe on the same data. */
#include "../data/file_io.h"
#include "../models/classifier.h"
#include "../models/classify_task.h"
#include "cli.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_classify_eval(int argc, char **argv);
int cmd_classify_backprop(int argc, char **argv);

int cmd_classify_eval(int argc, char **argv) {
  const char *run = NULL, *data = NULL, *device = NULL, *json = NULL, *split = "test";
  int seed = 0;
  cli_opt opts[] = {
      {"run", OPT_STR, &run, "run directory of `dblocks train --task classify` (required)"},
      {"data", OPT_STR, &data, "directory of IDX files (default /usr/share/datasets/fashion-mnist)"},
      {"split", OPT_STR, &split, "test (default) or train"},
      {"seed", OPT_INT, &seed, "seed of the initial label noise z = sigma_max * eps (default 0)"},
      {"json", OPT_STR, &json, "also write the figures as JSON to this file"},
      {"device", OPT_STR, &device, "P:D device"},
  };
  cli_parse("classify-eval",
            "dblocks classify-eval --run DIR [--split test|train] [--seed N] [--json FILE]\n"
            "  classifies the split's images block by block (one Euler step per block from sigma_max, each block\n"
            "  alone on the device) and reports the accuracy of the last block's argmax and of every block's.",
            opts, (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  if (!run) db_fail("classify-eval: --run DIR is required");
  if (strcmp(split, "test") && strcmp(split, "train")) db_fail("classify-eval: --split %s: expected test or train", split);
  if (seed < 0) db_fail("classify-eval: --seed %d must not be negative", seed);
  idx_dataset ds = idx_load(data, split);
  db_ctx *ctx = db_init(device);
  classify_result r = classify_evaluate(ctx, run, &ds, (uint64_t)seed, NULL);
  int B = r.blocks;
  printf("dblocks classify-eval on %s: %s, %s split (%d images)\n", ctx->dev.name, run, split, ds.n);
  printf("accuracy %.2f %%; after each block:", 100 * r.accuracy);
  for (int b = 0; b < B; b++) printf(" %.2f", 100 * r.block_accuracy[b]);
  printf(" %%; %.1f s, peak device memory %.1f MiB\n", r.seconds, r.peak_bytes / 1048576.0);
  if (json) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:f, s:f, s:f}", "run", run, "device", ctx->dev.name, "split", split,
                          "images", ds.n, "seed", seed, "accuracy", r.accuracy, "seconds", r.seconds, "peak_mib",
                          r.peak_bytes / 1048576.0);
    json_t *pb = json_array();
    for (int b = 0; b < B; b++) json_array_append_new(pb, json_real(r.block_accuracy[b]));
    json_object_set_new(o, "accuracy_after_block", pb);
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
    atomic_write_file(json, s, strlen(s));
    free(s);
    json_decref(o);
  }
  idx_free(&ds);
  db_shutdown(ctx);
  return 0;
}

int cmd_classify_backprop(int argc, char **argv) {
  const char *out = NULL, *data = NULL, *device = NULL;
  int epochs = 8, batch = 64, seed = 7;
  double lr = 2e-3;
  clf_config cfg = clf_default_config();
  cli_opt opts[] = {
      {"epochs", OPT_INT, &epochs, "epochs (default 8)"},
      {"batch", OPT_INT, &batch, "batch size (default 64)"},
      {"lr", OPT_FLOAT, &lr, "peak AdamW learning rate (default 2e-3; warm-up, cosine decay)"},
      {"seed", OPT_INT, &seed, "initialisation and shuffling seed (default 7)"},
      {"width", OPT_INT, &cfg.width, "model width (default 64)"},
      {"layers", OPT_INT, &cfg.depth, "transformer layers (default 2)"},
      {"heads", OPT_INT, &cfg.heads, "attention heads (default 4)"},
      {"patch", OPT_INT, &cfg.patch, "patch size (default 7)"},
      {"window", OPT_INT, &cfg.window, "pixels per token side around each patch, 0 = the patch (default 15)"},
      {"out", OPT_STR, &out, "save the weights to this safetensors file (default: not saved)"},
      {"data", OPT_STR, &data, "directory of IDX files (default /usr/share/datasets/fashion-mnist)"},
      {"device", OPT_STR, &device, "P:D device"},
  };
  cli_parse("classify-backprop",
            "dblocks classify-backprop [options]\n"
            "  the backprop ViT baseline of the diffusion classifier: the evaluation classifier's ViT and recipe\n"
            "  (defaults: the shipped weights' recipe), trained end to end; reports test accuracy, wall time and\n"
            "  peak device memory.",
            opts, (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  if (epochs <= 0 || batch <= 0 || !(lr > 0) || seed < 0)
    db_fail("classify-backprop: --epochs, --batch and --lr must be positive, --seed not negative");
  clf_config_check(&cfg);
  idx_dataset train = idx_load(data, "train"), test = idx_load(data, "test");
  db_ctx *ctx = db_init(device);
  printf("dblocks classify-backprop on %s: width %d, %d layers, %d heads, patch %d window %d, %d epochs of batch %d, "
         "lr %g\n", ctx->dev.name, cfg.width, cfg.depth, cfg.heads, cfg.patch, cfg.window, epochs, batch, lr);
  fflush(stdout);
  db_reset_peak();
  double t0 = db_now();
  classifier *c = clf_create(ctx, cfg, (uint64_t)seed);
  double acc = clf_train(ctx, c, &train, &test, epochs, batch, (float)lr, (uint64_t)seed);
  double secs = db_now() - t0;
  printf("test accuracy %.2f %%, %.1f s, %zu parameters, peak device memory %.1f MiB\n", 100 * acc, secs,
         param_set_numel(clf_params(c)), db_peak_bytes() / 1048576.0);
  if (out) {
    clf_save(c, out);
    printf("weights in %s\n", out);
  }
  clf_free(c);
  idx_free(&train);
  idx_free(&test);
  db_shutdown(ctx);
  return 0;
}
