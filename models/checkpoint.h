/* A run directory's block checkpoints, DIR/block_<i>.safetensors: one block's
 * parameters under their parameter-set names and, with optimizer state,
 * "optim.exp_avg.<name>" / "optim.exp_avg_sq.<name>"; metadata: format, block
 * index, steps done, plus what the caller adds. Written atomically
 * (data/file_io.h). Any task's parameter set (param_set) can be saved. */
#ifndef DB_CHECKPOINT_H
#define DB_CHECKPOINT_H
#include "params.h"

void block_file(char *out, size_t n, const char *dir, int block);
/* extra_meta: NULL or n_extra (key, value) string pairs */
void block_save(db_ctx *ctx, const char *dir, int block, const param_set *ps, int steps_done,
                const char *const *extra_meta, int n_extra);
/* Loads parameters (and moments when ps has training buffers and the file has
 * them). Returns steps done; -1 if the file does not exist. Shape mismatches,
 * missing tensors and corrupt files fail clearly. */
int block_load(db_ctx *ctx, const char *dir, int block, param_set *ps);
/* Reads and validates DIR/block_<i>.safetensors if it exists (before anything
 * is written): returns its steps done, or -1 without a file. */
int block_validate(const char *dir, int block);

/* Removes temporaries that a killed writer left in dir (data/file_io.h names
 * them FILE.tmp.<pid>): of manifest.json and log.jsonl, and of block_<i>.safetensors for
 * the blocks [first, last] this process will write; only those whose writer
 * process no longer exists on this host, so a concurrent trainer of the same
 * block range is never disturbed. Returns how many were removed. */
int run_dir_remove_stale_temporaries(const char *dir, int first, int last);
#endif
