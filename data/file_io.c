/* The one atomic writer, whole-file read/write and byte-order helpers
 * (file_io.h). */
#include "file_io.h"
#include "../runtime/base.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ================================================================ byte order */

int host_is_little_endian(void) {
  const uint32_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

void bswap32_n(void *words, size_t n) {
  unsigned char *b = words;
  for (size_t i = 0; i < n; i++, b += 4) {
    unsigned char t0 = b[0], t1 = b[1];
    b[0] = b[3]; b[1] = b[2]; b[2] = t1; b[3] = t0;
  }
}

void le32_to_host(void *words, size_t n) {
  if (!host_is_little_endian()) bswap32_n(words, n);
}

/* ================================================================ atomic writes */

/* Records the first failure: err (errno, or -1 for none) and its description. */
static void set_failure(atomic_file *f, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_failure(atomic_file *f, int err, const char *fmt, ...) {
  if (f->err) return;
  f->err = err ? err : -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->why, sizeof f->why, fmt, ap);
  va_end(ap);
}

/* a failure of a system call at `stage`: "<strerror> (<stage> TMP<tail>)" */
static void io_failure_at(atomic_file *f, int err, const char *stage, const char *tail) {
  if (!err) err = EIO;
  set_failure(f, err, "%s (%s %s%s)", strerror(err), stage, f->tmp ? f->tmp : "?", tail);
}
static void io_failure(atomic_file *f, int err, const char *stage) { io_failure_at(f, err, stage, ""); }

void atomic_open(atomic_file *f, const char *path, const char *what) {
  memset(f, 0, sizeof *f);
  f->path = path ? path : "";
  f->what = what ? what : "cannot write";
  if (!path || !*path) {
    set_failure(f, 0, "empty file name");
    return;
  }
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    set_failure(f, 0, "it exists and is not a regular file (a directory or device); refusing to replace it");
    return;
  }
  size_t n = strlen(path) + sizeof ATOMIC_TMP_INFIX + 24;
  f->tmp = db_malloc(n);
  snprintf(f->tmp, n, "%s" ATOMIC_TMP_INFIX "%ld", path, (long)getpid());
  /* O_TRUNC: a leftover of an earlier process with the same pid is ours to
   * reuse; O_NOFOLLOW: never write through a symbolic link planted there. */
  int fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd < 0) {
    io_failure(f, errno, "creating the temporary file");
    return;
  }
  f->created = 1;
  f->fp = fdopen(fd, "wb");
  if (!f->fp) {
    io_failure(f, errno, "opening the temporary file");
    close(fd);
  }
}

void atomic_write(atomic_file *f, const void *data, size_t n) {
  if (f->err || !n) return;
  if (!f->fp) {
    set_failure(f, 0, "write after commit or abort (a bug)");
    return;
  }
  errno = 0;
  if (fwrite(data, 1, n, f->fp) != n) io_failure(f, errno, "writing the temporary file");
}

void atomic_write_le32(atomic_file *f, const void *words, size_t n) {
  if (host_is_little_endian()) {
    atomic_write(f, words, db_mul_size(n, 4, "atomic_write_le32"));
    return;
  }
  unsigned char chunk[4096];
  const unsigned char *src = words;
  for (size_t i = 0; i < n && !f->err; i += sizeof chunk / 4) {
    size_t k = n - i < sizeof chunk / 4 ? n - i : sizeof chunk / 4;
    memcpy(chunk, src + 4 * i, 4 * k);
    bswap32_n(chunk, k);
    atomic_write(f, chunk, 4 * k);
  }
}

int atomic_error(const atomic_file *f) { return f->err; }

void atomic_abort(atomic_file *f) {
  if (f->fp) fclose(f->fp);
  f->fp = NULL;
  if (f->created && f->tmp) unlink(f->tmp); /* only a file we created */
  f->created = 0;
  free(f->tmp);
  f->tmp = NULL;
}

/* Removes the temporary file, then fails with the recorded failure, after the
 * caller's text if any. */
static _Noreturn void fail_with(atomic_file *f, const char *extra) {
  char msg[2048];
  if (extra && f->err) snprintf(msg, sizeof msg, "%s: %s", extra, f->why);
  else snprintf(msg, sizeof msg, "%s", extra ? extra : f->err ? f->why : "unknown failure");
  atomic_abort(f);
  db_fail("%s %s: %s", f->what, f->path, msg);
}

void atomic_check(atomic_file *f) {
  if (f->err) fail_with(f, NULL);
}

_Noreturn void atomic_fail(atomic_file *f, const char *fmt, ...) {
  char extra[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(extra, sizeof extra, fmt, ap);
  va_end(ap);
  fail_with(f, extra);
}

/* fsync the directory holding path so that the rename itself is durable;
 * best effort (some file systems refuse to fsync directories). */
static void fsync_parent(const char *path) {
  char dir[PATH_MAX];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) return;
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

void atomic_commit(atomic_file *f) {
  if (!f->err && !f->fp) set_failure(f, 0, "commit after commit or abort (a bug)");
  if (f->fp) {
    if (!f->err && fflush(f->fp) != 0) io_failure(f, errno, "flushing the temporary file");
    /* EINVAL/EROFS: a file that does not support synchronisation */
    if (!f->err && fsync(fileno(f->fp)) != 0 && errno != EINVAL && errno != EROFS)
      io_failure(f, errno, "fsyncing the temporary file");
    int rc = fclose(f->fp);
    f->fp = NULL;
    if (rc != 0) io_failure(f, errno, "closing the temporary file");
  }
  if (!f->err && rename(f->tmp, f->path) != 0) io_failure_at(f, errno, "renaming the temporary file", " over it");
  if (f->err) fail_with(f, NULL);
  f->created = 0; /* it is PATH now */
  free(f->tmp);
  f->tmp = NULL;
  fsync_parent(f->path);
}

void atomic_write_file(const char *path, const void *data, size_t len) {
  atomic_file f;
  atomic_open(&f, path, NULL);
  atomic_write(&f, data, len);
  atomic_commit(&f);
}

char *read_text_file(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) db_fail("cannot read %s: %s", path, strerror(errno));
  struct stat st;
  size_t n = 0, cap = 4096;
  if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && (unsigned long long)st.st_size < SIZE_MAX / 2)
    cap = (size_t)st.st_size + 2; /* + NUL, + 1 to see the end of file in one pass */
  char *buf = db_malloc(cap);
  for (;;) {
    n += fread(buf + n, 1, cap - 1 - n, fp);
    if (n < cap - 1 || ferror(fp)) break;
    buf = db_realloc(buf, db_mul_size(cap, 2, "read_text_file"));
    cap *= 2;
  }
  int bad = ferror(fp), e = errno;
  fclose(fp);
  if (bad) {
    free(buf);
    db_fail("cannot read %s: %s", path, strerror(e));
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}
