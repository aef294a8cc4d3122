/* The training driver (train.h): schedule, steps, AdamW, loss read-back,
 * logging, checkpoints and resume, for any train_task. */
#include "train.h"
#include "../data/file_io.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void sigma_stats_add(sigma_stats *s, double sigma) {
  if (s->n == 0 || sigma < s->min) s->min = sigma;
  if (s->n == 0 || sigma > s->max) s->max = sigma;
  s->sum += sigma;
  s->n++;
}

typedef struct {
  int open;            /* resident on the device */
  param_set *ps;       /* the task's, with training state */
  int steps_done;
  int saved_steps;     /* steps_done of the checkpoint on disk */
  sigma_stats sig;     /* since the last log line of this block */
} block_slot;

struct trainer {
  db_ctx *ctx;
  train_opts o;
  train_task *task;
  int replicas;                /* 1, or the replica group's size (train_comm) */
  float *grad_host;            /* replicas: the flat gradient on its way through the allreduce */
  size_t grad_host_n;
  block_slot *blocks;          /* rc.blocks entries */
  int n_open, buffers;         /* blocks resident; step buffers allocated */
  db_arena *arena;
  db_tensor loss_hist;         /* (TRAIN_RING) per-step loss sums not yet read */
  int pending, pending_block[TRAIN_RING];
  FILE *log;
  double t_start, t_last;
  long steps_total, steps_run;
  train_result res;
  int first_logged;
};

/* ---------------------------------------------------------------- processes */
int train_comm_groups(const train_comm *c) { return c ? c->ranks / c->replicas : 1; }
int train_comm_group(const train_comm *c) { return c ? c->rank / c->replicas : 0; }
int train_comm_replica(const train_comm *c) { return c ? c->rank % c->replicas : 0; }
int train_comm_owns(const train_comm *c, int block) { return block % train_comm_groups(c) == train_comm_group(c); }

