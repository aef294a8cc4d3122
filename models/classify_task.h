/* Classification with DiffusionBlocks as a training task (train.h), and the
 * block-wise prediction (METHOD.md §8, docs/classify.md). Each block is a
 * label denoiser (diffusion_classifier.h) trained on z = E[y] + σ ε for σ of
 * its range with loss w(σ)·CE(logits, y) per sample; E is the ONE fixed class
 * table (class_table.h) shared by every block and every B. The data source is
 * a labelled image set on the host (idx_dataset, with pixels), made resident
 * on the device as bytes; each batch is gathered into floats on the device
 * (gather_bytes_forward: the floats of data/idx.h, bit for bit). */
#ifndef DB_CLASSIFY_TASK_H
#define DB_CLASSIFY_TASK_H
#include "../data/idx.h"
#include "diffusion_classifier.h"
#include "train.h"

/* The class table's seed: fixed, so every block, run and B share one
 * diffusion space. Its rows are orthogonal, of norm classify_table_scale:
 * --label-scale, or by default σ_data·√C, so that each coordinate of a label
 * vector has RMS σ_data, the data scale EDM's preconditioning assumes. The
 * scale sets how much of the label z still shows at each σ (docs/classify.md). */
#define CLS_TABLE_SEED 0xc1a55ULL
double classify_table_scale(const run_config *rc);
/* The host copy of E (K x C). */
float *classify_table_host(const run_config *rc);
/* One block's model configuration from the run's. */
dcls_config classify_config_of(const run_config *rc);

train_task *classify_task_create(db_ctx *ctx, const run_config *rc, const idx_dataset *ds, const char *ds_name);
void classify_task_destroy(train_task *t);
size_t classify_task_dataset_bytes(const train_task *t); /* resident: the images' bytes and the class table */
/* Loads the training split of data_dir (NULL: Fashion-MNIST), trains, frees. */
train_result classify_train(db_ctx *ctx, const train_opts *o, const char *data_dir, size_t *dataset_bytes);

/* Block-wise prediction: z = σ_max ε (seeded), then one Euler step per block
 * from its upper bound to its lower, block 0 first, each block alone on the
 * device: D = softmax(logits)·E, z ← z + (σ_next − σ)(z − D)/σ. The class is
 * the argmax of the last block's logits. */
typedef struct {
  int blocks;                            /* B: how many entries block_accuracy has */
  double accuracy;                       /* of the last block's argmax */
  double block_accuracy[DB_MAX_BLOCKS];  /* the argmax of each block's logits along the way */
  double seconds;
  size_t peak_bytes;                     /* device peak during prediction */
} classify_result;
/* pred (n, optional): the predicted classes. Fails clearly on a run that is
 * not a classifier's, a missing block file or images of the wrong size. */
classify_result classify_evaluate(db_ctx *ctx, const char *run_dir, const idx_dataset *ds, uint64_t seed, int *pred);
#endif
