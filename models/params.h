/* A named set of parameter tensors with their gradients and AdamW moments,
 * each kind in its own arena so a block's training state can be freed (or
 * moved off the device) as a unit. */
#ifndef DB_PARAMS_H
#define DB_PARAMS_H
#include "../ops/ops.h"

typedef struct {
  db_ctx *ctx;
  int n, cap;
  char **names;
  db_tensor *p, *g, *m, *v; /* g, m, v exist after param_set_alloc_training */
  int *decay;               /* 1: AdamW weight decay applies */
  db_arena *arena_p, *arena_train;
  db_tensor normsq;         /* (1) scratch for the global grad norm */
} param_set;

void param_set_init(param_set *ps, db_ctx *ctx, const char *name);
int param_add(param_set *ps, const char *name, int ndim, const int *shape, int decay); /* returns the index */
void param_set_alloc_training(param_set *ps); /* gradients and zeroed moments */
void param_set_free_training(param_set *ps);
void param_set_free(param_set *ps);
void param_set_zero_grads(param_set *ps);
size_t param_set_numel(const param_set *ps);
int param_find(const param_set *ps, const char *name); /* -1 if absent */
/* one AdamW step over the whole set (global-norm clipping included) */
void param_set_adamw(param_set *ps, adamw_config cfg, int step);
#endif
