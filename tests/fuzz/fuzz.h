/* Shared by the parser fuzz harnesses (make fuzz, docs/testing.md): a private
 * temporary directory per process, and writing the fuzzer's bytes to a file in
 * it, for parsers that take a path.
 *
 * Every harness calls the parser with db_fail trapped (db_trap_errors + setjmp):
 * a clean db_fail is the expected answer to a bad file, a sanitizer report or a
 * crash is a finding. The parsers promise to free what they own before failing,
 * so libFuzzer's leak check stays on (see the Makefile for the exceptions). */
#ifndef DB_FUZZ_H
#define DB_FUZZ_H
#include "../../runtime/base.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fz_dir[4096];

static void fz_cleanup(void) {
  if (!fz_dir[0]) return;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
  if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fz_dir);
}

/* The process's scratch directory, $TMPDIR/dblocks-fuzz-XXXXXX, removed at exit. */
static const char *fz_tmpdir(void) {
  if (fz_dir[0]) return fz_dir;
  const char *base = getenv("TMPDIR");
  snprintf(fz_dir, sizeof fz_dir, "%s/dblocks-fuzz-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(fz_dir)) { perror("fuzz: mkdtemp"); abort(); }
  atexit(fz_cleanup);
  return fz_dir;
}

/* Writes n bytes to DIR/name (replacing it); the path goes to path[cap]. */
static void fz_write_file(char *path, size_t cap, const char *name, const uint8_t *data, size_t n) {
  snprintf(path, cap, "%s/%s", fz_tmpdir(), name);
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) { perror(path); abort(); }
}

/* Reads every byte of a buffer the parser returned, so an allocation shorter
 * than the shape the parser reported is an ASan report here. */
static inline unsigned fz_touch(const void *p, size_t bytes) {
  const volatile unsigned char *b = p;
  unsigned s = 0;
  for (size_t i = 0; i < bytes; i++) s += b[i];
  return s;
}

/* FUZZ_VERBOSE=1 in the environment: print what each input came to (running a
 * harness on corpus files by hand shows which checks they reach). */
static inline void fz_outcome(const char *what, int failed) {
  static int verbose = -1;
  if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
  if (verbose) fprintf(stderr, "fuzz: %s: %s\n", what, failed ? db_last_error() : "accepted");
}

#define FZ_CHECK(cond)                                                                  \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      abort();                                                                          \
    }                                                                                   \
  } while (0)

#endif
