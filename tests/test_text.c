/* Byte corpora (data/text.c): the KJV export from Debian's bible-kjv (a
 * declared dependency: absent means FAIL) -- deterministic bytes, its size, the
 * by-book split of docs/lm_data.md, no verse references left, the kjv.txt cache
 * (written, re-read, repaired when corrupt, skipped when off), the missing-program
 * error; user files: every error case on a temporary file and the fraction split. */
#include "harness.h"
#include "../data/file_io.h"
#include "../data/text.h"
#include <regex.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tmpdir; /* th_tmpdir_make */


static void put_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) { perror(path); return; }
  if (n) fwrite(data, 1, n, f);
  fclose(f);
}

static int contains(const unsigned char *s, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (s[i] == (unsigned char)needle[0] && !memcmp(s + i, needle, k)) return 1;
  return 0;
}

/* Lines that begin with a verse reference such as "Ge1:1 " or "1Sm3:4 ", and empty lines. */
static void scan_lines(const unsigned char *s, size_t n, int *refs, int *empty, int *lines) {
  regex_t re;
  regcomp(&re, "^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ ", REG_EXTENDED | REG_NOSUB);
  *refs = *empty = *lines = 0;
  char line[4096];
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != '\n') j++;
    size_t k = j - i < sizeof line - 1 ? j - i : sizeof line - 1;
    memcpy(line, s + i, k);
    line[k] = 0;
    if (k == 0) (*empty)++;
    if (regexec(&re, line, 0, NULL, 0) == 0) (*refs)++;
    (*lines)++;
    i = j + 1;
  }
  regfree(&re);
}

/* ---------------------------------------------------------------- KJV */
#define KJV_TXT_BYTES 4137915u /* the kjv.txt export: 4 137 850 text bytes + 65 book separators */
#define KJV_TEXT_BYTES 4137850u
#define KJV_HELDOUT_BYTES 358095u

