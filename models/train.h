/* The one training driver (docs/method.md §5, Algorithm 1). It owns what
 * every DiffusionBlocks task shares: the block schedule (sequential: one block
 * on the device at a time; random: a uniform block each step), the step loop,
 * AdamW, the loss read-back (the only host wait of training), the JSONL log
 * and progress line, checkpoints, exact resume and the run directory.
 * A task plugs in a model and a data source through train_task: what one
 * step of one block computes. B = 1 is end-to-end backprop with the same code. */
#ifndef DB_TRAIN_H
#define DB_TRAIN_H
#include "diffusion.h"

/* Running σ statistics of a block between two log lines. */
typedef struct { double sum, min, max; long n; } sigma_stats;
void sigma_stats_add(sigma_stats *s, double sigma);

/* Philox key tags: every random decision is a pure function of (seed, tag,
 * block, step), so a resumed run draws exactly what the uninterrupted run drew. */
enum { TAG_DATA = 1, TAG_DROP = 2, TAG_SIGMA = 3, TAG_NOISE = 4, TAG_SCHED = 5, TAG_INIT = 6 };
static inline uint64_t train_key(uint64_t seed, int tag) { return seed ^ ((uint64_t)tag << 56); }

/* Host staging slots for non-blocking uploads: the driver reads the losses at
 * least every TRAIN_RING/2 steps, so slot (step mod TRAIN_RING) is free again. */
#define TRAIN_RING 64

typedef struct train_task train_task;
struct train_task {
  const char *name;   /* "image": in messages */
  void *self;
  int batch;          /* samples per step: the loss is the mean over them */
  const char *unit;   /* what a sample is, in the progress line ("sequences"); NULL: "samples" */
  /* Creates block `block`'s model with initial parameters (seeded by block) and
   * returns its parameter set; the driver adds training state, loads
   * checkpoints into it, updates and saves it. */
  param_set *(*block_open)(train_task *t, int block);
  void (*block_close)(train_task *t, int block);
  /* Per-step device buffers (activations, batch) for training `block`; the
   * driver frees them before the next block is opened (sequential schedule). */
  void (*buffers_alloc)(train_task *t, int block);
  void (*buffers_free)(train_task *t);
  /* Host part of step `step` of `block`: draws the batch and its noise levels
   * into staging slot `slot` (0..TRAIN_RING-1) and enqueues their uploads
   * without waiting; adds every σ drawn to *sig. */
  void (*stage)(train_task *t, int block, int step, int slot, sigma_stats *sig);
  /* Device part: forward, loss (the batch's SUM into `loss`, one float) and
   * backward, accumulating into the parameter gradients (zeroed by the driver). */
  void (*forward_backward)(train_task *t, int block, int step, db_tensor loss);
  /* Extra checkpoint metadata: (key, value) pairs; returns how many. */
  int (*checkpoint_meta)(train_task *t, const char **kv, int max_pairs, char *buf, size_t buf_len);
  /* Replicas (train_comm): this process computes samples batch_offset ..
   * batch_offset + batch - 1 of each step's batch of rc.batch (the driver sets
   * both before the first block opens; alone: 0 and rc.batch). A task numbers
   * samples globally (step * rc.batch + batch_offset + i) for its data order
   * and noise, and weights its loss by 1/rc.batch, so the replicas' summed
   * gradients are the whole batch's. */
  int batch_offset;
};

/* Training in several processes (tools/dist.c implements it over MPI; NULL
 * in train_opts: one process). P = ranks processes form P/replicas groups of
 * `replicas` ranks; group g = rank / replicas trains the blocks b with
 * b mod (P/replicas) == g, every block depending only on (seed, block), so the
 * files are the bytes a sequential run writes. Within a group each replica
 * takes its slice of every batch (batch / replicas samples, the same samples
 * R = 1 would draw there) and the gradients are summed by allreduce before
 * AdamW. The driver never calls MPI itself: only these hooks. */
typedef struct train_comm train_comm;
struct train_comm {
  int rank, ranks;           /* this process, of how many */
  int replicas;              /* ranks per block group (divides ranks) */
  int shared_dir;            /* 1: every rank writes into the same out_dir (rank 0 prepares it) */
  void *u;
  void (*barrier)(train_comm *c);                          /* every rank */
  void (*allreduce_group)(train_comm *c, float *buf, size_t n); /* sum over this rank's replica group, in place */
  double comm_seconds;       /* spent in allreduce_group (with the transfers around it) */
};

/* Which group and replica a rank is, and whether it trains `block`. */
int train_comm_group(const train_comm *c);
int train_comm_groups(const train_comm *c);
int train_comm_replica(const train_comm *c);
int train_comm_owns(const train_comm *c, int block);

typedef struct {
  run_config rc;
  train_comm *comm;      /* NULL: this process trains alone */
  const char *out_dir;   /* manifest, block checkpoints, log.jsonl; NULL: no files (bench) */
  int only_block;        /* -1: every block (by the schedule); i: block i alone */
  int resume;            /* continue from the checkpoints in out_dir */
  int ckpt_every;        /* steps between checkpoints (0: only at the end) */
  int log_every;         /* steps between loss reads / log lines, 1..TRAIN_RING/2 */
  int progress;          /* a live progress line on stderr */
  int max_steps_this_run;/* stop after this many steps (0: no limit): for tests of resume */
} train_opts;

typedef struct {
  double first_loss, last_loss; /* mean loss of the first and last logged interval */
  double seconds;
  size_t peak_bytes;            /* device peak over the run (runtime counters) */
  long steps_run;
  /* per block this process trained (trained[b] = 1): for the summary of a parallel run */
  int trained[DB_MAX_BLOCKS];
  double block_seconds[DB_MAX_BLOCKS], block_loss[DB_MAX_BLOCKS]; /* wall time; mean loss of its last log interval */
  size_t block_peak[DB_MAX_BLOCKS];                               /* device peak while it was on the device */
  double comm_seconds;          /* replicas: gradient download + allreduce + upload, after the step's compute */
  double comm_mpi_seconds;      /* of which in MPI_Allreduce (including waiting for the slowest replica) */
  double comm_bytes;            /* bytes moved between device and host for it */
} train_result;

/* Trains the blocks o->only_block (or all, by o->rc.schedule) of `task`. */
train_result train_run(db_ctx *ctx, const train_opts *o, train_task *task);

/* The pieces train_run is made of, for `dblocks bench train`, which must
 * time exactly what training runs. */
typedef struct trainer trainer;
trainer *trainer_create(db_ctx *ctx, const train_opts *o, train_task *task);
void trainer_destroy(trainer *t);
/* Puts `block` on the device: model, training state, checkpoint (resume), step buffers. */
void trainer_block_begin(trainer *t, int block);
/* One optimizer step of `block`: stage, zero gradients, forward, loss,
 * backward, AdamW; reads the losses back when a log interval is full. */
void trainer_step(trainer *t, int block);
/* Reads pending losses, writes the log line(s), saves (with out_dir), frees. */
void trainer_block_end(trainer *t, int block);
#endif
