/* Block checkpoints of a run directory (checkpoint.h). */
#include "checkpoint.h"
#include "../data/safetensors.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECKPOINT_FORMAT "dblocks-diffusionblocks-1"

void block_file(char *out, size_t n, const char *dir, int block) {
  if ((size_t)snprintf(out, n, "%s/block_%d.safetensors", dir, block) >= n) db_fail("path too long: %s", dir);
}

void block_save(db_ctx *ctx, const char *dir, int block, const param_set *ps, int steps_done,
                const char *const *extra_meta, int n_extra) {
  int with_opt = ps->m != NULL, n = ps->n * (with_opt ? 3 : 1);
  st_tensor_in *t = db_calloc((size_t)n, sizeof *t);
  char **names = db_calloc((size_t)n, sizeof *names);
  float **bufs = db_calloc((size_t)n, sizeof *bufs);
  for (int k = 0; k < n; k++) {
    int i = k % ps->n, kind = k / ps->n; /* 0 params, 1 exp_avg, 2 exp_avg_sq */
    db_tensor src = kind == 0 ? ps->p[i] : kind == 1 ? ps->m[i] : ps->v[i];
    size_t len = strlen(ps->names[i]) + 32;
    names[k] = db_malloc(len);
    snprintf(names[k], len, "%s%s", kind == 0 ? "" : kind == 1 ? "optim.exp_avg." : "optim.exp_avg_sq.", ps->names[i]);
    bufs[k] = db_malloc(db_nbytes(src));
    db_download(ctx, src, bufs[k]);
    t[k].name = names[k];
    t[k].ndim = src.ndim;
    memcpy(t[k].shape, src.shape, sizeof t[k].shape);
    t[k].data = bufs[k];
  }
  char sblock[16], ssteps[32], path[1024];
  snprintf(sblock, sizeof sblock, "%d", block);
  snprintf(ssteps, sizeof ssteps, "%d", steps_done);
  int n_meta = 3 + n_extra;
  const char **meta = db_calloc((size_t)2 * n_meta, sizeof *meta);
  const char *base[] = {"format", CHECKPOINT_FORMAT, "block", sblock, "steps_done", ssteps};
  memcpy(meta, base, sizeof base);
  for (int k = 0; k < 2 * n_extra; k++) meta[6 + k] = extra_meta[k];
  block_file(path, sizeof path, dir, block);
  st_write(path, t, n, meta, n_meta);
  for (int k = 0; k < n; k++) { free(names[k]); free(bufs[k]); }
  free(t); free(names); free(bufs); free(meta);
}

static void load_tensor(db_ctx *ctx, const st_file *f, const char *path, const char *name, db_tensor dst) {
  const st_tensor *s = st_find(f, name);
  if (!s) db_fail("checkpoint %s: tensor %s is missing", path, name);
  int same = s->ndim == dst.ndim;
  for (int d = 0; same && d < dst.ndim; d++) same = s->shape[d] == dst.shape[d];
  if (!same)
    db_fail("checkpoint %s: tensor %s has %d dims / %zu elements, the configuration expects %d dims / %zu", path,
            name, s->ndim, s->numel, dst.ndim, db_numel(dst));
  db_upload(ctx, dst, s->data);
}

/* The file's block index must be `block`; returns its steps_done. */
static int checked_steps(const st_file *f, const char *path, int block) {
  const char *sb = st_meta(f, "block"), *ss = st_meta(f, "steps_done");
  char *end;
  long b = sb ? strtol(sb, &end, 10) : -1;
  if (!sb || *end || b != block) db_fail("checkpoint %s: holds block %s, expected block %d", path, sb ? sb : "(none)", block);
  long steps = ss ? strtol(ss, &end, 10) : -1;
  if (!ss || *end || steps < 0 || steps > 1 << 30) db_fail("checkpoint %s: missing or bad steps_done", path);
  return (int)steps;
}

int block_load(db_ctx *ctx, const char *dir, int block, param_set *ps) {
  char path[1024];
  block_file(path, sizeof path, dir, block);
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  st_file f = st_read(path);
  int steps = checked_steps(&f, path, block);
  char name[300];
  for (int i = 0; i < ps->n; i++) {
    load_tensor(ctx, &f, path, ps->names[i], ps->p[i]);
    if (!ps->m) continue;
    snprintf(name, sizeof name, "optim.exp_avg.%s", ps->names[i]);
    if (!st_find(&f, name)) {
      if (steps > 0) db_fail("checkpoint %s: no optimizer state, cannot resume training from it", path);
      continue;
    }
    load_tensor(ctx, &f, path, name, ps->m[i]);
    snprintf(name, sizeof name, "optim.exp_avg_sq.%s", ps->names[i]);
    load_tensor(ctx, &f, path, name, ps->v[i]);
  }
  st_free(&f);
  return steps;
}

int block_validate(const char *dir, int block) {
  char path[1024];
  struct stat st;
  block_file(path, sizeof path, dir, block);
  if (stat(path, &st) != 0) return -1;
  st_file f = st_read(path);
  int steps = checked_steps(&f, path, block);
  st_free(&f);
  return steps;
}

/* 1 if name is "<target>.tmp.<pid>" with a pid that no longer runs here. */
static int stale_temporary_of(const char *name, const char *target) {
  size_t n = strlen(target);
  if (strncmp(name, target, n) || strncmp(name + n, ".tmp.", 5)) return 0;
  char *end;
  long pid = strtol(name + n + 5, &end, 10);
  if (*end || pid <= 0) return 0;
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int run_dir_remove_stale_temporaries(const char *dir, int first, int last) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int stale = stale_temporary_of(e->d_name, "manifest.json") || stale_temporary_of(e->d_name, "log.jsonl");
    for (int b = first; !stale && b <= last; b++) {
      char target[64];
      snprintf(target, sizeof target, "block_%d.safetensors", b);
      stale = stale_temporary_of(e->d_name, target);
    }
    if (!stale) continue;
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (unlink(path) == 0) removed++;
  }
  closedir(d);
  return removed;
}