static void test_kjv(void) {
  char *old_cache = getenv("DBLOCKS_CACHE_DIR") ? db_strdup(getenv("DBLOCKS_CACHE_DIR")) : NULL;
  char *old_path = getenv("PATH") ? db_strdup(getenv("PATH")) : NULL;
  size_t n1 = 0, n2 = 0;
  unsigned char *volatile e1 = NULL, *volatile e2 = NULL;
  jmp_buf trap;
  db_trap_errors(&trap);
  if (setjmp(trap) == 0) {
    e1 = text_kjv_export(&n1);
    e2 = text_kjv_export(&n2);
  }
  db_trap_errors(NULL);
  if (!e1 || !e2) {
    th_check(0, "text: KJV export with `bible` (Debian bible-kjv)", "%s", db_last_error());
    free(e1);
    free(e2);
    free(old_cache);
    free(old_path);
    return;
  }
  th_check(n1 == n2 && !memcmp(e1, e2, n1), "text: KJV export is deterministic (same bytes twice)", "%zu vs %zu bytes",
           n1, n2);
  th_check(n1 == KJV_TXT_BYTES, "text: KJV export is 4 137 915 bytes (66 books, 31 102 verses)", "%zu bytes", n1);
  int refs, empty, lines;
  scan_lines(e1, n1, &refs, &empty, &lines);
  th_check(refs == 0 && empty == 65 && lines == 31102 + 65, "text: KJV export: no verse references left, one verse a "
           "line, books separated by one empty line", "%d lines with a reference, %d empty lines, %d lines", refs, empty,
           lines);
  int ascii = 1;
  for (size_t i = 0; i < n1; i++) ascii &= e1[i] == '\n' || (e1[i] >= 32 && e1[i] < 127);
  th_check(ascii && !memcmp(e1, "In the beginning God created the heaven and the earth.\n", 55),
           "text: KJV export: printable ASCII, starts at Genesis 1:1", "starts \"%.40s\"", (const char *)e1);

  /* the cache: written on the first call, read on the second */
  setenv("DBLOCKS_CACHE_DIR", th_tpath("cache1"), 1);
  text_corpus c1, c2;
  text_corpus_kjv(&c1);
  size_t nc = 0;
  struct stat st;
  char *cached = stat(th_tpath("cache1/kjv.txt"), &st) == 0 ? read_text_file(th_tpath("cache1/kjv.txt"), &nc) : NULL;
  th_check(cached && nc == n1 && !memcmp(cached, e1, n1), "text: KJV cached as <cache dir>/kjv.txt, equal to the export",
           "%s, %zu bytes", cached ? "present" : "missing", nc);
  text_corpus_kjv(&c2);
  th_check(c2.n_train == c1.n_train && c2.n_heldout == c1.n_heldout && !memcmp(c1.train, c2.train, c1.n_train) &&
               !memcmp(c1.heldout, c2.heldout, c1.n_heldout) && !strcmp(c1.source, "kjv"),
           "text: KJV corpus read back from the cache is the same, source \"kjv\"", "train %zu/%zu, held-out %zu/%zu, "
           "source %s", c1.n_train, c2.n_train, c1.n_heldout, c2.n_heldout, c1.source);
  double share = (double)c1.n_heldout / (double)(c1.n_train + c1.n_heldout);
  th_check(c1.n_train + c1.n_heldout == KJV_TEXT_BYTES && c1.n_heldout == KJV_HELDOUT_BYTES && share > 0.05 &&
               share < 0.10,
           "text: KJV split: 3 779 755 train + 358 095 held-out bytes (8.65 %)", "train %zu, held-out %zu (%.2f %%)",
           c1.n_train, c1.n_heldout, 100 * share);
  /* books 11, 22, 33, 44, 55, 66 held out (1 Kings, Song of Solomon, Micah, Acts, 2 Timothy, Revelation) */
  const char *held[] = {"Now king David was old and stricken in years",        /* 1 Kings 1:1 */
                        "Let him kiss me with the kisses of his mouth",        /* Song 1:2 */
                        "The word of the LORD that came to Micah the Morasthite", /* Micah 1:1 */
                        "The former treatise have I made, O Theophilus",       /* Acts 1:1 */
                        "Paul, an apostle of Jesus Christ by the will of God, according to the promise of life",
                        "He which testifieth these things saith, Surely I come quickly."}; /* Revelation 22:20 */
  const char *kept[] = {"In the beginning God created the heaven and the earth.", /* Genesis */
                        "Jesus wept.",                                           /* John 11:35 */
                        "So king Solomon was king over all Israel.",             /* 1 Kings 4:1 ... */
                        "Now the serpent was more subtil",                       /* Genesis 3:1 */
                        "The LORD is my shepherd; I shall not want.",            /* Psalm 23:1 */
                        "The Revelation of Jesus Christ"};                       /* Revelation 1:1 */
  int held_ok = 1, kept_ok = 1;
  char which[200] = "";
  for (int i = 0; i < 6; i++) {
    if (!contains(c1.heldout, c1.n_heldout, held[i]) || contains(c1.train, c1.n_train, held[i])) {
      held_ok = 0;
      snprintf(which, sizeof which, "held: %.40s", held[i]);
    }
  }
  for (int i = 0; i < 6; i++) {
    int in_train = contains(c1.train, c1.n_train, kept[i]), in_held = contains(c1.heldout, c1.n_heldout, kept[i]);
    int want_train = i != 2 && i != 5; /* 1 Kings 4:1 and Revelation 1:1 are in held-out books */
    if (in_train != want_train || in_held == want_train) {
      kept_ok = 0;
      snprintf(which, sizeof which, "line %d: %.40s (train %d, held-out %d)", i, kept[i], in_train, in_held);
    }
  }
  th_check(held_ok && kept_ok, "text: KJV split by book: every 11th book (1Ki, SSol, Mic, Acts, 2Tim, Rev) held out",
           "%s", which);
  th_check(!memcmp(c1.heldout, "Now king David was old and stricken in years", 44) &&
               !memcmp(c1.train, "In the beginning God", 20) &&
               c1.train[c1.n_train - 1] == '\n' && c1.heldout[c1.n_heldout - 1] == '\n',
           "text: KJV split: held-out starts at 1 Kings 1:1, train at Genesis 1:1, both end with a newline", "%.30s / %.30s",
           (const char *)c1.heldout, (const char *)c1.train);
  int r2, e2n, l2;
  scan_lines(c1.train, c1.n_train, &refs, &empty, &lines);
  scan_lines(c1.heldout, c1.n_heldout, &r2, &e2n, &l2);
  th_check(refs + r2 == 0 && empty + e2n == 0 && lines + l2 == 31102,
           "text: KJV train and held-out: 31 102 verse lines together, no references, no empty lines",
           "%d + %d lines, %d refs, %d empty", lines, l2, refs + r2, empty + e2n);

  /* a corrupt cache is replaced by a fresh export */
  put_file(th_tpath("cache1/kjv.txt"), "In the beginning\n", 17);
  text_corpus c3;
  text_corpus_kjv(&c3);
  free(cached);
  cached = read_text_file(th_tpath("cache1/kjv.txt"), &nc);
  th_check(c3.n_train == c1.n_train && !memcmp(c3.train, c1.train, c1.n_train) && nc == n1,
           "text: a truncated kjv.txt in the cache is exported again", "train %zu, cache %zu bytes", c3.n_train, nc);
  text_corpus_free(&c3);

  /* no cache: exported in memory, nothing written */
  setenv("DBLOCKS_CACHE_DIR", "off", 1);
  text_corpus_kjv(&c3);
  th_check(c3.n_heldout == c1.n_heldout && !memcmp(c3.heldout, c1.heldout, c1.n_heldout),
           "text: DBLOCKS_CACHE_DIR=off: the KJV corpus without a cache file", "held-out %zu", c3.n_heldout);
  text_corpus_free(&c3);

  /* `bible` missing: an error naming the package */
  mkdir(th_tpath("nobin"), 0755);
  setenv("DBLOCKS_CACHE_DIR", th_tpath("cache2"), 1);
  setenv("PATH", th_tpath("nobin"), 1);
  TH_EXPECT_ERROR("text: `bible` not on PATH: error names the package bible-kjv and make deps", "bible-kjv",
                  text_corpus_kjv(&c3));
  TH_EXPECT_ERROR("text: `bible` not on PATH: error says make deps", "make deps", text_kjv_export(&nc));
  if (old_path) setenv("PATH", old_path, 1);
  else unsetenv("PATH");
  if (old_cache) setenv("DBLOCKS_CACHE_DIR", old_cache, 1);
  else unsetenv("DBLOCKS_CACHE_DIR");

  double freq[256], sum = 0;
  text_byte_freq(c1.train, c1.n_train, freq);
  int distinct = 0;
  for (int b = 0; b < 256; b++) { sum += freq[b]; distinct += freq[b] > 0; }
  th_check(fabs(sum - 1) < 1e-12 && freq[' '] > 0.15 && freq[' '] < 0.25 && distinct > 60 && distinct < 80,
           "text: KJV train byte frequencies sum to 1 (space ~19 %, 60-80 distinct bytes)", "sum %.15g, space %.4f, "
           "%d distinct", sum, freq[' '], distinct);
  free(cached);
  free(e1);
  free(e2);
  free(old_cache);
  free(old_path);
  text_corpus_free(&c1);
  text_corpus_free(&c2);
}

