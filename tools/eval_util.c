#include "eval_util.h"
#include "../data/file_io.h"
#include <jansson.h>
#include "../data/idx.h"
#include "../models/classifier.h"
#include "../models/frechet.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *eval_default_classifier_path(void) {
  static char path[1100];
  const char *rel = "data/classifier-fmnist.safetensors";
  struct stat st;
  if (stat(rel, &st) == 0) return rel;
  char exe[1024];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      snprintf(path, sizeof path, "%s/../%s", exe, rel);
      if (stat(path, &st) == 0) return path;
    }
  }
  return rel;
}

classifier *eval_classifier(db_ctx *ctx, const char *path, const char *data_dir, int retrain, int epochs) {
  struct stat st;
  if (!retrain && stat(path, &st) == 0) return clf_load(ctx, path);
  fprintf(stderr, "training the evaluation classifier (%s)\n", retrain ? "--train-classifier" : "none saved yet");
  idx_dataset train = idx_load(data_dir, "train"), test = idx_load(data_dir, "test");
  clf_config cfg = clf_default_config();
  cfg.img_h = train.rows;
  cfg.img_w = train.cols;
  cfg.n_classes = train.n_classes;
  classifier *c = clf_create(ctx, cfg, 1);
  double acc = clf_train(ctx, c, &train, &test, epochs, 64, 2e-3f, 7); /* the shipped weights' recipe */
  fprintf(stderr, "classifier test accuracy %.2f %%, saved to %s\n", 100 * acc, path);
  clf_save(c, path);
  idx_free(&train);
  idx_free(&test);
  return c;
}

/* Index of the first non-finite value among count (count if none); *bad = how many. */
size_t eval_first_nonfinite(const float *x, size_t count, size_t *bad) {
  size_t first = count, k = 0;
  for (size_t i = 0; i < count; i++)
    if (!isfinite(x[i])) {
      if (!k++) first = i;
    }
  *bad = k;
  return first;
}

eval_result eval_samples(db_ctx *ctx, classifier *clf, const char *data_dir, const float *images, const int *labels,
                         int n) {
  eval_result r = {0};
  if (n < 2) db_fail("eval: need at least 2 samples, got %d", n);
  clf_config g = clf_get_config(clf);
  size_t px = (size_t)g.img_h * g.img_w, bad;
  /* NaN/Inf samples would give NaN features, and a Frechet distance that means nothing */
  size_t first = eval_first_nonfinite(images, (size_t)n * px, &bad);
  if (bad)
    db_fail("eval: the samples hold %zu non-finite values (NaN or Inf), the first at index %zu (sample %zu): "
            "refusing to score them", bad, first, first / px);
  for (int i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= g.n_classes)
      db_fail("eval: label %d of sample %d is outside 0..%d (the classifier's classes)", labels[i], i, g.n_classes - 1);
  idx_dataset test = idx_load(data_dir, "test");
  if (test.rows != g.img_h || test.cols != g.img_w) {
    int tr = test.rows, tc = test.cols;
    idx_free(&test);
    db_fail("eval: the test set's images are %dx%d, the classifier expects %dx%d", tr, tc, g.img_h, g.img_w);
  }
  int d = clf_feature_dim(clf);
  float *ft = db_malloc(db_mul_size((size_t)test.n * d, sizeof *ft, "eval features")),
        *fs = db_malloc(db_mul_size((size_t)n * d, sizeof *fs, "eval features"));
  int *pt = db_malloc((size_t)test.n * sizeof *pt), *ps = db_malloc((size_t)n * sizeof *ps);
  clf_features(ctx, clf, test.images, test.n, test.rows, test.cols, ft, pt);
  clf_features(ctx, clf, images, n, g.img_h, g.img_w, fs, ps);
  int right = 0;
  for (int i = 0; i < test.n; i++) right += pt[i] == test.labels[i];
  r.clf_test_acc = (double)right / test.n;
  right = 0;
  for (int i = 0; i < n; i++) right += ps[i] == labels[i];
  r.cond_acc = (double)right / n;
  double *mu1 = db_malloc((size_t)d * sizeof *mu1), *mu2 = db_malloc((size_t)d * sizeof *mu2);
  double *c1 = db_malloc((size_t)d * d * sizeof *c1), *c2 = db_malloc((size_t)d * d * sizeof *c2);
  feature_stats(fs, n, d, mu1, c1);
  feature_stats(ft, test.n, d, mu2, c2);
  r.frechet = frechet_distance(mu1, c1, mu2, c2, d);
  r.n_samples = n;
  free(ft); free(fs); free(pt); free(ps); free(mu1); free(mu2); free(c1); free(c2);
  idx_free(&test);
  /* finite images can still overflow the network (e.g. values of 1e30) */
  if (!isfinite(r.frechet))
    db_fail("eval: the Frechet distance is %g, not a number: the classifier's features of the samples or of the "
            "test set hold NaN or Inf", r.frechet);
  return r;
}

void eval_write_json(const char *path, const eval_result *r, double wall_s) {
  json_t *o = json_pack("{s:f, s:f, s:i, s:f}", "frechet", r->frechet, "cond_acc", r->cond_acc, "n_samples",
                        r->n_samples, "classifier_test_acc", r->clf_test_acc);
  if (wall_s >= 0) json_object_set_new(o, "wall_s", json_real(wall_s));
  char *text = json_dumps(o, JSON_REAL_PRECISION(6));
  json_decref(o);
  if (!text) db_fail("cannot format the metrics for %s", path);
  size_t len = strlen(text);
  text[len] = '\n'; /* replaces the NUL: len + 1 bytes with a final newline */
  atomic_write_file(path, text, len + 1);
  free(text);
}
