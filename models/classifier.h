/* A small ViT image classifier trained by this runtime, used to evaluate
 * generated images: its features give a Fréchet distance (models/frechet.h)
 * and its predictions a class-conditional accuracy.
 *
 *   tokens: the p x p patches (window 0, device patchify) or, window w > p,
 *           the w x w pixels centred on each patch (overlapping, built on the host)
 *   -> Linear(values, C) + fixed 2-D sin-cos positions
 *   -> depth DiT layers (models/dit_layer.h) with conditioning c = 0
 *   -> pool: mean over tokens (pool 0) or Linear(T*C, C) of all tokens (pool 1)
 *   -> LayerNorm (no affine) = the FEATURES (C values, what clf_features returns)
 *   -> Linear(C, n_classes) -> softmax cross-entropy.
 *
 * With c = 0, SiLU(c) = 0 and each layer's modulation is just the adaLN bias:
 * the layers are plain pre-LN transformer layers with learned per-channel
 * shift, scale (the LN affine, as 1 + scale) and residual gates. adaLN.weight
 * never receives a gradient and stays 0, so checkpoints leave it out. AdaLN-Zero
 * would start every gate at 0 (dead branches, slow start for a classifier):
 * here the gate biases start at 1 (an ordinary residual ViT), shift/scale
 * biases at 0, linears Xavier-uniform, the head at 0.
 *
 * Images are single-channel (n, img_h, img_w) host floats in [-1, 1]. */
#ifndef DB_CLASSIFIER_H
#define DB_CLASSIFIER_H
#include "params.h"
#include "../data/idx.h"

typedef struct {
  int width, depth, heads, patch;
  int window; /* 0: tokens are the p x p patches; > patch: each token holds the
                 window x window pixels centred on its patch (overlapping,
                 built on the host, -1 outside the image) */
  int pool;   /* 0: mean over tokens; 1: a learned linear of all T*C token values */
  int n_classes, img_h, img_w;
} clf_config;

/* The configuration we ship for Fashion-MNIST (28x28, 10 classes). */
clf_config clf_default_config(void);
void clf_config_check(const clf_config *cfg); /* db_fail naming the bad field */

typedef struct classifier classifier;

/* Parameters allocated and initialised (Philox, deterministic for a seed). */
classifier *clf_create(db_ctx *ctx, clf_config cfg, uint64_t seed);
void clf_free(classifier *c);
clf_config clf_get_config(const classifier *c);
int clf_feature_dim(const classifier *c); /* = width */
param_set *clf_params(classifier *c);     /* for tests and tools */
/* Test accuracy recorded by the last clf_train or read from a checkpoint; -1 if unknown. */
double clf_test_accuracy(const classifier *c);

/* Train with AdamW (betas 0.9/0.999, weight decay 0.05 on matrices, global
 * clip 1.0), linear warm-up then cosine decay of lr, shuffling every epoch
 * with Philox (deterministic for a seed); the last partial batch of an epoch
 * is dropped. Prints progress to stderr; returns the final test accuracy
 * (fraction in [0,1]) on `test` (NULL: skip, returns -1). */
double clf_train(db_ctx *ctx, classifier *c, const idx_dataset *train, const idx_dataset *test, int epochs,
                 int batch, float lr, uint64_t seed);

/* One batch, for tests: the mean cross-entropy of `n` images; with backward,
 * the gradients of that mean (zeroed first) are left in clf_params(c)->g. */
double clf_loss(db_ctx *ctx, classifier *c, const float *images, const uint8_t *labels, int n, int backward);

/* safetensors; metadata holds the config ("format": "dblocks-classifier"). */
void clf_save(const classifier *c, const char *path);
/* A clear db_fail on a missing or malformed file, a different format, or a
 * tensor missing or of the wrong shape. */
classifier *clf_load(db_ctx *ctx, const char *path);

/* The configuration a checkpoint declares, read without a device (callers can
 * check their inputs against img_h, img_w, n_classes before any device work).
 * Fails like clf_load on a missing or malformed file or a bad configuration. */
clf_config clf_read_config(const char *path);

/* images (n, h, w) -> features (n, width) and predicted classes (n); either
 * output may be NULL. Batched on the device. h, w declare the images' size:
 * anything but the classifier's img_h x img_w is a clear db_fail (never a read
 * past the end of images, which must hold n*h*w floats). */
void clf_features(db_ctx *ctx, classifier *c, const float *images, int n, int h, int w, float *features, int *pred);
/* Fraction of the n images classified as their label. */
double clf_accuracy(db_ctx *ctx, classifier *c, const float *images, const uint8_t *labels, int n);

#endif
