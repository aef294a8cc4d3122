/* The OpenCL-free base every module builds on: one exit path for errors (with
 * a trap for tests), checked allocation, a monotonic clock and the host side of
 * the Philox RNG. Pure-C modules (EDM, Fréchet distance, the file formats in
 * data/) include this and nothing of OpenCL; db.h includes it too. */
#ifndef DB_BASE_H
#define DB_BASE_H
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- errors */
/* Every failure ends up in db_fail: it formats a message naming the problem
 * and, unless a test has set a trap (db_trap_errors), prints it and exits 1. */
_Noreturn void db_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *db_last_error(void);
/* Tests and fuzz harnesses: while a trap is set, db_fail longjmps to it
 * instead of exiting. NULL removes the trap. Returns the previous trap, so
 * code that must clean up on failure can set its own and restore it. */
jmp_buf *db_trap_errors(jmp_buf *trap);
/* Several processes (tools/dist.c): messages start with the prefix ("rank 2
 * of 3: "), and the hook (MPI_Abort) runs before exit, so one failing rank
 * ends the whole job with its own message. */
void db_set_error_prefix(const char *prefix);
void db_set_exit_hook(void (*hook)(int code));
/* Fails again with the message of the last db_fail (after a clean-up). */
_Noreturn void db_fail_again(void);

/* ---------------------------------------------------------------- allocation */
/* malloc/calloc/realloc/strdup that never return NULL: out of host memory is
 * a db_fail naming the size. A zero size still returns a unique pointer. */
void *db_malloc(size_t bytes);
void *db_calloc(size_t count, size_t size);
void *db_realloc(void *p, size_t bytes);
char *db_strdup(const char *s);
/* count * size, failing clearly (naming what) instead of wrapping around */
size_t db_mul_size(size_t count, size_t size, const char *what);

/* ---------------------------------------------------------------- time */
double db_now(void); /* seconds, monotonic */
/* The cache folder (kernel binaries, tuning, the exported KJV): DBLOCKS_CACHE_DIR,
 * else $XDG_CACHE_HOME/dblocks, else ~/.cache/dblocks; NULL when off ("off", "0", ""). */
const char *db_cache_dir(void);
/* mkdir -p: 0, or -1 when a part cannot be made or is not a folder. */
int db_mkdir_p(const char *path);

/* ---------------------------------------------------------------- host RNG */
/* Philox4x32-10: four 32-bit words from (seed, counter); the same on host and
 * device (cl/rng.cl). Stream element i of a draw uses counter (offset + i/4). */
void db_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]);
/* the full 128-bit counter / 64-bit key form, for known-answer tests */
void db_philox4x32_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
float db_u01(uint32_t x); /* strictly inside (0,1), 24 bits */
void db_rng_normal_host(float *out, size_t n, uint64_t seed, uint64_t offset);
void db_rng_uniform_host(float *out, size_t n, uint64_t seed, uint64_t offset, float lo, float hi);

#endif
