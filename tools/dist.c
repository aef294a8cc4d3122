/* Block-parallel training and replicas over MPI (dist.h). */
#include "dist.h"
#include "../data/file_io.h"
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int active, rank_, size_, local_rank_;
static train_comm comm;
static MPI_Comm group_comm = MPI_COMM_NULL;

static _Noreturn void abort_job(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  exit(code); /* not reached */
}

/* Open MPI, MPICH/Hydra and PMIx launchers each leave one of these. */
static int launched_by_mpirun(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

void dist_init(int *argc, char ***argv) {
  if (!launched_by_mpirun()) return;
  MPI_Init(argc, argv);
  active = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &local_rank_);
  MPI_Comm_free(&local);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "rank %d of %d: ", rank_, size_);
  db_set_error_prefix(prefix);
  db_set_exit_hook(abort_job);
}

void dist_finalize(void) {
  if (!active) return;
  if (group_comm != MPI_COMM_NULL) MPI_Comm_free(&group_comm);
  MPI_Finalize();
  active = 0;
}

int dist_active(void) { return active; }
int dist_rank(void) { return rank_; }
int dist_size(void) { return active ? size_ : 1; }
int dist_local_rank(void) { return local_rank_; }

const char *dist_device(const char *spec, char *buf, size_t n) {
  if (spec && strcmp(spec, "auto")) return spec;
  if (!active && !spec) return NULL;
  snprintf(buf, n, "auto:%d", active ? local_rank_ : 0);
  return buf;
}

static void barrier(train_comm *c) {
  (void)c;
  MPI_Barrier(MPI_COMM_WORLD);
}

/* in place, in chunks that fit MPI's int counts */
static void allreduce_group(train_comm *c, float *buf, size_t n) {
  double t0 = MPI_Wtime();
  for (size_t done = 0; done < n;) {
    int k = n - done > (1u << 30) ? 1 << 30 : (int)(n - done);
    MPI_Allreduce(MPI_IN_PLACE, buf + done, k, MPI_FLOAT, MPI_SUM, group_comm);
    done += (size_t)k;
  }
  c->comm_seconds += MPI_Wtime() - t0;
}

train_comm *dist_train_comm(int replicas, int shared_dir) {
  if (!active) {
    if (replicas > 1) db_fail("--replicas %d needs several processes: start the command with mpirun -np N", replicas);
    return NULL;
  }
  if (replicas < 1 || size_ % replicas)
    db_fail("--replicas %d must divide the %d processes of mpirun into equal groups", replicas, size_);
  comm = (train_comm){rank_, size_, replicas, shared_dir, NULL, barrier, allreduce_group, 0};
  if (group_comm != MPI_COMM_NULL) MPI_Comm_free(&group_comm);
  MPI_Comm_split(MPI_COMM_WORLD, rank_ / replicas, rank_, &group_comm);
  return &comm;
}

void dist_train_setup(train_opts *o, const char *cmd, const char *out, int replicas, int gather, int quiet,
                      char *local_out, size_t n) {
  if (replicas < 1) db_fail("%s: --replicas %d must be at least 1", cmd, replicas);
  if (gather && !active) db_fail("%s: --gather joins the ranks of mpirun: start the command with mpirun -np N", cmd);
  o->comm = dist_train_comm(replicas, !gather);
  snprintf(local_out, n, gather && rank_ > 0 ? "%s.rank%d" : "%s", out, rank_);
  o->out_dir = local_out;
  o->progress = !quiet && rank_ == 0; /* rank 0 speaks for the job; the others only fail loudly */
}

/* ---------------------------------------------------------------- joining */
enum { TAG_SIZE = 1, TAG_BYTES = 2 };

/* Block b's file travels from its owner (its group's first replica) to rank 0. */
static void gather_block(const train_comm *c, int b, const char *local_dir, const char *out_dir) {
  int owner = (b % train_comm_groups(c)) * c->replicas;
  if (owner == 0 || (rank_ != owner && rank_ != 0)) return;
  char path[1024];
  if (rank_ == owner) {
    block_file(path, sizeof path, local_dir, b);
    size_t len;
    char *bytes = read_text_file(path, &len); /* any bytes: safetensors included */
    unsigned long long n = len;
    MPI_Send(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, TAG_SIZE, MPI_COMM_WORLD);
    for (size_t done = 0; done < len;) {
      int k = len - done > (1u << 30) ? 1 << 30 : (int)(len - done);
      MPI_Send(bytes + done, k, MPI_BYTE, 0, TAG_BYTES, MPI_COMM_WORLD);
      done += (size_t)k;
    }
    free(bytes);
  } else {
    unsigned long long n;
    MPI_Recv(&n, 1, MPI_UNSIGNED_LONG_LONG, owner, TAG_SIZE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    char *bytes = db_malloc((size_t)n);
    for (size_t done = 0; done < n;) {
      int k = n - done > (1u << 30) ? 1 << 30 : (int)(n - done);
      MPI_Recv(bytes + done, k, MPI_BYTE, owner, TAG_BYTES, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      done += (size_t)k;
    }
    block_file(path, sizeof path, out_dir, b);
    atomic_write_file(path, bytes, (size_t)n); /* never a half-written block file */
    free(bytes);
  }
}

/* What every rank reports to rank 0 about each block. */
typedef struct { double trained, seconds, loss, peak_mib, comm_s; } block_report;

void dist_join(const train_comm *c, const train_result *r, const run_config *rc, const char *out_dir,
               const char *local_dir, int gather, double wall_seconds) {
  if (!c) return;
  int B = rc->blocks;
  if (gather)
    for (int b = 0; b < B; b++) gather_block(c, b, local_dir, out_dir);
  block_report *mine = db_calloc((size_t)B, sizeof *mine), *all = NULL;
  for (int b = 0; b < B; b++)
    mine[b] = (block_report){r->trained[b], r->block_seconds[b], r->block_loss[b], r->block_peak[b] / 1048576.0,
                             r->comm_seconds};
  if (rank_ == 0) all = db_calloc((size_t)B * size_, sizeof *all);
  MPI_Gather(mine, B * 5, MPI_DOUBLE, all, B * 5, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  double wall_max;
  MPI_Reduce(&wall_seconds, &wall_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  free(mine);
  if (rank_ != 0) return;
  printf("parallel run: %d processes, %d block group(s) of %d replica(s), %d blocks, wall %.1f s (slowest rank)\n",
         size_, train_comm_groups(c), c->replicas, B, wall_max);
  printf("  block  rank  seconds  last loss  peak MiB%s\n", c->replicas > 1 ? "  allreduce s" : "");
  int missing = 0;
  for (int b = 0; b < B; b++) {
    int owner = -1;
    for (int k = 0; k < size_ && owner < 0; k++)
      if (all[(size_t)k * B + b].trained > 0) owner = k;
    char path[1024];
    block_file(path, sizeof path, out_dir, b);
    int steps = block_validate(out_dir, b);
    if (steps < rc->steps) {
      fprintf(stderr, "dblocks: error: %s: %s\n", path, steps < 0 ? "missing" : "has fewer steps than the run's");
      missing++;
    }
    if (owner < 0) continue;
    const block_report *p = &all[(size_t)owner * B + b];
    printf("  %5d  %4d  %7.1f  %9.4f  %8.1f", b, owner, p->seconds, p->loss, p->peak_mib);
    if (c->replicas > 1) printf("  %11.2f", p->comm_s);
    printf("\n");
  }
  free(all);
  if (missing) db_fail("%d of %d block files missing or short in %s (without a shared file system, pass --gather)",
                       missing, B, out_dir);
  printf("every block is in %s/\n", out_dir);
}
