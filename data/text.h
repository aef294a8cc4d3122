/* Byte corpora for the language model (docs/lm_data.md):
 * tokens are bytes (V = 256). Pure C, no OpenCL.
 *
 * The default corpus is the King James Bible of Debian's bible-kjv (the
 * `bible` program) / bible-kjv-text (its data, /usr/lib/bible.data). It is
 * exported once with `bible -f Gen1:1-Rev22:21` to plain text, one verse per
 * line with its reference ("Ge1:1 ") stripped, books in canonical order and
 * separated by one empty line, into <cache dir>/kjv.txt (written atomically;
 * later calls read that file). The cache dir is the kernel cache's:
 * $DBLOCKS_CACHE_DIR, else $XDG_CACHE_HOME/dblocks, else $HOME/.cache/dblocks;
 * with none (or DBLOCKS_CACHE_DIR=off) the text is exported in memory each time.
 * It is split BY BOOK: held-out = the books whose 1-based canonical number is a
 * multiple of 11 (1 Kings, Song of Solomon, Micah, Acts, 2 Timothy,
 * Revelation: 358 095 of 4 137 850 bytes, 8.65 %), train = the other 60 books.
 * Both texts are the books' verse lines concatenated (no empty lines).
 *
 * Files given by the user are checked (db_fail naming the file): missing or
 * unreadable, empty, shorter than TEXT_MIN_BYTES, binary (more than
 * TEXT_MAX_CONTROL_PERCENT % of the bytes NUL or control characters other than
 * \n \r \t), a held-out text shorter than TEXT_MIN_HELDOUT_BYTES, a training
 * part shorter than TEXT_MIN_BYTES after the split. */
#ifndef DB_DATA_TEXT_H
#define DB_DATA_TEXT_H
#include "../runtime/base.h"
#include <stddef.h>

#define TEXT_MIN_BYTES 1024         /* a text file (and the training part) */
#define TEXT_MIN_HELDOUT_BYTES 256  /* the held-out text */
#define TEXT_MAX_CONTROL_PERCENT 1  /* NUL / control bytes (not \n \r \t) allowed, in % */
#define TEXT_KJV_BOOKS 66
#define TEXT_KJV_HELDOUT_EVERY 11   /* book k (1-based) is held out when k % 11 == 0 */

typedef struct {
  unsigned char *train, *heldout;
  size_t n_train, n_heldout;
  char source[512]; /* "kjv" or the file path(s): goes into the run manifest */
} text_corpus;

/* The default corpus: the King James Bible from Debian's bible-kjv, exported once
 * to plain text with the `bible` program into <cache dir>/kjv.txt (atomically;
 * later calls read that file), split BY BOOK into train and held-out text, deterministically.
 * db_fail naming the package (bible-kjv, installed by `make deps`) if `bible` is not on PATH. */
void text_corpus_kjv(text_corpus *c);
/* Any text file; held-out text from heldout_path, or else the last `heldout_fraction`
 * (in (0, 0.5]) of the file (cut at a line boundary: the held-out text starts at the
 * first line start at or after that point, or, if there is none, the last one before it).
 * source: "PATH; held-out HELDOUT_PATH" or "PATH; held-out: last F (line cut)". */
void text_corpus_file(text_corpus *c, const char *path, const char *heldout_path, double heldout_fraction);
void text_corpus_free(text_corpus *c);
/* Byte frequencies of s (sum 1). n must be > 0. */
void text_byte_freq(const unsigned char *s, size_t n, double freq[256]);

/* The KJV book of a 1-based canonical number (1..66) is held out. */
int text_kjv_is_heldout(int book);
/* Exports the KJV with `bible` into memory (the kjv.txt format above; no
 * cache). *len: its length. free() it. For tests and tools. */
unsigned char *text_kjv_export(size_t *len);

#endif
