/* Sample-quality metrics shared by `eval` and `demo` (docs/metrics.md):
 * Fréchet distance between classifier features of generated samples and of the
 * test set, and conditional accuracy (the classifier agrees with the class a
 * sample was generated for). */
#ifndef DB_EVAL_UTIL_H
#define DB_EVAL_UTIL_H
#include "../runtime/db.h"

typedef struct {
  double frechet, cond_acc, clf_test_acc;
  int n_samples;
} eval_result;

/* The classifier at path, trained on the train split (and saved) when the file
 * is missing or retrain is set. */
struct classifier *eval_classifier(db_ctx *ctx, const char *path, const char *data_dir, int retrain, int epochs);
/* Default classifier file: data/classifier-fmnist.safetensors in the working
 * directory, else next to the binary's build/ folder. */
const char *eval_default_classifier_path(void);
/* images: (n, img_h, img_w) of the classifier's configuration (n*img_h*img_w
 * floats), labels: n classes. A clear db_fail, before the test set is read, if n < 2,
 * a value is NaN or Inf (naming how many and the first), or a label is outside
 * 0..n_classes-1; and if the Frechet distance comes out NaN or Inf (features
 * overflowed) instead of reporting it. */
eval_result eval_samples(db_ctx *ctx, struct classifier *clf, const char *data_dir, const float *images,
                         const int *labels, int n);
/* The metrics as a JSON object written atomically to path (with "wall_s"
 * when wall_s >= 0): `eval --json` and the demo's metrics.json. */
void eval_write_json(const char *path, const eval_result *r, double wall_s);
/* Index of the first value among count that is NaN or +-Inf (count if none);
 * *bad is set to how many there are. */
size_t eval_first_nonfinite(const float *x, size_t count, size_t *bad);
#endif
