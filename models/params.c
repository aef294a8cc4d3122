/* Parameter sets on flat device buffers (params.h). */
#include "params.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void param_set_init(param_set *ps, db_ctx *ctx, const char *name) {
  memset(ps, 0, sizeof *ps);
  ps->ctx = ctx;
  char buf[96];
  snprintf(buf, sizeof buf, "%s params", name);
  ps->arena_p = db_arena_new(ctx, buf);
}

/* Before param_set_commit a tensor is only a shape: no buffer yet. */
int param_add(param_set *ps, const char *name, int ndim, const int *shape, int decay) {
  if (ps->committed) db_fail("param_add(%s): the set is already laid out (param_set_commit)", name);
  if (ndim < 1 || ndim > 4) db_fail("param_add(%s): %d dims, must be 1..4", name, ndim);
  if (ps->n == ps->cap) {
    ps->cap = ps->cap ? 2 * ps->cap : 32;
    ps->names = db_realloc(ps->names, (size_t)ps->cap * sizeof *ps->names);
    ps->p = db_realloc(ps->p, (size_t)ps->cap * sizeof *ps->p);
    ps->decay = db_realloc(ps->decay, (size_t)ps->cap * sizeof *ps->decay);
  }
  db_tensor t = {0};
  t.ndim = ndim;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] <= 0) db_fail("param_add(%s): dim %d is %d, must be positive", name, d, shape[d]);
    t.shape[d] = shape[d];
  }
  ps->names[ps->n] = db_strdup(name);
  ps->p[ps->n] = t;
  ps->decay[ps->n] = decay != 0;
  return ps->n++;
}

static size_t aligned(size_t n) { return (n + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN; }

/* Views of every tensor of the set into one flat buffer. */
static void make_views(const param_set *ps, db_tensor flat, db_tensor *views) {
  for (int i = 0; i < ps->n; i++) views[i] = db_view(flat, ps->offset[i], ps->p[i].ndim, ps->p[i].shape);
}

void param_set_commit(param_set *ps) {
  if (ps->committed) return;
  if (ps->n == 0) db_fail("param_set_commit: the set has no tensors");
  ps->offset = db_calloc((size_t)ps->n, sizeof *ps->offset);
  size_t at = 0;
  for (int pass = 1; pass >= 0; pass--) { /* decayed tensors first: AdamW then needs two ranges */
    for (int i = 0; i < ps->n; i++)
      if (ps->decay[i] == pass) {
        ps->offset[i] = at;
        at += aligned(db_numel(ps->p[i]));
      }
    if (pass == 1) ps->decay_end = at;
  }
  ps->total = at;
  if (ps->total * 4 > ps->ctx->dev.max_alloc)
    db_fail("parameter set of %.1f MiB exceeds the device's largest allocation (%.1f MiB)", ps->total * 4 / 1048576.0,
            ps->ctx->dev.max_alloc / 1048576.0);
  ps->flat_p = db_new(ps->arena_p, 1, (int)ps->total, 0, 0, 0);
  db_zero(ps->ctx, ps->flat_p); /* the padding stays zero */
  make_views(ps, ps->flat_p, ps->p);
  ps->committed = 1;
}

static db_tensor flat_zeroed(param_set *ps) {
  db_tensor t = db_new(ps->arena_train, 1, (int)ps->total, 0, 0, 0);
  db_zero(ps->ctx, t);
  return t;
}

void param_set_alloc_training(param_set *ps) {
  if (!ps->committed) db_fail("param_set_alloc_training: call param_set_commit first");
  if (ps->arena_train) return;
  ps->arena_train = db_arena_new(ps->ctx, "grads+moments");
  ps->g = db_calloc((size_t)ps->n, sizeof *ps->g);
  ps->m = db_calloc((size_t)ps->n, sizeof *ps->m);
  ps->v = db_calloc((size_t)ps->n, sizeof *ps->v);
  ps->flat_g = flat_zeroed(ps);
  ps->flat_m = flat_zeroed(ps);
  ps->flat_v = flat_zeroed(ps);
  make_views(ps, ps->flat_g, ps->g);
  make_views(ps, ps->flat_m, ps->m);
  make_views(ps, ps->flat_v, ps->v);
  ps->normsq = db_new(ps->arena_train, 1, 1, 0, 0, 0);
}

void param_set_free_training(param_set *ps) {
  db_arena_free(ps->arena_train);
  ps->arena_train = NULL;
  free(ps->g); free(ps->m); free(ps->v);
  ps->g = ps->m = ps->v = NULL;
  ps->flat_g = ps->flat_m = ps->flat_v = DB_NULL;
}

void param_set_free(param_set *ps) {
  param_set_free_training(ps);
  db_arena_free(ps->arena_p);
  for (int i = 0; i < ps->n; i++) free(ps->names[i]);
  free(ps->names); free(ps->p); free(ps->decay); free(ps->offset);
  memset(ps, 0, sizeof *ps);
}

void param_set_zero_grads(param_set *ps) {
  if (!ps->arena_train) db_fail("param_set_zero_grads: the set has no gradients (param_set_alloc_training)");
  db_zero(ps->ctx, ps->flat_g);
}

size_t param_set_numel(const param_set *ps) {
  size_t n = 0;
  for (int i = 0; i < ps->n; i++) n += db_numel(ps->p[i]);
  return n;
}

int param_find(const param_set *ps, const char *name) {
  for (int i = 0; i < ps->n; i++)
    if (!strcmp(ps->names[i], name)) return i;
  return -1;
}

/* [lo, hi) of a flat buffer as a 1-D tensor */
static db_tensor range(db_tensor flat, size_t lo, size_t hi) { return db_view(flat, lo, 1, (int[]){(int)(hi - lo)}); }

/* Two "tensors" for adamw_update: the decayed range and the rest (the padding
 * is zero in all four buffers, so it stays zero and adds nothing to the norm). */
void param_set_adamw(param_set *ps, adamw_config cfg, int step) {
  if (!ps->arena_train) db_fail("param_set_adamw: the set has no gradients (param_set_alloc_training)");
  db_tensor P[2], G[2], M[2], V[2];
  int decay[2], k = 0;
  size_t cut[3] = {0, ps->decay_end, ps->total};
  for (int r = 0; r < 2; r++) {
    if (cut[r + 1] == cut[r]) continue;
    P[k] = range(ps->flat_p, cut[r], cut[r + 1]);
    G[k] = range(ps->flat_g, cut[r], cut[r + 1]);
    M[k] = range(ps->flat_m, cut[r], cut[r + 1]);
    V[k] = range(ps->flat_v, cut[r], cut[r + 1]);
    decay[k++] = r == 0;
  }
  adamw_update(ps->ctx, P, G, M, V, decay, k, ps->normsq, cfg, step);
}