/* ---------------------------------------------------------------- logging */
static void fmt_time(char *out, size_t n, double s) {
  if (s < 0 || !isfinite(s)) snprintf(out, n, "?");
  else if (s < 90) snprintf(out, n, "%.0fs", s);
  else if (s < 5400) snprintf(out, n, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
  else snprintf(out, n, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

static void log_line(trainer *t, int b, double loss, double sps, double now) {
  block_slot *bs = &t->blocks[b];
  if (!t->first_logged) { t->res.first_loss = loss; t->first_logged = 1; }
  t->res.last_loss = loss;
  t->res.block_loss[b] = loss;
  if (t->log && train_comm_replica(t->o.comm) == 0) { /* replicas log the same lines: the first one writes them */
    fprintf(t->log, "{\"block\": %d, \"step\": %d, \"loss\": %.6g, \"sigma_mean\": %.6g, \"sigma_min\": %.6g, "
                    "\"sigma_max\": %.6g, \"samples_per_s\": %.1f, \"peak_mib\": %.1f, \"time_s\": %.2f}\n",
            b, bs->steps_done, loss, bs->sig.sum / (double)bs->sig.n, bs->sig.min, bs->sig.max, sps,
            db_peak_bytes() / 1048576.0, now - t->t_start);
    fflush(t->log);
  }
  if (t->o.progress) {
    char e[32];
    double eta = (t->steps_total - t->steps_run) * (now - t->t_start) / (t->steps_run > 0 ? t->steps_run : 1);
    fmt_time(e, sizeof e, eta);
    fprintf(stderr, "\r  block %d/%d  step %d/%d  loss %.4f  %.1f %s/s  ETA %s   ", b + 1, t->o.rc.blocks,
            bs->steps_done, t->o.rc.steps, loss, sps, t->task->unit ? t->task->unit : "samples", e);
    fflush(stderr);
  }
  memset(&bs->sig, 0, sizeof bs->sig);
}

/* Reads the losses of the pending steps (the only host wait of training) and
 * writes one log line per block that made steps since the last read. */
static void trainer_flush(trainer *t) {
  if (!t->pending) return;
  float h[TRAIN_RING];
  db_download(t->ctx, db_view(t->loss_hist, 0, 1, (int[]){t->pending}), h);
  if (t->replicas > 1) t->o.comm->allreduce_group(t->o.comm, h, (size_t)t->pending); /* the group's whole batches */
  double now = db_now(), sps = t->pending * (double)t->o.rc.batch / (now - t->t_last);
  t->t_last = now;
  for (int b = 0; b < t->o.rc.blocks; b++) {
    double sum = 0;
    int n = 0;
    for (int i = 0; i < t->pending; i++)
      if (t->pending_block[i] == b) { sum += h[i]; n++; }
    if (!n) continue;
    double loss = sum / n / t->o.rc.batch;
    if (!isfinite(loss))
      db_fail("training diverged: block %d step %d has loss %g (try a lower --lr)", b, t->blocks[b].steps_done, loss);
    log_line(t, b, loss, sps, now);
  }
  t->pending = 0;
}

/* ---------------------------------------------------------------- steps */
trainer *trainer_create(db_ctx *ctx, const train_opts *o, train_task *task) {
  trainer *t = db_calloc(1, sizeof *t);
  t->ctx = ctx;
  t->o = *o;
  if (t->o.log_every < 1 || t->o.log_every > TRAIN_RING / 2)
    db_fail("train: --log-every %d must be in 1..%d", t->o.log_every, TRAIN_RING / 2);
  t->task = task;
  t->replicas = o->comm ? o->comm->replicas : 1;
  int B = o->rc.batch, R = t->replicas;
  if (R > 1 && (B % R || (B / R) % 4))
    db_fail("--replicas %d: --batch %d must split into %d slices of a multiple of 4 samples (the random streams are "
            "drawn in fours)", R, B, R);
  task->batch = B / R;
  task->batch_offset = o->comm ? train_comm_replica(o->comm) * (B / R) : 0;
  t->blocks = db_calloc((size_t)o->rc.blocks, sizeof *t->blocks);
  t->arena = db_arena_new(ctx, "training losses");
  t->loss_hist = db_new(t->arena, 1, TRAIN_RING, 0, 0, 0);
  t->t_start = t->t_last = db_now();
  return t;
}

void trainer_destroy(trainer *t) {
  if (!t) return;
  for (int b = 0; b < t->o.rc.blocks; b++)
    if (t->blocks[b].open) trainer_block_end(t, b);
  db_arena_free(t->arena);
  free(t->blocks);
  free(t->grad_host);
  free(t);
}

void trainer_block_begin(trainer *t, int block) {
  block_slot *bs = &t->blocks[block];
  if (bs->open) db_fail("trainer: block %d is already on the device", block);
  memset(bs, 0, sizeof *bs);
  bs->ps = t->task->block_open(t->task, block);
  param_set_alloc_training(bs->ps);
  if (t->o.resume && t->o.out_dir) {
    int s = block_load(t->ctx, t->o.out_dir, block, bs->ps);
    if (s > 0) bs->steps_done = s;
  }
  bs->saved_steps = bs->steps_done;
  bs->open = 1;
  t->n_open++;
  if (!t->buffers) {
    t->task->buffers_alloc(t->task, block); /* one set serves every resident block: same architecture */
    t->buffers = 1;
  }
}

/* Replicas: the group's gradients summed into every replica's, through the
 * host (device -> host -> MPI -> device); each replica weighted its samples by
 * 1/batch, so the sum is the whole batch's mean gradient. A host wait per step:
 * the price of data parallelism without device-to-device transfers. Timed
 * apart from the step's own compute (the wait for the queue): the transfers
 * and the allreduce, which includes waiting for the slowest replica. */
static void allreduce_gradients(trainer *t, param_set *ps) {
  if (t->grad_host_n < ps->total) {
    free(t->grad_host);
    t->grad_host = db_malloc(ps->total * sizeof *t->grad_host);
    t->grad_host_n = ps->total;
  }
  db_finish(t->ctx); /* the forward and backward: compute, not communication */
  double t0 = db_now();
  db_download(t->ctx, ps->flat_g, t->grad_host);
  double t1 = db_now();
  t->o.comm->allreduce_group(t->o.comm, t->grad_host, ps->total);
  double t2 = db_now();
  db_upload(t->ctx, ps->flat_g, t->grad_host);
  double t3 = db_now();
  t->res.comm_seconds += t3 - t0;
  t->res.comm_mpi_seconds += t2 - t1;
  t->res.comm_bytes += 2.0 * (double)ps->total * sizeof(float);
}

void trainer_step(trainer *t, int block) {
  block_slot *bs = &t->blocks[block];
  const run_config *rc = &t->o.rc;
  int step = bs->steps_done;
  t->task->stage(t->task, block, step, (int)(t->steps_run % TRAIN_RING), &bs->sig);
  param_set_zero_grads(bs->ps);
  t->task->forward_backward(t->task, block, step, db_view(t->loss_hist, (size_t)t->pending, 1, (int[]){1}));
  t->pending_block[t->pending++] = block;
  if (t->replicas > 1) allreduce_gradients(t, bs->ps);
  adamw_config ac = {(float)run_lr_at(rc, step), 0.9f, 0.999f, 1e-8f, (float)rc->weight_decay, (float)rc->clip};
  param_set_adamw(bs->ps, ac, step + 1);
  bs->steps_done++;
  t->steps_run++;
  if (t->pending >= t->o.log_every) trainer_flush(t);
}

static void trainer_save(trainer *t, int block) {
  if (!t->o.out_dir || t->blocks[block].saved_steps == t->blocks[block].steps_done) return;
  const char *kv[16];
  char buf[256];
  int n = t->task->checkpoint_meta ? t->task->checkpoint_meta(t->task, kv, 8, buf, sizeof buf) : 0;
  block_save(t->ctx, t->o.out_dir, block, t->blocks[block].ps, t->blocks[block].steps_done, kv, n);
  t->blocks[block].saved_steps = t->blocks[block].steps_done;
}

void trainer_block_end(trainer *t, int block) {
  block_slot *bs = &t->blocks[block];
  if (!bs->open) return;
  trainer_flush(t);
  trainer_save(t, block);
  bs->open = 0;
  if (--t->n_open == 0 && t->buffers) {
    t->task->buffers_free(t->task);
    t->buffers = 0;
  }
  t->task->block_close(t->task, block);
  bs->ps = NULL;
}

/* ---------------------------------------------------------------- run directory */
/* Steps recorded in DIR/block_<i>.safetensors (validated), or 0 without one. */
static int checkpoint_steps(const char *dir, int block) {
  int s = block_validate(dir, block);
  return s > 0 ? s : 0;
}

/* A resumed log must read as the uninterrupted one: lines of the blocks this
 * run trains that lie beyond their checkpoints (written after the last
 * checkpoint of a killed run, and about to be written again) are dropped, as
 * is a torn last line. Lines of other blocks are kept. */
static void log_truncate_to_checkpoints(const char *path, int first, int last, const int *ckpt_steps) {
  struct stat st;
  if (stat(path, &st) != 0) return;
  size_t len;
  char *text = read_text_file(path, &len), *out = db_malloc(len + 1), *line = text;
  size_t out_len = 0;
  while (line < text + len) {
    char *nl = memchr(line, '\n', (size_t)(text + len - line));
    if (!nl) break; /* torn last line */
    json_t *j = json_loadb(line, (size_t)(nl - line), 0, NULL);
    json_t *jb = json_object_get(j, "block"), *js = json_object_get(j, "step");
    int keep = json_is_integer(jb) && json_is_integer(js);
    if (keep) {
      long b = (long)json_integer_value(jb), s = (long)json_integer_value(js);
      if (b >= first && b <= last && s > ckpt_steps[b - first]) keep = 0;
    }
    json_decref(j);
    if (keep) {
      memcpy(out + out_len, line, (size_t)(nl - line) + 1);
      out_len += (size_t)(nl - line) + 1;
    }
    line = nl + 1;
  }
  if (out_len != len) atomic_write_file(path, out, out_len);
  free(text);
  free(out);
}

/* Existing output: the manifest must match; checkpoints are only touched with
 * --resume; stale temporaries of killed writers go; the log is cut back to
 * the checkpoints. Then the manifest is (re)written and the log opened. */
static FILE *prepare_out_dir(const train_opts *o, int first, int last) {
  char path[1024];
  snprintf(path, sizeof path, "%s/manifest.json", o->out_dir);
  struct stat st;
  int have_manifest = stat(path, &st) == 0;
  if (have_manifest) {
    run_config have;
    manifest_read(o->out_dir, &have);
    manifest_check_match(&have, &o->rc, path);
  } else if (o->resume && o->only_block < 0) {
    db_fail("--resume: %s has no manifest.json (nothing to resume)", o->out_dir);
  }
  int *steps = db_calloc((size_t)(last - first + 1), sizeof *steps);
  for (int i = first; i <= last; i++) {
    char bf[1024];
    block_file(bf, sizeof bf, o->out_dir, i);
    if (!o->resume && stat(bf, &st) == 0)
      db_fail("%s exists: pass --resume to continue training it, or choose another --out", bf);
    steps[i - first] = o->resume ? checkpoint_steps(o->out_dir, i) : 0; /* validates before anything is written */
  }
  if (db_mkdir_p(o->out_dir) != 0) db_fail("cannot create the run directory %s", o->out_dir); /* with missing parents */
  run_dir_remove_stale_temporaries(o->out_dir, first, last);
  manifest_write(o->out_dir, &o->rc); /* same content when it existed (checked above); updates steps */
  snprintf(path, sizeof path, "%s/log.jsonl", o->out_dir);
  log_truncate_to_checkpoints(path, first, last, steps);
  free(steps);
  FILE *log = fopen(path, "a");
  if (!log) db_fail("cannot write %s", path);
  return log;
}

/* Another rank prepared the shared directory: its manifest must be this run's. */
static FILE *join_out_dir(const train_opts *o) {
  char path[1024];
  run_config have;
  manifest_read(o->out_dir, &have);
  snprintf(path, sizeof path, "%s/manifest.json", o->out_dir);
  manifest_check_match(&have, &o->rc, path);
  snprintf(path, sizeof path, "%s/log.jsonl", o->out_dir);
  FILE *log = fopen(path, "a"); /* O_APPEND: every rank's lines land whole */
  if (!log) db_fail("cannot write %s", path);
  return log;
}

/* ---------------------------------------------------------------- schedules */
static int budget_left(const trainer *t) { return !t->o.max_steps_this_run || t->steps_run < t->o.max_steps_this_run; }

static void checkpoint_due(trainer *t, long done, int first, int last) {
  if (t->o.ckpt_every <= 0 || done % t->o.ckpt_every != 0) return;
  trainer_flush(t);
  for (int b = first; b <= last; b++)
    if (t->blocks[b].open) trainer_save(t, b);
}

/* One block on the device at a time: its parameters, gradients, moments,
 * activations. With a train_comm, only the blocks of this rank's group. */
static void run_sequential(trainer *t, int first, int last) {
  int steps = t->o.rc.steps;
  t->steps_total = 0;
  for (int b = first; b <= last; b++) t->steps_total += train_comm_owns(t->o.comm, b) ? steps : 0;
  for (int b = first; b <= last && budget_left(t); b++) {
    if (!train_comm_owns(t->o.comm, b)) continue;
    double t0 = db_now();
    size_t peak_before = db_peak_bytes();
    db_reset_peak(); /* this block's own peak, then the run's is restored */
    trainer_block_begin(t, b);
    block_slot *bs = &t->blocks[b];
    t->steps_total -= bs->steps_done;
    if (bs->steps_done >= steps) {
      if (t->o.progress) fprintf(stderr, "  block %d: %d steps already done\n", b, bs->steps_done);
    }
    while (bs->steps_done < steps && budget_left(t)) {
      trainer_step(t, b);
      if (bs->steps_done < steps) checkpoint_due(t, bs->steps_done, b, b);
    }
    trainer_block_end(t, b);
    t->res.trained[b] = 1;
    t->res.block_seconds[b] = db_now() - t0;
    t->res.block_peak[b] = db_peak_bytes();
    db_restore_peak(peak_before > t->res.block_peak[b] ? peak_before : t->res.block_peak[b]);
    if (t->o.progress) fprintf(stderr, "\n");
  }
}

/* A uniform block each step (the authors' code); all blocks resident. */
static void run_random(trainer *t) {
  const run_config *rc = &t->o.rc;
  long done = 0, total = (long)rc->steps * rc->blocks;
  for (int b = 0; b < rc->blocks; b++) {
    trainer_block_begin(t, b);
    done += t->blocks[b].steps_done;
  }
  t->steps_total = total - done;
  for (long g = done; g < total && budget_left(t); g++) {
    uint32_t w[4];
    db_philox4x32(train_key(rc->seed, TAG_SCHED), (uint64_t)g, w);
    int b = (int)((uint64_t)w[0] * (uint64_t)rc->blocks >> 32);
    trainer_step(t, b);
    if (g + 1 < total) checkpoint_due(t, g + 1, 0, rc->blocks - 1);
  }
  trainer_flush(t);
  for (int b = 0; b < rc->blocks; b++) trainer_block_end(t, b);
  if (t->o.progress) fprintf(stderr, "\n");
}

train_result train_run(db_ctx *ctx, const train_opts *o, train_task *task) {
  const run_config *rc = &o->rc;
  if (!o->out_dir) db_fail("train: no run directory (--out)");
  if (o->only_block >= rc->blocks) db_fail("--block %d: the model has blocks 0..%d", o->only_block, rc->blocks - 1);
  if (o->only_block >= 0 && rc->schedule == SCHEDULE_RANDOM) db_fail("--block trains one block: use it with --schedule sequential");
  const train_comm *c = o->comm;
  if (c && (c->ranks < 1 || c->replicas < 1 || c->ranks % c->replicas || c->rank < 0 || c->rank >= c->ranks))
    db_fail("train: %d processes cannot form groups of %d replicas", c ? c->ranks : 0, c ? c->replicas : 0);
  if (c && c->ranks > 1 && o->only_block >= 0) db_fail("--block: one block alone is one process's job, not mpirun's");
  if (c && train_comm_groups(c) > 1 && rc->schedule == SCHEDULE_RANDOM)
    db_fail("--schedule random keeps every block on one device: block-parallel runs use --schedule sequential");
  if (c && train_comm_groups(c) > rc->blocks)
    db_fail("%d block groups for %d blocks: use at most %d processes (x %d replicas)", train_comm_groups(c), rc->blocks,
            rc->blocks * c->replicas, c->replicas);
  int first = o->only_block >= 0 ? o->only_block : 0, last = o->only_block >= 0 ? o->only_block : rc->blocks - 1;
  trainer *t = trainer_create(ctx, o, task);
  /* several ranks in one directory: rank 0 checks and prepares it (manifest,
   * stale temporaries, the log cut back to the checkpoints), then the others join */
  int shared = c && c->ranks > 1 && c->shared_dir;
  if (!shared || c->rank == 0) t->log = prepare_out_dir(o, first, last);
  if (shared) {
    c->barrier(o->comm);
    if (c->rank != 0) t->log = join_out_dir(o);
  }
  if (rc->schedule == SCHEDULE_SEQUENTIAL) run_sequential(t, first, last);
  else run_random(t);
  db_finish(ctx);
  train_result res = t->res;
  res.seconds = db_now() - t->t_start;
  res.peak_bytes = db_peak_bytes();
  res.steps_run = t->steps_run;
  res.comm_seconds = t->res.comm_seconds;
  res.comm_mpi_seconds = t->res.comm_mpi_seconds;
  res.comm_bytes = t->res.comm_bytes;
  fclose(t->log);
  t->log = NULL;
  trainer_destroy(t);
  return res;
}
