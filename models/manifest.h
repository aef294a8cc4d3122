/* DIR/manifest.json: a run's configuration (every field of the run-option
 * table, run_config.h), its partition and the σ ranges of every block.
 * Written atomically; read strictly (JSON through jansson, duplicate keys
 * rejected, every field type- and range-checked). */
#ifndef DB_MANIFEST_H
#define DB_MANIFEST_H
#include "run_config.h"

#define MANIFEST_FORMAT "dblocks-diffusionblocks-1"

void manifest_write(const char *dir, const run_config *rc);
/* Fails clearly on a missing, corrupt, incomplete or out-of-range manifest. */
void manifest_read(const char *dir, run_config *rc);
/* Fails naming the first field of `want` that differs from `have` (the
 * manifest at path). Steps may differ: a run can be extended. */
void manifest_check_match(const run_config *have, const run_config *want, const char *path);
#endif
