/* Byte corpora: the KJV export and split, user text files with their checks. */
#include "text.h"
#include "file_io.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KJV_RANGE "Gen1:1-Rev22:21"
#define KJV_VERSES 31102
/* sanity range of the export's size (4 137 915 bytes with the bible-kjv of Debian 12) */
#define KJV_MIN_BYTES 4000000u
#define KJV_MAX_BYTES 4300000u

int text_kjv_is_heldout(int book) { return book >= 1 && book % TEXT_KJV_HELDOUT_EVERY == 0; }

void text_corpus_free(text_corpus *c) {
  free(c->train);
  free(c->heldout);
  memset(c, 0, sizeof *c);
}

void text_byte_freq(const unsigned char *s, size_t n, double freq[256]) {
  if (n == 0) db_fail("text_byte_freq: empty text");
  size_t count[256] = {0};
  for (size_t i = 0; i < n; i++) count[s[i]]++;
  for (int b = 0; b < 256; b++) freq[b] = (double)count[b] / (double)n;
}

/* ---------------------------------------------------------------- the bible program */
/* The `bible` executable on PATH (/usr/bin:/bin if PATH is unset), or fail. */
static void find_bible(char *out, size_t n) {
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/bin:/bin";
  const char *p = path;
  while (1) {
    const char *e = strchr(p, ':');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len > 0 && len + 7 < n) {
      snprintf(out, n, "%.*s/bible", (int)len, p);
      struct stat st;
      if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0) return;
    }
    if (!e) break;
    p = e + 1;
  }
  db_fail("the default text corpus needs the program `bible` (Debian package bible-kjv, with its data in "
          "bible-kjv-text), not found on PATH: install it with `make deps` (or sudo apt-get install bible-kjv), "
          "or give a text file with --text FILE");
}

typedef struct { unsigned char *p; size_t n, cap; } buf_t;
static void buf_put(buf_t *b, const void *s, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 4096;
    b->p = db_realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

/* A reference "Ge1:1": book letters/digits then chapter ':' verse. Returns the
 * book abbreviation's length, 0 if ref is not of that form. */
static size_t ref_book_len(const char *ref, size_t n) {
  size_t i = n;
  while (i > 0 && ref[i - 1] >= '0' && ref[i - 1] <= '9') i--;
  if (i == n || i == 0 || ref[i - 1] != ':') return 0;
  i--;
  size_t j = i;
  while (j > 0 && ref[j - 1] >= '0' && ref[j - 1] <= '9') j--;
  if (j == i || j == 0) return 0;
  return j;
}

unsigned char *text_kjv_export(size_t *len) {
  char exe[1024], cmd[1200];
  find_bible(exe, sizeof exe);
  snprintf(cmd, sizeof cmd, "'%s' -f %s </dev/null", exe, KJV_RANGE);
  FILE *f = popen(cmd, "r");
  if (!f) db_fail("cannot run %s: %s", exe, strerror(errno));
  buf_t out = {0};
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  char book[32] = "";
  int books = 0, verses = 0, bad = 0;
  long bad_line = 0;
  while ((got = getline(&line, &cap, f)) > 0) {
    size_t n = (size_t)got;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    const char *sp = memchr(line, ' ', n);
    size_t rl = sp ? (size_t)(sp - line) : 0, bl = sp ? ref_book_len(line, rl) : 0;
    if (!bl || bl >= sizeof book || rl + 1 >= n) {
      if (!bad) bad_line = verses + books + 1;
      bad++;
      continue;
    }
    if (strlen(book) != bl || memcmp(book, line, bl)) {
      if (books) buf_put(&out, "\n", 1);
      memcpy(book, line, bl);
      book[bl] = 0;
      books++;
    }
    buf_put(&out, line + rl + 1, n - rl - 1);
    buf_put(&out, "\n", 1);
    verses++;
  }
  free(line);
  int st = pclose(f);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || bad || books != TEXT_KJV_BOOKS || verses != KJV_VERSES ||
      out.n < KJV_MIN_BYTES || out.n > KJV_MAX_BYTES) {
    free(out.p);
    db_fail("`%s -f %s` did not print the King James Bible as expected (exit status %d, %d books, %d verses, "
            "%d lines without a reference, the first near line %ld; want %d books, %d verses): is bible-kjv-text "
            "installed (`make deps`)?",
            exe, KJV_RANGE, st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), books, verses,
            bad, bad_line, TEXT_KJV_BOOKS, KJV_VERSES);
  }
  *len = out.n;
  return out.p;
}

