/* Training with the DiffusionBlocks method (METHOD.md §5, Algorithm 1): each
 * block is trained alone as a denoiser for its own noise range; B = 1 is
 * end-to-end backprop through all L layers with the same code. */
#ifndef DB_TRAIN_H
#define DB_TRAIN_H
#include "diffusion.h"

typedef struct {
  run_config rc;
  const char *out_dir;   /* manifest, block checkpoints, log.jsonl */
  const char *data_dir;  /* IDX files; NULL = Fashion-MNIST from Debian's package */
  int only_block;        /* -1: every block (by the schedule); i: block i alone */
  int resume;            /* continue from the checkpoints in out_dir */
  int ckpt_every;        /* steps between checkpoints (0: only at the end) */
  int log_every;         /* steps between loss reads / log lines */
  int progress;          /* a live progress line on stderr */
  int max_steps_this_run;/* stop after this many steps (0: no limit): for tests of resume */
} train_opts;

typedef struct {
  double first_loss, last_loss; /* mean loss of the first and last logged interval */
  double seconds;
  size_t peak_bytes;            /* device peak over the run (runtime counters) */
  size_t dataset_bytes;         /* of which the training images resident on the device */
  long steps_run;
} train_result;

train_result train_run(db_ctx *ctx, const train_opts *o);
#endif
