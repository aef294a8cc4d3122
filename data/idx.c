/* IDX reader through zlib (gzopen reads gzip and plain files alike).
 * db_fail may longjmp (tests trap it), so every failure path first closes the
 * files and frees the buffers it owns: see idx_fail. */
#include "idx.h"
#include "../runtime/base.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_HINT "install dataset-fashion-mnist (make deps) or pass --data DIR"
#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned byte, 1 dimension */
#define IDX_MAX_SIDE 65535u

const char *idx_default_dir(void) { return "/usr/share/datasets/fashion-mnist"; }

typedef struct {
  gzFile gz[2];         /* 0: images, 1: labels */
  char path[2][4096];
  float *images;
  uint8_t *labels, *pixels;
} idx_ctx;

static void idx_cleanup(idx_ctx *c) {
  for (int i = 0; i < 2; i++)
    if (c->gz[i]) { gzclose(c->gz[i]); c->gz[i] = NULL; }
  free(c->images); c->images = NULL;
  free(c->labels); c->labels = NULL;
  free(c->pixels); c->pixels = NULL;
}

/* Format first (the message may quote gzerror or paths), then clean up, then fail. */
static _Noreturn __attribute__((format(printf, 2, 3))) void idx_fail(idx_ctx *c, const char *fmt, ...) {
  char msg[1800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  idx_cleanup(c);
  db_fail("%s", msg);
}

static int is_regular(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Open DIR/BASE.gz, else DIR/BASE, into slot `which`. */
static void idx_open(idx_ctx *c, int which, const char *dir, const char *base) {
  char gzname[4096], plain[4096];
  if (snprintf(gzname, sizeof gzname, "%s/%s.gz", dir, base) >= (int)sizeof gzname ||
      snprintf(plain, sizeof plain, "%s/%s", dir, base) >= (int)sizeof plain)
    idx_fail(c, "dataset path too long: %s/%s", dir, base);
  const char *p = is_regular(gzname) ? gzname : is_regular(plain) ? plain : NULL;
  if (!p) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
      idx_fail(c, "dataset directory %s not found (looking for %s): " IDX_HINT, dir, gzname);
    idx_fail(c, "dataset file %s not found (nor %s): " IDX_HINT, gzname, plain);
  }
  strcpy(c->path[which], p);
  errno = 0;
  c->gz[which] = gzopen(p, "rb");
  if (!c->gz[which])
    idx_fail(c, "%s: cannot open: %s", p, errno ? strerror(errno) : "zlib out of memory");
  gzbuffer(c->gz[which], 1 << 17);
}

/* Read up to len bytes; returns the count (short only at end of data). A zlib
 * error (corrupt stream) fails; a cut-off gzip stream reads as a short count,
 * and *zmsg says so. */
static size_t idx_read(idx_ctx *c, int which, void *buf, size_t len, const char **zmsg) {
  size_t got = 0;
  *zmsg = NULL;
  while (got < len) {
    size_t want = len - got;
    unsigned chunk = want > (1u << 30) ? 1u << 30 : (unsigned)want;
    int r = gzread(c->gz[which], (char *)buf + got, chunk);
    int zerr = Z_OK;
    const char *m = gzerror(c->gz[which], &zerr);
    if (r < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
      idx_fail(c, "%s: read error: %s (file corrupt?)", c->path[which], zerr == Z_ERRNO ? strerror(errno) : m);
    if (zerr == Z_BUF_ERROR) *zmsg = m; /* "unexpected end of file" */
    if (r == 0) break;
    got += (size_t)r;
  }
  return got;
}

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void idx_read_header(idx_ctx *c, int which, uint32_t magic, int ndims, uint32_t *dims) {
  unsigned char h[16];
  const char *zm;
  size_t want = 4 + 4 * (size_t)ndims;
  size_t got = idx_read(c, which, h, 4, &zm);
  if (got < 4)
    idx_fail(c, "%s: truncated: %zu bytes, too short for an IDX header%s%s", c->path[which], got,
             zm ? "; zlib: " : "", zm ? zm : "");
  uint32_t m = be32(h);
  if (m != magic)
    idx_fail(c, "%s: bad magic 0x%08x, expected 0x%08x (IDX %s)%s", c->path[which], m, magic,
             which == 0 ? "images: unsigned bytes, 3 dimensions" : "labels: unsigned bytes, 1 dimension",
             (m == IDX_MAGIC_IMAGES || m == IDX_MAGIC_LABELS) ? "; images and labels files swapped?" : "");
  got = idx_read(c, which, h + 4, want - 4, &zm);
  if (got < want - 4)
    idx_fail(c, "%s: truncated: header needs %zu bytes, file has %zu%s%s", c->path[which], want, got + 4,
             zm ? "; zlib: " : "", zm ? zm : "");
  for (int i = 0; i < ndims; i++) dims[i] = be32(h + 4 + 4 * i);
}

/* Fail unless exactly `len` more bytes follow and the file then ends. */
static void idx_check_len(idx_ctx *c, int which, size_t len, size_t got, size_t header, const char *zm) {
  if (got < len)
    idx_fail(c, "%s: truncated: header promises %zu data bytes, file has %zu%s%s", c->path[which], len, got,
             zm ? "; zlib: " : "", zm ? zm : "");
  unsigned char extra[64];
  size_t more = idx_read(c, which, extra, sizeof extra, &zm);
  if (more)
    idx_fail(c, "%s: unexpected data after the %zu bytes the header promises (header wrong?)", c->path[which],
             header + len);
}

#define IDX_CHUNK ((size_t)1 << 16)
#define IDX_FIRST_ALLOC ((size_t)1 << 20) /* elements */

/* Read up to `total` data bytes of slot `which` (0: pixels, stored into
 * c->pixels as read and into c->images as idx_pixel_float(v) = v/127.5 - 1;
 * 1: labels, into c->labels) in chunks, growing the
 * buffer geometrically with what has really been read: it never exceeds twice
 * the data the file holds (nor `total`), whatever the header promised. Returns
 * the count read; short only at the end of the data (*zmsg as for idx_read). */
static size_t idx_read_data(idx_ctx *c, int which, size_t total, const char **zmsg) {
  unsigned char buf[1 << 16];
  size_t done = 0, cap = 0;
  *zmsg = NULL;
  while (done < total) {
    size_t want = total - done < IDX_CHUNK ? total - done : IDX_CHUNK;
    size_t got = idx_read(c, which, buf, want, zmsg);
    if (got && done + got > cap) {
      size_t ncap = cap ? 2 * cap : IDX_FIRST_ALLOC;
      if (ncap > total) ncap = total;
      if (ncap < done + got) ncap = done + got;
      if (which == 0) {
        c->images = db_realloc(c->images, ncap * sizeof *c->images);
        c->pixels = db_realloc(c->pixels, ncap);
      } else c->labels = db_realloc(c->labels, ncap);
      cap = ncap;
    }
    if (which == 0) {
      memcpy(c->pixels + done, buf, got);
      for (size_t i = 0; i < got; i++) c->images[done + i] = idx_pixel_float(buf[i]);
    } else memcpy(c->labels + done, buf, got);
    done += got;
    if (got < want) break;
  }
  return done;
}

idx_dataset idx_load(const char *dir, const char *split) {
  idx_ctx c;
  memset(&c, 0, sizeof c);
  if (!dir || !*dir) dir = idx_default_dir();
  const char *prefix = NULL;
  if (split && !strcmp(split, "train")) prefix = "train";
  else if (split && (!strcmp(split, "test") || !strcmp(split, "t10k"))) prefix = "t10k";
  else db_fail("idx_load: unknown split '%s' (expected train or test)", split ? split : "(null)");

  char base[64];
  snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
  idx_open(&c, 0, dir, base);
  snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
  idx_open(&c, 1, dir, base);

  uint32_t d[3], nl;
  idx_read_header(&c, 0, IDX_MAGIC_IMAGES, 3, d);
  if (d[0] == 0 || d[1] == 0 || d[2] == 0)
    idx_fail(&c, "%s: zero-sized dimensions %u x %u x %u", c.path[0], d[0], d[1], d[2]);
  if (d[0] > INT32_MAX || d[1] > IDX_MAX_SIDE || d[2] > IDX_MAX_SIDE)
    idx_fail(&c, "%s: implausible dimensions %u x %u x %u (header corrupt?)", c.path[0], d[0], d[1], d[2]);
  idx_read_header(&c, 1, IDX_MAGIC_LABELS, 1, &nl);
  if (nl == 0) idx_fail(&c, "%s: label count is 0", c.path[1]);
  if (nl != d[0])
    idx_fail(&c, "label/image count mismatch: %s has %u images but %s has %u labels", c.path[0], d[0],
             c.path[1], nl);

  uint64_t total = (uint64_t)d[0] * d[1] * d[2]; /* < 2^63: no overflow */
  if (total > SIZE_MAX / sizeof(float))
    idx_fail(&c, "%s: %u x %u x %u images do not fit in memory", c.path[0], d[0], d[1], d[2]);
  /* nothing is allocated from the header's promise: the buffers grow with the
   * data actually read, and a short file fails below as truncated */
  const char *zm = NULL;
  size_t done = idx_read_data(&c, 0, (size_t)total, &zm);
  idx_check_len(&c, 0, (size_t)total, done, 16, zm);
  size_t got = idx_read_data(&c, 1, nl, &zm);
  idx_check_len(&c, 1, nl, got, 8, zm);

  int maxl = 0;
  for (uint32_t i = 0; i < nl; i++)
    if (c.labels[i] > maxl) maxl = c.labels[i];

  gzclose(c.gz[0]);
  gzclose(c.gz[1]);
  idx_dataset ds = {.n = (int)d[0], .rows = (int)d[1], .cols = (int)d[2],
                    .images = c.images, .labels = c.labels, .n_classes = maxl + 1, .pixels = c.pixels};
  return ds;
}

void idx_free(idx_dataset *d) {
  if (!d) return;
  free(d->images);
  free(d->labels);
  free(d->pixels);
  memset(d, 0, sizeof *d);
}

void idx_pixels_from_images(idx_dataset *d) {
  size_t n = db_mul_size((size_t)d->n * (size_t)d->rows, (size_t)d->cols, "dataset pixels");
  free(d->pixels);
  d->pixels = db_malloc(n);
  for (size_t i = 0; i < n; i++) {
    double v = round(((double)d->images[i] + 1.0) * 127.5);
    uint8_t b = (uint8_t)(v > 255 ? 255 : v >= 0 ? v : 0); /* NaN -> 0 */
    d->pixels[i] = b;
    d->images[i] = idx_pixel_float(b);
  }
}
