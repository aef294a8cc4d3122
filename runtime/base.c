/* The OpenCL-free base (base.h): the one exit path for errors, checked
 * allocation and the monotonic clock. */
#include "base.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char last_error[2048];
static jmp_buf *trap;
static char error_prefix[64];
static void (*exit_hook)(int);

void db_set_error_prefix(const char *prefix) { snprintf(error_prefix, sizeof error_prefix, "%s", prefix ? prefix : ""); }
void db_set_exit_hook(void (*hook)(int code)) { exit_hook = hook; }

static _Noreturn void fail_exit(void) {
  fprintf(stderr, "dblocks: error: %s%s\n", error_prefix, last_error);
  fflush(stderr);
  if (exit_hook) exit_hook(1);
  exit(1);
}

jmp_buf *db_trap_errors(jmp_buf *t) {
  jmp_buf *previous = trap;
  trap = t;
  return previous;
}
const char *db_last_error(void) { return last_error; }

_Noreturn void db_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  if (trap) longjmp(*trap, 1);
  fail_exit();
}

_Noreturn void db_fail_again(void) {
  if (trap) longjmp(*trap, 1);
  fail_exit();
}

/* ---------------------------------------------------------------- allocation */
static _Noreturn void out_of_memory(size_t bytes) {
  db_fail("out of host memory: could not allocate %zu bytes (%.1f MiB)", bytes, bytes / 1048576.0);
}

void *db_malloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) out_of_memory(bytes);
  return p;
}

void *db_calloc(size_t count, size_t size) {
  size_t bytes = db_mul_size(count, size, "calloc");
  void *p = calloc(bytes ? count : 1, bytes ? size : 1);
  if (!p) out_of_memory(bytes);
  return p;
}

void *db_realloc(void *p, size_t bytes) {
  void *q = realloc(p, bytes ? bytes : 1);
  if (!q) out_of_memory(bytes);
  return q;
}

char *db_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(db_malloc(n), s, n);
}

size_t db_mul_size(size_t count, size_t size, const char *what) {
  if (size && count > (size_t)-1 / size) db_fail("%s: %zu x %zu bytes overflows the address space", what, count, size);
  return count * size;
}

/* ---------------------------------------------------------------- time */
double db_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *db_cache_dir(void) {
  static char dir[1024];
  const char *env = getenv("DBLOCKS_CACHE_DIR");
  if (env && (!strcmp(env, "off") || !strcmp(env, "0") || !*env)) return NULL;
  if (env) snprintf(dir, sizeof dir, "%s", env);
  else if (getenv("XDG_CACHE_HOME")) snprintf(dir, sizeof dir, "%s/dblocks", getenv("XDG_CACHE_HOME"));
  else if (getenv("HOME")) snprintf(dir, sizeof dir, "%s/.cache/dblocks", getenv("HOME"));
  else return NULL;
  return dir;
}

int db_mkdir_p(const char *path) {
  char tmp[1024];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s", path) >= sizeof tmp) return -1;
  struct stat st;
  for (char *p = tmp + 1;; p++) {
    char c = *p;
    if (c != '/' && c) continue;
    *p = 0;
    if (mkdir(tmp, 0755) != 0 && (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))) return -1;
    *p = c;
    if (!c) return 0;
  }
}