/* ---------------------------------------------------------------- cache and split */
/* Splits the kjv.txt format into books; returns 1 and fills c if it has the
 * expected 66 books and size, else 0 (c untouched). */
static int kjv_split(const unsigned char *s, size_t n, text_corpus *c) {
  if (n < KJV_MIN_BYTES || n > KJV_MAX_BYTES || s[n - 1] != '\n') return 0;
  size_t start[TEXT_KJV_BOOKS + 1], end[TEXT_KJV_BOOKS + 1];
  int books = 0;
  size_t b0 = 0;
  for (size_t i = 0; i + 1 <= n; i++) {
    int last = i + 1 == n;
    if (last || (s[i] == '\n' && s[i + 1] == '\n')) {
      if (books >= TEXT_KJV_BOOKS) return 0;
      start[books] = b0;
      end[books] = i + 1; /* includes the verse's '\n' */
      if (end[books] <= start[books] + 1) return 0;
      books++;
      b0 = i + 2;
      if (!last) i++;
    }
  }
  if (books != TEXT_KJV_BOOKS) return 0;
  size_t nt = 0, nh = 0;
  for (int b = 0; b < books; b++) *(text_kjv_is_heldout(b + 1) ? &nh : &nt) += end[b] - start[b];
  c->train = db_malloc(nt);
  c->heldout = db_malloc(nh);
  c->n_train = c->n_heldout = 0;
  for (int b = 0; b < books; b++) {
    size_t k = end[b] - start[b];
    if (text_kjv_is_heldout(b + 1)) { memcpy(c->heldout + c->n_heldout, s + start[b], k); c->n_heldout += k; }
    else { memcpy(c->train + c->n_train, s + start[b], k); c->n_train += k; }
  }
  snprintf(c->source, sizeof c->source, "kjv");
  return 1;
}

void text_corpus_kjv(text_corpus *c) {
  memset(c, 0, sizeof *c);
  char path[1100];
  const char *d = db_cache_dir();
  if (d) {
    snprintf(path, sizeof path, "%s/kjv.txt", d);
    FILE *f = fopen(path, "rb");
    if (f) {
      fclose(f);
      size_t n = 0;
      char *s = read_text_file(path, &n);
      int ok = kjv_split((unsigned char *)s, n, c);
      free(s);
      if (ok) return;
      fprintf(stderr, "dblocks: %s is not a complete KJV export (%zu bytes); exporting it again\n", path, n);
    }
  }
  size_t n = 0;
  unsigned char *s = text_kjv_export(&n);
  if (!kjv_split(s, n, c)) {
    free(s);
    db_fail("the KJV export from `bible` does not split into %d books", TEXT_KJV_BOOKS);
  }
  if (d) { /* best effort: a cache that cannot be written only costs a re-export next time */
    db_mkdir_p(d);
    jmp_buf trap, *prev = db_trap_errors(&trap);
    if (setjmp(trap) == 0) atomic_write_file(path, s, n);
    else fprintf(stderr, "dblocks: warning: cannot cache the KJV text: %s\n", db_last_error());
    db_trap_errors(prev);
  }
  free(s);
}

