/* Class-conditional image generation as a training task (train.h): each block
 * a DiT denoiser (dit.h) trained on EDM-noised images of its σ range with the
 * weighted MSE of docs/method.md §5. The data source is any set of labelled
 * images held on the host (idx_dataset: Fashion-MNIST, another IDX directory,
 * or synthetic images for benchmarks); its bytes (idx_dataset.pixels) are made
 * resident on the device once and each batch is gathered and converted to
 * float on the device (gather_bytes_forward: the floats of data/idx.h). */
#ifndef DB_IMAGE_TASK_H
#define DB_IMAGE_TASK_H
#include "../data/idx.h"
#include "train.h"

/* ds must outlive the task; its images must match rc's image size and its labels rc's classes; it must
 * have pixels (idx_load fills them; idx_pixels_from_images for a set made from floats). */
train_task *image_task_create(db_ctx *ctx, const run_config *rc, const idx_dataset *ds, const char *ds_name);
void image_task_destroy(train_task *t);
size_t image_task_dataset_bytes(const train_task *t); /* the resident training images: one byte per pixel */
/* Loads the training split of data_dir (NULL: Fashion-MNIST), trains, frees:
 * `dblocks train` and `demo`. *dataset_bytes (optional): the resident images. */
train_result image_train(db_ctx *ctx, const train_opts *o, const char *data_dir, size_t *dataset_bytes);
/* N random images in [-1, 1] (on the byte grid: pixels filled) with labels 0..classes-1: a data source for
 * benchmarks and tests. */
idx_dataset image_synthetic_dataset(int n, int rows, int cols, int classes, uint64_t seed);
#endif
