#include "run_opts.h"
#include <math.h>
#include <string.h>

#define UNSET_I (-2147483647)

void run_opts_init(run_opts *r) {
  r->blocks = r->layers = r->width = r->heads = r->patch = r->batch = r->steps = r->seed = UNSET_I;
  r->gamma = r->lr = r->weight_decay = r->clip = r->label_dropout = NAN;
  r->partition = r->schedule = NULL;
}

int run_opts_table(run_opts *r, cli_opt *o) {
  int n = 0;
  o[n++] = (cli_opt){"blocks", OPT_INT, &r->blocks, "B, number of blocks (1 = end-to-end backprop baseline; default 3)"};
  o[n++] = (cli_opt){"layers", OPT_INT, &r->layers, "L, transformer layers in total (default 12; each block gets L/B)"};
  o[n++] = (cli_opt){"width", OPT_INT, &r->width, "model width C (default 384)"};
  o[n++] = (cli_opt){"heads", OPT_INT, &r->heads, "attention heads (default 6)"};
  o[n++] = (cli_opt){"patch", OPT_INT, &r->patch, "patch size p (default 2: 196 tokens on 28x28)"};
  o[n++] = (cli_opt){"partition", OPT_STR, &r->partition, "equiprob | uniform noise partition (default equiprob)"};
  o[n++] = (cli_opt){"gamma", OPT_FLOAT, &r->gamma, "overlap of the blocks' training ranges (default 0.1)"};
  o[n++] = (cli_opt){"batch", OPT_INT, &r->batch, "batch size (default 256)"};
  o[n++] = (cli_opt){"steps", OPT_INT, &r->steps, "optimizer steps per block (default 1000)"};
  o[n++] = (cli_opt){"lr", OPT_FLOAT, &r->lr, "AdamW learning rate (default 2e-4)"};
  o[n++] = (cli_opt){"weight-decay", OPT_FLOAT, &r->weight_decay, "AdamW decoupled weight decay (default 0)"};
  o[n++] = (cli_opt){"clip", OPT_FLOAT, &r->clip, "global gradient-norm clip, 0 = off (default 1)"};
  o[n++] = (cli_opt){"label-dropout", OPT_FLOAT, &r->label_dropout, "probability of the no-class label (default 0.1)"};
  o[n++] = (cli_opt){"seed", OPT_INT, &r->seed, "seed of every random choice (default 0)"};
  o[n++] = (cli_opt){"schedule", OPT_STR, &r->schedule, "sequential | random block order (default sequential)"};
  return n;
}

void run_opts_apply(const run_opts *r, run_config *rc) {
  if (r->blocks != UNSET_I) rc->blocks = r->blocks;
  if (r->layers != UNSET_I) rc->layers = r->layers;
  if (r->width != UNSET_I) rc->model.width = r->width;
  if (r->heads != UNSET_I) rc->model.heads = r->heads;
  if (r->patch != UNSET_I) rc->model.patch = r->patch;
  if (r->batch != UNSET_I) rc->batch = r->batch;
  if (r->steps != UNSET_I) rc->steps = r->steps;
  if (r->seed != UNSET_I) {
    if (r->seed < 0) db_fail("--seed %d must not be negative", r->seed);
    rc->seed = (uint64_t)r->seed;
  }
  if (!isnan(r->gamma)) rc->gamma = r->gamma;
  if (!isnan(r->lr)) rc->lr = r->lr;
  if (!isnan(r->weight_decay)) rc->weight_decay = r->weight_decay;
  if (!isnan(r->clip)) rc->clip = r->clip;
  if (!isnan(r->label_dropout)) rc->label_dropout = r->label_dropout;
  if (r->partition) {
    if (!strcmp(r->partition, "equiprob")) rc->partition = EDM_PARTITION_EQUIPROB;
    else if (!strcmp(r->partition, "uniform")) rc->partition = EDM_PARTITION_UNIFORM;
    else db_fail("--partition %s: expected equiprob or uniform", r->partition);
  }
  if (r->schedule) {
    if (!strcmp(r->schedule, "sequential")) rc->schedule = SCHEDULE_SEQUENTIAL;
    else if (!strcmp(r->schedule, "random")) rc->schedule = SCHEDULE_RANDOM;
    else db_fail("--schedule %s: expected sequential or random", r->schedule);
  }
}
