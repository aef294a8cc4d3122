/* `dblocks eval`: Fréchet distance (classifier features, samples vs test set)
 * and conditional accuracy of a trained run's samples, or of given .npy files. */
#include "../data/image_io.h"
#include "../models/classifier.h"
#include "cli.h"
#include "eval_util.h"
#include "sample_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "(2, 3)" */
static const char *shape_str(char *buf, size_t len, int nd, const int *shape) {
  size_t k = (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < nd && k < len; i++) k += (size_t)snprintf(buf + k, len - k, "%s%d", i ? ", " : "", shape[i]);
  if (k < len) snprintf(buf + k, len - k, ")");
  return buf;
}

/* The --samples and --labels arrays, checked before any device work (each
 * failure names the file): samples (n,1,H,W) or (n,H,W) with n >= 2 and every
 * value finite; labels 1-D with n entries. With h > 0, H x W must be h x w
 * and every label in 0..classes-1 (the classifier's configuration). */
static void check_inputs(const char *samples, const float *images, int nd, const int *shape, const char *labels_path,
                         const int *labels, int lnd, const int *lshape, int h, int w, int classes) {
  char sb[80], lb[80];
  int ok = (nd == 3 || (nd == 4 && shape[1] == 1)) && (h <= 0 || (shape[nd - 2] == h && shape[nd - 1] == w));
  if (!ok) {
    if (h > 0)
      db_fail("eval: %s has shape %s; expected (n, 1, %d, %d) or (n, %d, %d)", samples, shape_str(sb, sizeof sb, nd, shape),
              h, w, h, w);
    db_fail("eval: %s has shape %s; expected (n, 1, H, W) or (n, H, W)", samples, shape_str(sb, sizeof sb, nd, shape));
  }
  int n = shape[0];
  if (n < 2) db_fail("eval: %s has shape %s: need at least 2 samples", samples, shape_str(sb, sizeof sb, nd, shape));
  if (lnd != 1 || lshape[0] != n)
    db_fail("eval: %s has shape %s; expected (%d): one label per sample of %s", labels_path,
            shape_str(lb, sizeof lb, lnd, lshape), n, samples);
  size_t px = (size_t)shape[nd - 2] * shape[nd - 1], bad;
  size_t first = eval_first_nonfinite(images, (size_t)n * px, &bad);
  if (bad)
    db_fail("eval: %s holds %zu non-finite value%s (NaN or Inf), the first at index %zu (sample %zu)", samples, bad, bad == 1 ? "" : "s",
            first, first / px);
  if (h > 0)
    for (int i = 0; i < n; i++)
      if (labels[i] < 0 || labels[i] >= classes)
        db_fail("eval: %s: label %d at index %d is outside 0..%d (the classifier has %d classes)", labels_path,
                labels[i], i, classes - 1, classes);
}

int cmd_eval(int argc, char **argv) {
  const char *device = NULL, *run = NULL, *samples = NULL, *labels_path = NULL, *clf_path = NULL, *data = NULL;
  const char *sampler = "euler", *json = NULL;
  int per_class = 100, steps = 50, seed = 0, retrain = 0, epochs = 0;
  double guidance = 2.0;
  cli_opt opts[] = {
      {"run", OPT_STR, &run, "trained run to sample and evaluate"},
      {"samples", OPT_STR, &samples, "evaluate these samples (.npy, (n,1,H,W) or (n,H,W)) instead of a run"},
      {"labels", OPT_STR, &labels_path, "their labels (.npy int32; default SAMPLES with _labels.npy)"},
      {"per-class", OPT_INT, &per_class, "samples per class to draw from --run (default 100)"},
      {"steps", OPT_INT, &steps, "sampling steps (default 50)"},
      {"sampler", OPT_STR, &sampler, "euler | heun (default euler)"},
      {"guidance", OPT_FLOAT, &guidance, "classifier-free guidance scale (default 2.0)"},
      {"seed", OPT_INT, &seed, "sampling seed (default 0)"},
      {"classifier", OPT_STR, &clf_path, "classifier weights (default data/classifier-fmnist.safetensors)"},
      {"train-classifier", OPT_FLAG, &retrain, "train the classifier anew and save it to --classifier"},
      {"epochs", OPT_INT, &epochs, "classifier training epochs (default 8: the shipped weights, 90.1 % test accuracy)"},
      {"data", OPT_STR, &data, "IDX directory with the test split (default Fashion-MNIST)"},
      {"json", OPT_STR, &json, "also write the metrics to this JSON file"},
      {"device", OPT_STR, &device, "P:D device"},
  };
  cli_parse("eval", "dblocks eval (--run DIR | --samples FILE.npy) [options]\n"
            "  Frechet distance between classifier features of samples and of the test set, and conditional accuracy",
            opts, (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  if (!run == !samples && !retrain) db_fail("eval: give exactly one of --run DIR or --samples FILE.npy");
  if (strcmp(sampler, "euler") && strcmp(sampler, "heun")) db_fail("eval: --sampler %s: expected euler or heun", sampler);
  if (!clf_path) clf_path = eval_default_classifier_path();
  float *images = NULL;
  int *labels = NULL, n = 0;
  /* --samples: read and check the files before any device work, against the
   * image size and classes the classifier checkpoint declares (its metadata);
   * a classifier still to be trained (--train-classifier, or no file yet) is
   * only known afterwards, so its size and classes are checked then. */
  int nd = 0, shape[4], lnd = 0, lshape[4];
  char lp[1100];
  if (samples) {
    images = npy_read_f32(samples, &nd, shape);
    if (!labels_path) {
      size_t len = strlen(samples);
      snprintf(lp, sizeof lp, "%.*s_labels.npy", (int)(len > 4 && !strcmp(samples + len - 4, ".npy") ? len - 4 : len), samples);
      labels_path = lp;
    }
    labels = npy_read_i32(labels_path, &lnd, lshape);
    struct stat st;
    clf_config g = {0};
    if (!retrain && stat(clf_path, &st) == 0) g = clf_read_config(clf_path);
    check_inputs(samples, images, nd, shape, labels_path, labels, lnd, lshape, g.img_h, g.img_w, g.n_classes);
    n = shape[0];
  }
  db_ctx *ctx = db_init(device);
  classifier *clf = eval_classifier(ctx, clf_path, data, retrain, epochs > 0 ? epochs : 8);
  if (!run && !samples) { clf_free(clf); db_shutdown(ctx); return 0; }
  if (run) {
    sample_request q = {run, steps, !strcmp(sampler, "heun"), guidance, 7.0, per_class, (uint64_t)seed, NULL, NULL};
    sample_run_collect(ctx, &q, 1, &images, &labels, &n, NULL);
  } else {
    clf_config g = clf_get_config(clf);
    check_inputs(samples, images, nd, shape, labels_path, labels, lnd, lshape, g.img_h, g.img_w, g.n_classes);
  }
  eval_result r = eval_samples(ctx, clf, data, images, labels, n);
  printf("eval on %s: %d samples\n", ctx->dev.name, r.n_samples);
  printf("  Frechet distance (classifier features, vs test set): %.3f\n", r.frechet);
  printf("  conditional accuracy: %.1f %% (chance 10 %%)\n", 100 * r.cond_acc);
  printf("  classifier test accuracy: %.2f %% (%s)\n", 100 * r.clf_test_acc, clf_path);
  if (json) eval_write_json(json, &r, -1);
  free(images);
  free(labels);
  clf_free(clf);
  db_shutdown(ctx);
  return 0;
}
