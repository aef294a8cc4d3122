/* safetensors (F32 only) writer and validating reader; atomic file writes. */
#include "safetensors.h"
#include "../runtime/db.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int host_is_le(void) {
  const uint32_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

static void swap4(void *p, size_t n) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++, b += 4) {
    unsigned char t0 = b[0], t1 = b[1];
    b[0] = b[3]; b[1] = b[2]; b[2] = t1; b[3] = t0;
  }
}

/* ================================================================ atomic writes */

/* A file being written as PATH.tmp.<pid>; the first error is remembered and
 * reported by aw_commit, which removes the temporary file on failure. */
typedef struct {
  const char *prefix, *path; /* messages: "<prefix> <path>: ..." */
  char *tmp;
  FILE *fp;
  int err;                   /* errno of the first failure, 0 if none */
  const char *stage;         /* what failed: a format with one %s, the temporary name */
} atomic_writer;

/* Never fails by itself: a failure to create the file is reported by aw_commit,
 * so that callers have a single place where they may lose control. */
static void aw_open(atomic_writer *w, const char *prefix, const char *path) {
  memset(w, 0, sizeof *w);
  w->prefix = prefix;
  w->path = path;
  size_t n = strlen(path) + 32;
  w->tmp = malloc(n);
  if (!w->tmp) db_fail("%s %s: out of memory", prefix, path);
  snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
  w->fp = fopen(w->tmp, "wb");
  if (!w->fp) {
    w->err = errno;
    w->stage = "cannot create the temporary file %s";
  }
}

static void aw_write(atomic_writer *w, const void *p, size_t n) {
  if (w->err || !n) return;
  errno = 0;
  if (fwrite(p, 1, n, w->fp) != n) {
    w->err = errno ? errno : EIO;
    w->stage = "cannot write the temporary file %s";
  }
}

/* float32 data, little-endian on any host */
static void aw_write_f32(atomic_writer *w, const float *x, size_t n) {
  if (host_is_le()) {
    aw_write(w, x, n * sizeof *x);
    return;
  }
  float chunk[1024];
  for (size_t i = 0; i < n; i += 1024) {
    size_t k = n - i < 1024 ? n - i : 1024;
    memcpy(chunk, x + i, k * sizeof *x);
    swap4(chunk, k);
    aw_write(w, chunk, k * sizeof *x);
  }
}

static void aw_step(atomic_writer *w, int failed, const char *stage) {
  if (failed && !w->err) {
    w->err = errno ? errno : EIO;
    w->stage = stage;
  }
}

/* fsync the directory holding path so that the rename itself is durable;
 * best effort (some file systems refuse to fsync directories). */
static void fsync_parent(const char *path) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

static void aw_commit(atomic_writer *w) {
  if (w->fp) {
    errno = 0;
    aw_step(w, fflush(w->fp) != 0, "cannot flush the temporary file %s");
    aw_step(w, fsync(fileno(w->fp)) != 0, "cannot fsync the temporary file %s");
    aw_step(w, fclose(w->fp) != 0, "cannot close the temporary file %s");
    aw_step(w, !w->err && rename(w->tmp, w->path) != 0, "cannot rename the temporary file %s over it");
  }
  if (w->err) {
    char msg[PATH_MAX + 128];
    int k = snprintf(msg, sizeof msg, w->stage, w->tmp);
    if (k > 0 && (size_t)k < sizeof msg) snprintf(msg + k, sizeof msg - (size_t)k, ": %s", strerror(w->err));
    if (w->fp) unlink(w->tmp); /* only a file we created */
    free(w->tmp);
    db_fail("%s %s: %s", w->prefix, w->path, msg);
  }
  free(w->tmp);
  fsync_parent(w->path);
}

void atomic_write_file(const char *path, const void *data, size_t len) {
  atomic_writer w;
  aw_open(&w, "cannot write", path);
  aw_write(&w, data, len);
  aw_commit(&w);
}

char *read_text_file(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) db_fail("cannot read %s: %s", path, strerror(errno));
  size_t n = 0, cap = 4096;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fclose(fp);
      db_fail("cannot read %s: out of memory", path);
    }
    n += fread(buf + n, 1, cap - 1 - n, fp);
    if (n < cap - 1) break;
    char *nb = realloc(buf, cap * 2);
    if (!nb) free(buf);
    buf = nb;
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

/* ================================================================ st_write */

/* elements of a shape, or SIZE_MAX if the byte count would overflow */
static size_t shape_numel(int ndim, const long long *shape) {
  size_t n = 1;
  for (int d = 0; d < ndim; d++) {
    size_t s = (size_t)shape[d];
    if (s && n > SIZE_MAX / 4 / s) return SIZE_MAX;
    n *= s;
  }
  return n;
}

