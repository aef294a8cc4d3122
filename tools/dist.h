/* Several processes under mpirun (issue 11, docs/parallel.md): block-parallel
 * training (each rank trains its own blocks) and data-parallel replicas of a
 * block (gradients summed by MPI_Allreduce). Open MPI does the launching,
 * the wiring between hosts and the collectives; this file is the only one
 * that calls MPI. Without mpirun nothing here touches MPI and every command
 * runs as one process. */
#ifndef DB_DIST_H
#define DB_DIST_H
#include "../models/train.h"
#include "cli.h"

/* MPI_Init when this process was started by mpirun (its environment says so);
 * then errors are prefixed "rank r of P: " and abort the whole job. */
void dist_init(int *argc, char ***argv);
void dist_finalize(void);
int dist_active(void);   /* launched by mpirun with more than zero ranks */
int dist_rank(void);
int dist_size(void);
int dist_local_rank(void); /* among the ranks on this host */
/* The device spec for this rank: "auto:<local rank>" for NULL or "auto", else spec. */
const char *dist_device(const char *spec, char *buf, size_t n);

/* The training hooks for `replicas` ranks per block group; shared_dir: every
 * rank writes into the same --out. NULL when not under mpirun. */
train_comm *dist_train_comm(int replicas, int shared_dir);

/* What every training command does with --replicas R and --gather: checks
 * them, sets o->comm, o->out_dir (OUT, or OUT.rank<r> for r > 0 with
 * --gather, written into local_out) and the progress line (rank 0 only). */
void dist_train_setup(train_opts *o, const char *cmd, const char *out, int replicas, int gather, int quiet,
                      char *local_out, size_t n);
/* The two options, for a command's option table. */
#define DIST_TRAIN_OPTS(replicas, gather)                                                                        \
  (cli_opt){"replicas", OPT_INT, &(replicas),                                                                  \
            "under mpirun: ranks per block, each on a slice of every batch (gradients summed; default 1)"},      \
  (cli_opt){"gather", OPT_FLAG, &(gather),                                                                     \
            "under mpirun without a shared file system: rank r > 0 trains into OUT.rank<r> and sends its block " \
            "files to rank 0's --out"}

/* After train_run on every rank: optionally (gather) sends each block file
 * from its owner to rank 0's out_dir, then rank 0 checks that every block of
 * the run is there with all its steps and prints one summary (per block:
 * rank, seconds, loss, peak MiB). A missing block makes the job fail. */
void dist_join(const train_comm *c, const train_result *r, const run_config *rc, const char *out_dir,
               const char *local_dir, int gather, double wall_seconds);
#endif
