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

int param_add(param_set *ps, const char *name, int ndim, const int *shape, int decay) {
  if (ps->arena_train) db_fail("param_add(%s): the set already has gradients", name);
  if (ps->n == ps->cap) {
    ps->cap = ps->cap ? 2 * ps->cap : 32;
    ps->names = db_realloc(ps->names, (size_t)ps->cap * sizeof *ps->names);
    ps->p = db_realloc(ps->p, (size_t)ps->cap * sizeof *ps->p);
    ps->decay = db_realloc(ps->decay, (size_t)ps->cap * sizeof *ps->decay);
  }
  ps->names[ps->n] = db_strdup(name);
  ps->p[ps->n] = db_alloc(ps->arena_p, DB_F32, ndim, shape);
  ps->decay[ps->n] = decay;
  return ps->n++;
}

void param_set_alloc_training(param_set *ps) {
  if (ps->arena_train) return;
  ps->arena_train = db_arena_new(ps->ctx, "grads+moments");
  ps->g = db_calloc((size_t)ps->n, sizeof *ps->g);
  ps->m = db_calloc((size_t)ps->n, sizeof *ps->m);
  ps->v = db_calloc((size_t)ps->n, sizeof *ps->v);
  for (int i = 0; i < ps->n; i++) {
    ps->g[i] = db_alloc(ps->arena_train, DB_F32, ps->p[i].ndim, ps->p[i].shape);
    ps->m[i] = db_alloc(ps->arena_train, DB_F32, ps->p[i].ndim, ps->p[i].shape);
    ps->v[i] = db_alloc(ps->arena_train, DB_F32, ps->p[i].ndim, ps->p[i].shape);
    db_zero(ps->ctx, ps->g[i]);
    db_zero(ps->ctx, ps->m[i]);
    db_zero(ps->ctx, ps->v[i]);
  }
  ps->normsq = db_new(ps->arena_train, 1, 1, 0, 0, 0);
}

void param_set_free_training(param_set *ps) {
  db_arena_free(ps->arena_train);
  ps->arena_train = NULL;
  free(ps->g); free(ps->m); free(ps->v);
  ps->g = ps->m = ps->v = NULL;
}

void param_set_free(param_set *ps) {
  param_set_free_training(ps);
  db_arena_free(ps->arena_p);
  for (int i = 0; i < ps->n; i++) free(ps->names[i]);
  free(ps->names); free(ps->p); free(ps->decay);
  memset(ps, 0, sizeof *ps);
}

void param_set_zero_grads(param_set *ps) {
  for (int i = 0; i < ps->n; i++) db_zero(ps->ctx, ps->g[i]);
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

void param_set_adamw(param_set *ps, adamw_config cfg, int step) {
  adamw_update(ps->ctx, ps->p, ps->g, ps->m, ps->v, ps->decay, ps->n, ps->normsq, cfg, step);
}
