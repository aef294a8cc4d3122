/* .npy and PNG output through the atomic writer of file_io.h, and the .npy
 * reader. db_fail may longjmp (tests trap it), so failures first remove the
 * temporary file (atomic_fail / atomic_check) and free what they own. */
#include "image_io.h"
#include "file_io.h"
#include "../runtime/base.h"
#include <errno.h>
#include <limits.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- npy */
#define NPY_MAX_WRITE_DIMS 8

static void npy_write(const char *path, const void *data, const char *descr, int ndim, const int *shape) {
  if (ndim < 0 || ndim > NPY_MAX_WRITE_DIMS)
    db_fail("cannot write %s: ndim %d out of range 0..%d", path, ndim, NPY_MAX_WRITE_DIMS);
  if (ndim > 0 && !shape) db_fail("cannot write %s: no shape given", path);
  size_t numel = 1;
  char dict[512];
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) db_fail("cannot write %s: negative dimension %d (axis %d)", path, shape[i], i);
    if (shape[i] && numel > SIZE_MAX / 4 / (size_t)shape[i]) db_fail("cannot write %s: array too large", path);
    numel *= (size_t)shape[i];
    len += snprintf(dict + len, sizeof dict - len, ndim == 1 ? "%d," : i ? ", %d" : "%d", shape[i]);
  }
  len += snprintf(dict + len, sizeof dict - len, "), }");
  if (numel && !data) db_fail("cannot write %s: no data given", path);
  /* magic(6) + version(2) + header length(2) + dict + spaces + '\n' = multiple of 64 */
  size_t total = (10 + (size_t)len + 1 + 63) / 64 * 64;
  size_t hlen = total - 10;
  unsigned char head[10 + 512 + 64];
  memcpy(head, "\x93NUMPY\x01\x00", 8);
  put_le16(head + 8, (uint16_t)hlen);
  memcpy(head + 10, dict, (size_t)len);
  memset(head + 10 + len, ' ', hlen - (size_t)len - 1);
  head[total - 1] = '\n';

  atomic_file a;
  atomic_open(&a, path, NULL);
  atomic_write(&a, head, total);
  atomic_write_le32(&a, data, numel);
  atomic_commit(&a);
}

void npy_write_f32(const char *path, const float *data, int ndim, const int *shape) {
  npy_write(path, data, "<f4", ndim, shape);
}
void npy_write_i32(const char *path, const int32_t *data, int ndim, const int *shape) {
  npy_write(path, data, "<i4", ndim, shape);
}

typedef struct {
  const char *path;
  FILE *f;
  char *hdr;
  void *data;
} npy_rd;