/* ---------------------------------------------------------------- user files */
static size_t count_control(const unsigned char *s, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if ((s[i] < 32 && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') || s[i] == 127) k++;
  return k;
}

/* The file's bytes, checked: present, readable, not empty, not binary, >= min bytes. */
static unsigned char *read_checked(const char *path, const char *what, size_t min, size_t *len) {
  struct stat st;
  if (stat(path, &st) != 0) db_fail("cannot read %s %s: %s", what, path, strerror(errno));
  if (!S_ISREG(st.st_mode)) db_fail("cannot read %s %s: not a regular file", what, path);
  size_t n = 0;
  unsigned char *s = (unsigned char *)read_text_file(path, &n);
  if (n == 0) { free(s); db_fail("%s %s is empty", what, path); }
  size_t k = count_control(s, n);
  if ((double)k > (double)n * TEXT_MAX_CONTROL_PERCENT / 100.0) {
    free(s);
    db_fail("%s %s looks binary, not text: %zu of its %zu bytes (%.1f %%) are NUL or control characters other than "
            "\\n \\r \\t (at most %d %% allowed)",
            what, path, k, n, 100.0 * (double)k / (double)n, TEXT_MAX_CONTROL_PERCENT);
  }
  if (n < min) {
    free(s);
    db_fail("%s %s is too short: %zu bytes, the minimum is %zu", what, path, n, min);
  }
  *len = n;
  return s;
}

void text_corpus_file(text_corpus *c, const char *path, const char *heldout_path, double heldout_fraction) {
  memset(c, 0, sizeof *c);
  if (!path || !*path) db_fail("text corpus: no file given");
  int w;
  if (heldout_path && *heldout_path) w = snprintf(c->source, sizeof c->source, "%s; held-out %s", path, heldout_path);
  else {
    if (!(heldout_fraction > 0 && heldout_fraction <= 0.5))
      db_fail("text file %s: held-out fraction %g is outside (0, 0.5]", path, heldout_fraction);
    w = snprintf(c->source, sizeof c->source, "%s; held-out: last %g (line cut)", path, heldout_fraction);
  }
  if (w < 0 || (size_t)w >= sizeof c->source)
    db_fail("text file %s: the path(s) are too long for the manifest (%zu bytes at most)", path, sizeof c->source - 40);
  size_t n = 0;
  unsigned char *s = read_checked(path, "text file", TEXT_MIN_BYTES, &n);
  if (heldout_path && *heldout_path) {
    size_t nh = 0;
    jmp_buf trap, *prev = db_trap_errors(&trap);
    if (setjmp(trap) != 0) { db_trap_errors(prev); free(s); db_fail_again(); }
    unsigned char *h = read_checked(heldout_path, "held-out text file", TEXT_MIN_HELDOUT_BYTES, &nh);
    db_trap_errors(prev);
    c->train = s;
    c->n_train = n;
    c->heldout = h;
    c->n_heldout = nh;
    return;
  }
  size_t p0 = n - (size_t)((double)n * heldout_fraction + 0.5), cut = p0;
  while (cut < n && s[cut - 1] != '\n') cut++;
  if (cut == n) { /* no line starts after p0: the last line start before it */
    cut = p0;
    while (cut > 0 && s[cut - 1] != '\n') cut--;
  }
  size_t nh = n - cut;
  if (nh < TEXT_MIN_HELDOUT_BYTES) {
    free(s);
    db_fail("text file %s: held-out text too short: the last %g of it, cut at a line boundary, is %zu bytes, the "
            "minimum is %d (give a held-out file or a larger fraction)",
            path, heldout_fraction, nh, TEXT_MIN_HELDOUT_BYTES);
  }
  if (cut < TEXT_MIN_BYTES) {
    free(s);
    db_fail("text file %s: training text too short after the held-out split: %zu bytes, the minimum is %d", path, cut,
            TEXT_MIN_BYTES);
  }
  c->heldout = db_malloc(nh);
  memcpy(c->heldout, s + cut, nh);
  c->n_heldout = nh;
  c->train = s; /* the first `cut` bytes; the rest is unused */
  c->n_train = cut;
}