/* ---------------------------------------------------------------- user files */
/* `lines` lines of varying length (10..69 bytes), deterministic */
static size_t make_text(char *buf, size_t cap, int lines) {
  size_t n = 0;
  for (int i = 0; i < lines && n + 80 < cap; i++) {
    int len = 10 + (i * 37) % 60;
    for (int k = 0; k < len; k++) buf[n++] = (char)('a' + (i + k) % 26);
    buf[n++] = '\n';
  }
  return n;
}

static void test_files(void) {
  static char buf[1 << 16];
  text_corpus c;
  TH_EXPECT_ERROR("text: a missing file is an error naming it", "no-such-file.txt",
                  text_corpus_file(&c, th_tpath("no-such-file.txt"), NULL, 0.1));
  TH_EXPECT_ERROR("text: a directory is an error (cannot read ... not a regular file)", "not a regular file",
                  text_corpus_file(&c, tmpdir, NULL, 0.1));
  put_file(th_tpath("empty.txt"), "", 0);
  TH_EXPECT_ERROR("text: an empty file is an error naming it", "empty.txt is empty",
                  text_corpus_file(&c, th_tpath("empty.txt"), NULL, 0.1));
  size_t n = make_text(buf, sizeof buf, 12);
  put_file(th_tpath("short.txt"), buf, n);
  TH_EXPECT_ERROR("text: a file under 1 KiB is an error naming the minimum", "the minimum is 1024",
                  text_corpus_file(&c, th_tpath("short.txt"), NULL, 0.1));
  /* binary: Philox bytes */
  for (int i = 0; i < 4096; i += 4) {
    uint32_t w[4];
    db_philox4x32(5, (uint64_t)i, w);
    memcpy(buf + i, w, 4);
  }
  put_file(th_tpath("random.bin"), buf, 4096);
  TH_EXPECT_ERROR("text: random bytes are rejected as binary", "random.bin looks binary",
                  text_corpus_file(&c, th_tpath("random.bin"), NULL, 0.1));
  /* text with 2 % NUL bytes: rejected; with 0.5 % form feeds and some UTF-8: accepted */
  n = make_text(buf, sizeof buf, 200);
  for (size_t i = 0; i < n; i += 50) buf[i] = 0;
  put_file(th_tpath("nul.txt"), buf, n);
  TH_EXPECT_ERROR("text: 2 % NUL bytes is binary (limit 1 %)", "NUL or control", text_corpus_file(&c, th_tpath("nul.txt"),
                                                                                              NULL, 0.1));
  n = make_text(buf, sizeof buf, 200);
  for (size_t i = 3; i < n; i += 200) buf[i] = '\f';
  memcpy(buf + 5, "\xc3\xa9\xe2\x80\x94", 5);
  put_file(th_tpath("ff.txt"), buf, n);
  jmp_buf trap;
  db_trap_errors(&trap);
  volatile int ok = 0;
  if (setjmp(trap) == 0) {
    text_corpus_file(&c, th_tpath("ff.txt"), NULL, 0.25);
    ok = 1;
  }
  db_trap_errors(NULL);
  th_check(ok, "text: 0.5 % form feeds and UTF-8 bytes are accepted as text", "%s", ok ? "" : db_last_error());
  if (ok) text_corpus_free(&c);

  /* the fraction split */
  n = make_text(buf, sizeof buf, 300);
  put_file(th_tpath("lines.txt"), buf, n);
  const double fr[] = {0.05, 0.1, 0.25, 0.5};
  int all = 1;
  char why[300] = "";
  for (int k = 0; k < 4; k++) {
    text_corpus_file(&c, th_tpath("lines.txt"), NULL, fr[k]);
    size_t want = (size_t)(fr[k] * (double)n + 0.5);
    int good = c.n_train + c.n_heldout == n && !memcmp(c.train, buf, c.n_train) &&
               !memcmp(c.heldout, buf + c.n_train, c.n_heldout) && c.train[c.n_train - 1] == '\n' &&
               c.n_heldout <= want && c.n_heldout + 70 > want;
    if (!good) {
      all = 0;
      snprintf(why, sizeof why, "fraction %g: train %zu + held-out %zu of %zu, want held-out <= %zu by < 70", fr[k],
               c.n_train, c.n_heldout, n, want);
    }
    text_corpus_free(&c);
  }
  th_check(all, "text: held-out = the last fraction (0.05, 0.1, 0.25, 0.5), cut forward to a line start", "%s", why);
  text_corpus_file(&c, th_tpath("lines.txt"), NULL, 0.1);
  char want_src[600];
  snprintf(want_src, sizeof want_src, "%s; held-out: last 0.1 (line cut)", th_tpath("lines.txt"));
  th_check(!strcmp(c.source, want_src), "text: source names the file and the split", "\"%s\"", c.source);
  text_corpus_free(&c);

  /* no line start after the cut point: the last one before it */
  memset(buf, 'x', 3000);
  buf[1999] = '\n';
  buf[2999] = '\n';
  put_file(th_tpath("two-lines.txt"), buf, 3000);
  text_corpus_file(&c, th_tpath("two-lines.txt"), NULL, 0.1);
  th_check(c.n_train == 2000 && c.n_heldout == 1000, "text: no line start after the cut: held-out from the last one "
           "before it", "train %zu, held-out %zu", c.n_train, c.n_heldout);
  text_corpus_free(&c);
  memset(buf, 'x', 3000);
  buf[2999] = '\n';
  put_file(th_tpath("one-line.txt"), buf, 3000);
  TH_EXPECT_ERROR("text: one long line: no split leaves enough training text", "training text too short",
                  text_corpus_file(&c, th_tpath("one-line.txt"), NULL, 0.1));
  n = make_text(buf, sizeof buf, 40);
  put_file(th_tpath("small.txt"), buf, n);
  TH_EXPECT_ERROR("text: held-out text under 256 bytes is an error naming the minimum", "held-out text too short",
                  text_corpus_file(&c, th_tpath("small.txt"), NULL, 0.05));
  TH_EXPECT_ERROR("text: held-out fraction outside (0, 0.5] is an error", "outside (0, 0.5]",
                  text_corpus_file(&c, th_tpath("lines.txt"), NULL, 0.7));
  TH_EXPECT_ERROR("text: held-out fraction 0 is an error", "outside (0, 0.5]",
                  text_corpus_file(&c, th_tpath("lines.txt"), NULL, 0));

  /* a separate held-out file */
  n = make_text(buf, sizeof buf, 30);
  put_file(th_tpath("held.txt"), buf, n);
  text_corpus_file(&c, th_tpath("lines.txt"), th_tpath("held.txt"), 0);
  snprintf(want_src, sizeof want_src, "%s; held-out %s", th_tpath("lines.txt"), th_tpath("held.txt"));
  th_check(c.n_heldout == n && !memcmp(c.heldout, buf, n) && c.n_train > 10000 && !strcmp(c.source, want_src),
           "text: a held-out file: the whole of both files, source names both", "train %zu, held-out %zu, \"%s\"",
           c.n_train, c.n_heldout, c.source);
  text_corpus_free(&c);
  put_file(th_tpath("held-short.txt"), buf, 100);
  TH_EXPECT_ERROR("text: a held-out file under 256 bytes is an error naming it", "held-short.txt is too short",
                  text_corpus_file(&c, th_tpath("lines.txt"), th_tpath("held-short.txt"), 0));
  TH_EXPECT_ERROR("text: a missing held-out file is an error naming it", "no-held.txt",
                  text_corpus_file(&c, th_tpath("lines.txt"), th_tpath("no-held.txt"), 0));
  put_file(th_tpath("held-bin.bin"), (const char *)buf + 0, 0);
  TH_EXPECT_ERROR("text: an empty held-out file is an error", "held-bin.bin is empty",
                  text_corpus_file(&c, th_tpath("lines.txt"), th_tpath("held-bin.bin"), 0));

  double freq[256];
  text_byte_freq((const unsigned char *)"aab\n", 4, freq);
  th_check(freq['a'] == 0.5 && freq['b'] == 0.25 && freq['\n'] == 0.25 && freq['c'] == 0,
           "text: byte frequencies of \"aab\\n\"", "a %g b %g nl %g", freq['a'], freq['b'], freq['\n']);
  TH_EXPECT_ERROR("text: byte frequencies of an empty text are an error", "empty", text_byte_freq(NULL, 0, freq));
}

void tests_text(void) {
  tmpdir = th_tmpdir_make("text");
  if (!tmpdir) return;
  test_kjv();
  test_files();
  th_tmpdir_remove();
}