static _Noreturn __attribute__((format(printf, 2, 3))) void rd_fail(npy_rd *r, const char *fmt, ...) {
  char why[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (r->f) fclose(r->f);
  free(r->hdr);
  free(r->data);
  db_fail("%s: not a valid .npy file for this reader: %s", r->path, why);
}

static void skip_ws(const char **p) {
  while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') (*p)++;
}

/* A quoted Python string literal without escapes, into out. */
static int parse_str(const char **p, char *out, size_t n) {
  char q = **p;
  if (q != '\'' && q != '"') return 0;
  const char *s = *p + 1, *e = strchr(s, q);
  if (!e || (size_t)(e - s) >= n) return 0;
  memcpy(out, s, (size_t)(e - s));
  out[e - s] = 0;
  *p = e + 1;
  return 1;
}

static void *npy_read(const char *path, const char *want_descr, int *ndim, int shape[4]) {
  npy_rd r = {.path = path};
  r.f = fopen(path, "rb");
  if (!r.f) db_fail("%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(r.f), &st) != 0) rd_fail(&r, "stat: %s", strerror(errno));
  if (!S_ISREG(st.st_mode)) rd_fail(&r, "not a regular file");
  unsigned char pre[12];
  if (fread(pre, 1, 8, r.f) != 8) rd_fail(&r, "file too short (%lld bytes)", (long long)st.st_size);
  if (memcmp(pre, "\x93NUMPY", 6) != 0) rd_fail(&r, "bad magic (expected \\x93NUMPY)");
  size_t hlen, pre_len;
  if (pre[6] == 1) {
    if (fread(pre + 8, 1, 2, r.f) != 2) rd_fail(&r, "truncated header");
    hlen = get_le16(pre + 8);
    pre_len = 10;
  } else if (pre[6] == 2 || pre[6] == 3) {
    if (fread(pre + 8, 1, 4, r.f) != 4) rd_fail(&r, "truncated header");
    hlen = get_le32(pre + 8);
    pre_len = 12;
  } else {
    rd_fail(&r, "unsupported format version %d.%d", pre[6], pre[7]);
  }
  if (hlen == 0 || hlen > (1 << 20)) rd_fail(&r, "implausible header length %zu", hlen);
  r.hdr = db_malloc(hlen + 1); /* hlen <= 1 MiB */
  if (fread(r.hdr, 1, hlen, r.f) != hlen) rd_fail(&r, "truncated header (%zu bytes promised)", hlen);
  r.hdr[hlen] = 0;
  if (strlen(r.hdr) != hlen) rd_fail(&r, "NUL byte in header");
  if (r.hdr[hlen - 1] != '\n') rd_fail(&r, "header does not end with a newline");

  /* the dict: exactly the keys descr, fortran_order, shape, in any order */
  char descr[32] = "", key[32];
  int have = 0, fortran = -1, nd = 0;
  long long dims[4];
  const char *p = r.hdr;
  skip_ws(&p);
  if (*p++ != '{') rd_fail(&r, "header is not a dict: %s", r.hdr);
  for (;;) {
    skip_ws(&p);
    if (*p == '}') { p++; break; }
    if (!parse_str(&p, key, sizeof key)) rd_fail(&r, "bad dict key in header: %s", r.hdr);
    skip_ws(&p);
    if (*p++ != ':') rd_fail(&r, "expected ':' after '%s' in header: %s", key, r.hdr);
    skip_ws(&p);
    if (!strcmp(key, "descr") && !(have & 1)) {
      if (!parse_str(&p, descr, sizeof descr)) rd_fail(&r, "'descr' is not a plain string: %s", r.hdr);
      have |= 1;
    } else if (!strcmp(key, "fortran_order") && !(have & 2)) {
      if (!strncmp(p, "False", 5)) { fortran = 0; p += 5; }
      else if (!strncmp(p, "True", 4)) { fortran = 1; p += 4; }
      else rd_fail(&r, "'fortran_order' is neither True nor False: %s", r.hdr);
      have |= 2;
    } else if (!strcmp(key, "shape") && !(have & 4)) {
      if (*p++ != '(') rd_fail(&r, "'shape' is not a tuple: %s", r.hdr);
      for (;;) {
        skip_ws(&p);
        if (*p == ')') { p++; break; }
        if (*p < '0' || *p > '9') rd_fail(&r, "bad 'shape' entry: %s", r.hdr);
        long long v = 0;
        while (*p >= '0' && *p <= '9') {
          v = v * 10 + (*p++ - '0');
          if (v > INT_MAX) rd_fail(&r, "dimension too large in 'shape': %s", r.hdr);
        }
        if (nd == 4) rd_fail(&r, "more than 4 dimensions: %s", r.hdr);
        dims[nd++] = v;
        skip_ws(&p);
        if (*p == ',') p++;
        else if (*p != ')') rd_fail(&r, "bad 'shape' tuple: %s", r.hdr);
      }
      have |= 4;
    } else {
      rd_fail(&r, "unexpected or repeated key '%s' in header: %s", key, r.hdr);
    }
    skip_ws(&p);
    if (*p == ',') p++;
    else if (*p != '}') rd_fail(&r, "expected ',' or '}' in header: %s", r.hdr);
  }
  skip_ws(&p);
  if (*p) rd_fail(&r, "unexpected text after the header dict: %s", r.hdr);
  if (have != 7) rd_fail(&r, "header lacks %s: %s", !(have & 1) ? "'descr'" : !(have & 2) ? "'fortran_order'" : "'shape'", r.hdr);
  if (strcmp(descr, want_descr) != 0) rd_fail(&r, "dtype '%s', expected '%s'", descr, want_descr);
  if (fortran) rd_fail(&r, "Fortran order is not supported");

  size_t numel = 1;
  for (int i = 0; i < nd; i++) {
    if (dims[i] && numel > SIZE_MAX / 4 / (size_t)dims[i]) rd_fail(&r, "array too large");
    numel *= (size_t)dims[i];
  }
  size_t expect = pre_len + hlen + numel * 4;
  if ((unsigned long long)st.st_size != expect)
    rd_fail(&r, "%s: shape needs %zu bytes in all, file has %lld",
            (unsigned long long)st.st_size < expect ? "truncated" : "trailing data", expect, (long long)st.st_size);
  r.data = db_malloc(numel * 4); /* no more than the file holds */
  if (numel && fread(r.data, 4, numel, r.f) != numel) rd_fail(&r, "read error: %s", strerror(errno));
  le32_to_host(r.data, numel);
  fclose(r.f);
  free(r.hdr);
  *ndim = nd;
  for (int i = 0; i < 4; i++) shape[i] = i < nd ? (int)dims[i] : 1;
  return r.data;
}

float *npy_read_f32(const char *path, int *ndim, int shape[4]) { return npy_read(path, "<f4", ndim, shape); }
int32_t *npy_read_i32(const char *path, int *ndim, int shape[4]) { return npy_read(path, "<i4", ndim, shape); }

/* ---------------------------------------------------------------- png */
#define PNG_MAX_SIDE 1000000 /* libpng's default user limit, checked in IHDR */

typedef struct {
  const char *path;
  char msg[512];
  atomic_file *out;
} png_errctx;

/* libpng's output: the atomic writer; its first failure stops libpng (the
 * writer keeps errno and the stage for the message). */
static void png_on_write(png_structp png, png_bytep data, size_t len) {
  png_errctx *e = png_get_error_ptr(png);
  atomic_write(e->out, data, len);
  if (atomic_error(e->out)) png_error(png, "Write Error");
}
static void png_on_flush(png_structp png) { (void)png; }

static void png_on_error(png_structp png, png_const_charp msg) {
  png_errctx *e = png_get_error_ptr(png);
  snprintf(e->msg, sizeof e->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
  png_errctx *e = png_get_error_ptr(png);
  fprintf(stderr, "dblocks: warning: libpng: %s: %s\n", e->path, msg);
}

static unsigned char to_byte(float v) {
  if (!(v > -1.0f)) return 0; /* also NaN */
  if (v >= 1.0f) return 255;
  return (unsigned char)((v + 1.0f) * 127.5f + 0.5f);
}

void png_write_grid(const char *path, const float *images, int n, int h, int w, int cols, int pad, int scale) {
  if (n < 1 || h < 1 || w < 1 || cols < 1 || pad < 0 || scale < 1)
    db_fail("cannot write %s: bad grid arguments n=%d h=%d w=%d cols=%d pad=%d scale=%d "
            "(need n, h, w, cols, scale >= 1 and pad >= 0)", path, n, h, w, cols, pad, scale);
  if (!images) db_fail("cannot write %s: no image data", path);
  int c = cols < n ? cols : n, r = (n + c - 1) / c;
  unsigned long long W0 = (unsigned long long)c * w + (unsigned long long)(c - 1) * pad;
  unsigned long long H0 = (unsigned long long)r * h + (unsigned long long)(r - 1) * pad;
  if (W0 * scale > PNG_MAX_SIDE || H0 * scale > PNG_MAX_SIDE)
    db_fail("cannot write %s: grid of %llu x %llu pixels exceeds the PNG limit of %d per side", path,
            W0 * scale, H0 * scale, PNG_MAX_SIDE);
  size_t W = (size_t)(W0 * scale), H = (size_t)(H0 * scale);
  /* allocations first: db_malloc may fail, and nothing is open yet */
  unsigned char *canvas = db_malloc((size_t)(W0 * H0)), *row = db_malloc(W);
  atomic_file a;
  atomic_open(&a, path, NULL);
  if (atomic_error(&a)) {
    free(canvas); free(row);
    atomic_check(&a);
  }
  memset(canvas, PNG_GRID_GAP, (size_t)(W0 * H0));
  for (int k = 0; k < n; k++) {
    size_t y0 = (size_t)(k / c) * (size_t)(h + pad), x0 = (size_t)(k % c) * (size_t)(w + pad);
    const float *img = images + (size_t)k * h * w;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) canvas[(y0 + y) * W0 + x0 + x] = to_byte(img[(size_t)y * w + x]);
  }

  png_errctx err = {.path = path, .msg = "unknown libpng error", .out = &a};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_write_struct(png ? &png : NULL, NULL);
    free(canvas); free(row);
    atomic_fail(&a, "libpng initialisation failed (out of memory)");
  }
  /* Nothing the handler uses is modified after setjmp, so no volatile needed. */
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(canvas); free(row);
    atomic_fail(&a, "libpng: %s", err.msg);
  }
  png_set_write_fn(png, NULL, png_on_write, png_on_flush);
  png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (size_t y = 0; y < H; y++) {
    const unsigned char *src = canvas + (y / scale) * W0;
    for (size_t x = 0; x < W; x++) row[x] = src[x / scale];
    png_write_row(png, row);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(canvas);
  free(row);
  atomic_commit(&a);
}