static void check_input(const char *path, const st_tensor_in *t) {
  if (!t->name) db_fail("checkpoint %s: a tensor has no name", path);
  if (!strcmp(t->name, "__metadata__")) db_fail("checkpoint %s: \"__metadata__\" cannot name a tensor", path);
  if (t->ndim < 0 || t->ndim > 4) db_fail("checkpoint %s: tensor '%s' has %d dimensions (0..4 allowed)", path, t->name, t->ndim);
  long long shape[4] = {0};
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] < 0) db_fail("checkpoint %s: tensor '%s' has a negative dimension %d", path, t->name, t->shape[d]);
    shape[d] = t->shape[d];
  }
  size_t numel = shape_numel(t->ndim, shape);
  if (numel == SIZE_MAX) db_fail("checkpoint %s: tensor '%s' is too large", path, t->name);
  if (numel && !t->data) db_fail("checkpoint %s: tensor '%s' has no data", path, t->name);
}

/* elements of a checked input tensor */
static size_t in_numel(const st_tensor_in *t) {
  size_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
  return n;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. It is parsed
 * back as a check: names must be valid UTF-8 and unique. */
static json_buf build_header(const char *path, const st_tensor_in *t, int n, const char *const *kv, int n_meta) {
  json_buf h = {0};
  json_buf_printf(&h, "{");
  if (n_meta > 0) {
    json_buf_printf(&h, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      json_buf_printf(&h, i ? "," : "");
      json_buf_string(&h, kv[2 * i]);
      json_buf_printf(&h, ":");
      json_buf_string(&h, kv[2 * i + 1]);
    }
    json_buf_printf(&h, "}");
  }
  unsigned long long off = 0;
  for (int i = 0; i < n; i++) {
    json_buf_printf(&h, i || n_meta > 0 ? "," : "");
    json_buf_string(&h, t[i].name);
    json_buf_printf(&h, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t[i].ndim; d++) json_buf_printf(&h, d ? ",%d" : "%d", t[i].shape[d]);
    unsigned long long bytes = 4ull * in_numel(&t[i]);
    json_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", off, off + bytes);
    off += bytes;
  }
  json_buf_printf(&h, "}");
  while (h.len % 8) json_buf_printf(&h, " ");
  char err[512];
  json_value *check = json_parse(h.data, h.len, err, sizeof err);
  if (!check) {
    json_buf_free(&h);
    db_fail("checkpoint %s: invalid tensor names or metadata (names must be unique, valid UTF-8): %s", path, err);
  }
  json_free(check);
  return h;
}

void st_write(const char *path, const st_tensor_in *tensors, int n, const char *const *meta_kv, int n_meta) {
  if (n < 0 || (n > 0 && !tensors)) db_fail("checkpoint %s: bad tensor list (n = %d)", path, n);
  if (n_meta < 0 || (n_meta > 0 && !meta_kv)) db_fail("checkpoint %s: bad metadata list (n_meta = %d)", path, n_meta);
  for (int i = 0; i < 2 * n_meta; i++)
    if (!meta_kv[i]) db_fail("checkpoint %s: metadata pair %d has a NULL %s", path, i / 2, i % 2 ? "value" : "key");
  for (int i = 0; i < n; i++) check_input(path, &tensors[i]);
  json_buf h = build_header(path, tensors, n, meta_kv, n_meta);

  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((unsigned long long)h.len >> (8 * i));
  atomic_writer w;
  aw_open(&w, "checkpoint", path);
  aw_write(&w, len8, 8);
  aw_write(&w, h.data, h.len);
  json_buf_free(&h);
  for (int i = 0; i < n; i++) aw_write_f32(&w, tensors[i].data, in_numel(&tensors[i]));
  aw_commit(&w);
}

/* ================================================================ st_read */

typedef struct {
  FILE *fp;
  char *header;
  json_value *root;
  st_file f;
  unsigned long long *begin, *end; /* data offsets per tensor, parallel to f.tensors */
  char err[1024];
} reader;

static int rfail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rfail(reader *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, sizeof r->err, fmt, ap);
  va_end(ap);
  return -1;
}

