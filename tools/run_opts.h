/* Options shared by train, sample, bench train and demo: the model and method
 * configuration. Unset options keep a sentinel, so a command can tell what the
 * user asked for from what a manifest or the defaults supply. */
#ifndef DB_RUN_OPTS_H
#define DB_RUN_OPTS_H
#include "../models/diffusion.h"
#include "cli.h"

typedef struct {
  int blocks, layers, width, heads, patch, batch, steps, seed;
  double gamma, lr, weight_decay, clip, label_dropout;
  const char *partition, *schedule;
} run_opts;

void run_opts_init(run_opts *r);        /* everything unset */
int run_opts_table(run_opts *r, cli_opt *opts); /* fills opts, returns how many */
/* rc (defaults or a manifest) overridden by what the user set. */
void run_opts_apply(const run_opts *r, run_config *rc);
#endif
