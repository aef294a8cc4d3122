/* A named set of parameter tensors with their gradients and AdamW moments.
 * Each kind lives in ONE flat device buffer (parameters, gradients, first and
 * second moments) and every tensor is a view into it, so that zeroing the
 * gradients is one fill, the global gradient norm one reduction and AdamW
 * one launch per decay class, whatever the number of tensors. Tensors that
 * take weight decay come first in the buffers; every view starts at a
 * multiple of PARAM_ALIGN elements (vector loads).
 *
 * Life cycle: param_set_init, param_add for every tensor, param_set_commit
 * (allocates the flat parameter buffer and makes the views), then optionally
 * param_set_alloc_training (gradients and zeroed moments). */
#ifndef DB_PARAMS_H
#define DB_PARAMS_H
#include "../ops/ops.h"

#define PARAM_ALIGN 16

typedef struct {
  db_ctx *ctx;
  int n, cap;
  char **names;
  db_tensor *p, *g, *m, *v; /* views; g, m, v exist after param_set_alloc_training */
  int *decay;               /* 1: AdamW weight decay applies */
  size_t *offset;           /* element offset of tensor i in the flat buffers */
  size_t total, decay_end;  /* flat length (with padding); decayed tensors lie in [0, decay_end) */
  db_tensor flat_p, flat_g, flat_m, flat_v;
  int committed;
  db_arena *arena_p, *arena_train;
  db_tensor normsq;         /* (1) scratch for the global grad norm */
} param_set;

void param_set_init(param_set *ps, db_ctx *ctx, const char *name);
int param_add(param_set *ps, const char *name, int ndim, const int *shape, int decay); /* returns the index */
/* Lays the tensors out, allocates the flat parameter buffer (zeroed) and makes the views. */
void param_set_commit(param_set *ps);
void param_set_alloc_training(param_set *ps); /* gradients and zeroed moments */
void param_set_free_training(param_set *ps);
void param_set_free(param_set *ps);
void param_set_zero_grads(param_set *ps);     /* one fill */
size_t param_set_numel(const param_set *ps);  /* sum of the tensors' elements (no padding) */
int param_find(const param_set *ps, const char *name); /* -1 if absent */
/* one AdamW step over the whole set (global-norm clipping included) */
void param_set_adamw(param_set *ps, adamw_config cfg, int step);
#endif