/* Opens the file; reads and parses the header. *size: the file size, *hlen: N. */
static int read_header(reader *r, const char *path, unsigned long long *size, unsigned long long *hlen) {
  struct stat st;
  r->fp = fopen(path, "rb");
  if (!r->fp) return rfail(r, "cannot open: %s", strerror(errno));
  if (fstat(fileno(r->fp), &st) != 0) return rfail(r, "cannot stat: %s", strerror(errno));
  if (!S_ISREG(st.st_mode)) return rfail(r, "not a regular file");
  *size = (unsigned long long)st.st_size;
  unsigned char len8[8];
  if (*size < 8 || fread(len8, 1, 8, r->fp) != 8)
    return rfail(r, "file is %llu bytes, too short to hold the 8-byte header length (truncated?)", *size);
  *hlen = 0;
  for (int i = 7; i >= 0; i--) *hlen = *hlen << 8 | len8[i];
  if (*hlen > ST_MAX_HEADER)
    return rfail(r, "header length %llu exceeds the limit of %u bytes (corrupt or not a safetensors file)", *hlen,
                 ST_MAX_HEADER);
  if (*hlen > *size - 8)
    return rfail(r, "header length %llu is larger than the rest of the file (%llu bytes): truncated or corrupt",
                 *hlen, *size - 8);
  r->header = malloc(*hlen + 1);
  if (!r->header) return rfail(r, "out of memory for a %llu-byte header", *hlen);
  errno = 0;
  if (fread(r->header, 1, *hlen, r->fp) != *hlen)
    return rfail(r, "reading the header failed: %s", errno ? strerror(errno) : "unexpected end of file");
  char jerr[512];
  r->root = json_parse(r->header, *hlen, jerr, sizeof jerr);
  if (!r->root) return rfail(r, "invalid JSON header: %s", jerr);
  if (r->root->type != JSON_OBJECT)
    return rfail(r, "the header is a JSON %s, not an object", json_type_name(r->root->type));
  return 0;
}

/* "__metadata__": an object of strings, copied into f.meta_kv */
static int read_metadata(reader *r, const json_value *m) {
  if (m->type != JSON_OBJECT) return rfail(r, "\"__metadata__\" is a JSON %s, not an object", json_type_name(m->type));
  r->f.meta_kv = calloc(2 * m->n + 1, sizeof *r->f.meta_kv);
  if (!r->f.meta_kv) return rfail(r, "out of memory");
  for (size_t i = 0; i < m->n; i++) {
    if (m->items[i].type != JSON_STRING)
      return rfail(r, "\"__metadata__\" value of \"%.80s\" is a JSON %s, not a string", m->keys[i],
                   json_type_name(m->items[i].type));
    r->f.meta_kv[2 * i] = strdup(m->keys[i]);
    r->f.meta_kv[2 * i + 1] = strdup(m->items[i].string);
    r->f.n_meta++;
    if (!r->f.meta_kv[2 * i] || !r->f.meta_kv[2 * i + 1]) return rfail(r, "out of memory");
  }
  return 0;
}

/* One header entry: dtype, shape and data_offsets checked against each other. */
static int read_entry(reader *r, const char *name, const json_value *e, st_tensor *t, unsigned long long *b,
                      unsigned long long *en) {
  if (e->type != JSON_OBJECT) return rfail(r, "tensor '%.80s': entry is a JSON %s, not an object", name, json_type_name(e->type));
  const char *dtype = json_str(json_get(e, "dtype"));
  const json_value *shape = json_get(e, "shape"), *offs = json_get(e, "data_offsets");
  if (!dtype) return rfail(r, "tensor '%.80s': missing or non-string \"dtype\"", name);
  if (strcmp(dtype, "F32")) return rfail(r, "tensor '%.80s' has dtype %.20s; only F32 is supported", name, dtype);
  if (!shape || shape->type != JSON_ARRAY) return rfail(r, "tensor '%.80s': missing or non-array \"shape\"", name);
  if (shape->n > 4) return rfail(r, "tensor '%.80s' has %zu dimensions; at most 4 are supported", name, shape->n);
  long long dims[4];
  t->ndim = (int)shape->n;
  for (int d = 0; d < t->ndim; d++) {
    if (!json_int(&shape->items[d], &dims[d]) || dims[d] < 0 || dims[d] > INT_MAX)
      return rfail(r, "tensor '%.80s': shape[%d] is not an integer in [0, %d]", name, d, INT_MAX);
    t->shape[d] = (int)dims[d];
  }
  long long o[2];
  if (!offs || offs->type != JSON_ARRAY || offs->n != 2 || !json_int(&offs->items[0], &o[0]) ||
      !json_int(&offs->items[1], &o[1]) || o[0] < 0 || o[1] < o[0])
    return rfail(r, "tensor '%.80s': \"data_offsets\" must be [begin, end] with integers 0 <= begin <= end", name);
  *b = (unsigned long long)o[0];
  *en = (unsigned long long)o[1];
  t->numel = shape_numel(t->ndim, dims);
  if (t->numel == SIZE_MAX || 4ull * t->numel != *en - *b)
    return rfail(r, "tensor '%.80s': its shape needs %llu bytes but data_offsets [%llu, %llu] span %llu", name,
                 t->numel == SIZE_MAX ? ~0ull : 4ull * t->numel, *b, *en, *en - *b);
  return 0;
}

