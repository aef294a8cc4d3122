/* File output shared by every writer (safetensors, .npy, PNG, manifests):
 * the one atomic writer, whole-file read/write, and the endian helpers for
 * binary formats. Pure C, no OpenCL.
 *
 * Atomic writes. atomic_open(f, PATH, ...) writes to a temporary file
 *     PATH.tmp.<pid>          (<pid>: getpid() in decimal, no padding)
 * in the same directory as PATH (so the rename cannot cross file systems).
 * atomic_commit flushes and fsyncs it, renames it over PATH and then fsyncs
 * the directory (best effort: some file systems refuse). Only a finished file
 * is ever visible under PATH. On any failure the temporary file is removed and
 * an existing PATH is left untouched; an existing PATH that is not a regular
 * file (a directory, a device, a FIFO) is refused rather than replaced.
 * A process killed between open and commit leaves PATH.tmp.<pid> behind: a
 * name ending in ".tmp." followed by decimal digits is such a leftover, and
 * belongs to a dead writer once no process <pid> runs.
 *
 * Errors are deferred: open and write never fail by themselves but remember
 * the first failure; atomic_commit (or atomic_check / atomic_fail) reports it
 * through db_fail, after the temporary file is removed. A caller therefore
 * only has to avoid db_fail / longjmp between atomic_open and atomic_commit,
 * or call atomic_abort first. Messages read
 *     "WHAT PATH: <strerror> (<stage> PATH.tmp.<pid>)"
 * where WHAT is "cannot write" unless the caller names another (safetensors
 * uses "checkpoint"), e.g. "cannot write out/x.npy: No such file or directory
 * (creating the temporary file out/x.npy.tmp.4242)". */
#ifndef DB_DATA_FILE_IO_H
#define DB_DATA_FILE_IO_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ATOMIC_TMP_INFIX ".tmp." /* PATH ATOMIC_TMP_INFIX <pid> */

typedef struct {
  const char *path; /* the target, as given (not copied: keep it alive) */
  const char *what; /* message prefix, "cannot write" by default */
  char *tmp;        /* PATH.tmp.<pid>; NULL once committed or aborted */
  FILE *fp;         /* the temporary file; NULL if it was not created */
  int created;      /* 1 if tmp is a file this writer created (and so may remove) */
  int err;          /* errno of the first failure, -1 for one without errno, 0 if none */
  char why[1024];   /* the first failure, for messages */
} atomic_file;

/* Starts writing PATH. what: the message prefix (NULL: "cannot write"). */
void atomic_open(atomic_file *f, const char *path, const char *what);
/* Appends n bytes (nothing once a failure is recorded). */
void atomic_write(atomic_file *f, const void *data, size_t n);
/* Appends n 4-byte words (float32, int32, uint32) in little-endian order,
 * whatever the host's byte order. */
void atomic_write_le32(atomic_file *f, const void *words, size_t n);
/* errno of the first failure so far (-1 if it has none), 0 if none. */
int atomic_error(const atomic_file *f);
/* If a failure is recorded: removes the temporary file and db_fails with it. */
void atomic_check(atomic_file *f);
/* A failure found by the caller (e.g. a library error): removes the temporary
 * file and db_fails with "WHAT PATH: <fmt...>", followed by ": <failure>" if
 * the writer had recorded one. */
_Noreturn void atomic_fail(atomic_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Flush, fsync, close, rename over PATH, fsync the directory; db_fail (after
 * removing the temporary file) on any failure. */
void atomic_commit(atomic_file *f);
/* Closes and removes the temporary file, never fails; PATH is untouched. A
 * no-op after atomic_commit or a previous atomic_abort. */
void atomic_abort(atomic_file *f);

/* Writes len bytes to PATH atomically (as above, WHAT "cannot write"). */
void atomic_write_file(const char *path, const void *data, size_t len);
/* The whole file, NUL-terminated (db_malloc'd, free() it); *len (if non-NULL)
 * excludes the NUL. db_fail("cannot read PATH: ...") if missing or unreadable. */
char *read_text_file(const char *path, size_t *len);

/* ---------------------------------------------------------------- byte order */
/* put_*: store v at p in the named byte order; get_*: load it. p needs no
 * alignment. f32 values travel as their IEEE-754 bit pattern (NaN payloads
 * and signed zeros kept). */
static inline void put_le16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static inline void put_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put_be32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (24 - 8 * i));
}
static inline void put_le_f32(unsigned char *p, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  put_le32(p, u);
}
static inline uint16_t get_le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get_le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static inline uint32_t get_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline float get_le_f32(const unsigned char *p) {
  uint32_t u = get_le32(p);
  float v;
  memcpy(&v, &u, 4);
  return v;
}

int host_is_little_endian(void);
/* Reverses the bytes of each of n 4-byte words in place. */
void bswap32_n(void *words, size_t n);
/* n 4-byte words read from a little-endian file -> host order, in place (a
 * no-op on little-endian hosts). The same call converts host -> little-endian. */
void le32_to_host(void *words, size_t n);

#endif
