/* The run options on the command line (train, bench train): one flag per
 * field of the run-option table (models/run_config.h) that has one, parsed
 * and range-checked by the table. A command can tell what the user asked for
 * from what a manifest or the defaults supply: an option not given is NULL. */
#ifndef DB_RUN_OPTS_H
#define DB_RUN_OPTS_H
#include "../models/run_config.h"
#include "cli.h"

#define RUN_OPTS_MAX 64
typedef struct {
  const char *text[RUN_OPTS_MAX]; /* per run_fields[i]: the value given, or NULL */
} run_opts;

void run_opts_init(run_opts *r);                 /* nothing given */
/* fills opts with the flags of `task` (TASK_IMAGE, TASK_LM), returns how many */
int run_opts_table(run_opts *r, cli_opt *opts, int task);
/* rc (defaults or a manifest) overridden by what the user gave; `cmd` names the command in errors. */
void run_opts_apply(const run_opts *r, run_config *rc, const char *cmd);

/* --mem-limit SIZE of the training commands: a cap on the device memory the
 * runtime allocates (db_set_mem_limit, docs/memory.md). Not a run field: it
 * describes the device, not the run, so it is never written to a manifest
 * and a resumed run may use another. The option's table entry, storing the
 * text in *text: */
cli_opt run_opts_mem_limit_opt(const char **text);
/* The size in bytes of the option's text (NULL: 0, no option); a malformed
 * size is a clear error naming `cmd` and the option. Call before db_init; pass
 * the result to db_set_mem_limit after db_init, so it wins over DBLOCKS_MEM_LIMIT. */
size_t run_opts_mem_limit_parse(const char *text, const char *cmd);
#endif