static int read_entries(reader *r) {
  const json_value *root = r->root;
  size_t n = root->n;
  r->f.tensors = calloc(n + 1, sizeof *r->f.tensors);
  r->begin = calloc(n + 1, sizeof *r->begin);
  r->end = calloc(n + 1, sizeof *r->end);
  if (!r->f.tensors || !r->begin || !r->end) return rfail(r, "out of memory");
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(root->keys[i], "__metadata__")) {
      if (read_metadata(r, &root->items[i])) return -1;
      continue;
    }
    st_tensor *t = &r->f.tensors[r->f.n];
    if (!(t->name = strdup(root->keys[i]))) return rfail(r, "out of memory");
    r->f.n++;
    if (read_entry(r, t->name, &root->items[i], t, &r->begin[r->f.n - 1], &r->end[r->f.n - 1])) return -1;
  }
  return 0;
}

/* Sorts tensors by (begin, end) and checks that they tile [0, *buf) exactly. */
static int check_layout(reader *r, unsigned long long *buf) {
  int n = r->f.n;
  for (int i = 1; i < n; i++) /* insertion sort: files we write are already in order */
    for (int j = i; j > 0 && (r->begin[j] < r->begin[j - 1] || (r->begin[j] == r->begin[j - 1] && r->end[j] < r->end[j - 1])); j--) {
      st_tensor t = r->f.tensors[j]; r->f.tensors[j] = r->f.tensors[j - 1]; r->f.tensors[j - 1] = t;
      unsigned long long x = r->begin[j]; r->begin[j] = r->begin[j - 1]; r->begin[j - 1] = x;
      x = r->end[j]; r->end[j] = r->end[j - 1]; r->end[j - 1] = x;
    }
  unsigned long long pos = 0;
  for (int i = 0; i < n; i++) {
    if (r->begin[i] < pos)
      return rfail(r, "tensors '%.80s' [%llu, %llu] and '%.80s' [%llu, %llu] overlap", r->f.tensors[i - 1].name,
                   r->begin[i - 1], r->end[i - 1], r->f.tensors[i].name, r->begin[i], r->end[i]);
    if (r->begin[i] > pos)
      return rfail(r, "%llu bytes of the data buffer before tensor '%.80s' [%llu, %llu] belong to no tensor",
                   r->begin[i] - pos, r->f.tensors[i].name, r->begin[i], r->end[i]);
    pos = r->end[i];
  }
  *buf = pos;
  return 0;
}

/* Reads every tensor's bytes; the file position is at the start of the buffer. */
static int read_data(reader *r) {
  for (int i = 0; i < r->f.n; i++) {
    st_tensor *t = &r->f.tensors[i];
    t->data = malloc((t->numel ? t->numel : 1) * sizeof *t->data);
    if (!t->data) return rfail(r, "out of memory for tensor '%.80s' (%zu floats)", t->name, t->numel);
    errno = 0;
    if (fread(t->data, sizeof *t->data, t->numel, r->fp) != t->numel)
      return rfail(r, "reading tensor '%.80s' failed: %s", t->name, errno ? strerror(errno) : "unexpected end of file");
    if (!host_is_le()) swap4(t->data, t->numel);
  }
  return 0;
}

static int read_all(reader *r, const char *path) {
  unsigned long long size = 0, hlen = 0, buf = 0;
  if (read_header(r, path, &size, &hlen) || read_entries(r) || check_layout(r, &buf)) return -1;
  unsigned long long want = 8 + hlen + buf;
  if (size < want)
    return rfail(r, "file is truncated: %llu bytes, but the header describes %llu (8 + %llu header + %llu data)",
                 size, want, hlen, buf);
  if (size > want)
    return rfail(r, "%llu unexpected bytes after the end of the data (file is %llu bytes, header describes %llu)",
                 size - want, size, want);
  return read_data(r);
}

st_file st_read(const char *path) {
  reader r;
  memset(&r, 0, sizeof r);
  int rc = read_all(&r, path);
  if (r.fp) fclose(r.fp);
  free(r.header);
  json_free(r.root);
  free(r.begin);
  free(r.end);
  if (rc) {
    st_free(&r.f);
    db_fail("checkpoint %s: %s", path, r.err);
  }
  return r.f;
}

const st_tensor *st_find(const st_file *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
  for (int i = 0; i < f->n_meta; i++)
    if (!strcmp(f->meta_kv[2 * i], key)) return f->meta_kv[2 * i + 1];
  return NULL;
}

void st_free(st_file *f) {
  for (int i = 0; i < f->n; i++) {
    free(f->tensors[i].name);
    free(f->tensors[i].data);
  }
  free(f->tensors);
  if (f->meta_kv)
    for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta_kv[i]);
  free(f->meta_kv);
  memset(f, 0, sizeof *f);
}
