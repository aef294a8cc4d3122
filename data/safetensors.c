/* safetensors (F32 only) writer and validating reader. The JSON header goes
 * through jansson, the file through the atomic writer of file_io.h.
 * db_fail may longjmp (tests trap it), so every failure first releases what
 * it owns: JSON trees, the open file, partial results. */
#include "safetensors.h"
#include "file_io.h"
#include "../runtime/base.h"
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static const char *jtype_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "object";
  case JSON_ARRAY: return "array";
  case JSON_STRING: return "string";
  case JSON_INTEGER:
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  case JSON_NULL: return "null";
  }
  return "?";
}

/* ================================================================ st_write */

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

/* obj[key] = v (v's reference is taken, also on failure); 0, or -1 with a
 * message in err if key is already there or not valid UTF-8. */
static int set_unique(json_t *obj, const char *key, json_t *v, const char *kind, char *err, size_t errlen) {
  if (!v) {
    snprintf(err, errlen, "out of memory building the header");
    return -1;
  }
  if (json_object_get(obj, key)) {
    json_decref(v);
    snprintf(err, errlen, "%s \"%.200s\" appears twice (must be unique)", kind, key);
    return -1;
  }
  if (json_object_set_new(obj, key, v) != 0) {
    snprintf(err, errlen, "%s \"%.200s\" is not valid UTF-8", kind, key);
    return -1;
  }
  return 0;
}

/* The compact JSON header (jansson's json_dumps, free() it), keys in this
 * order: "__metadata__" (if any), then the tensors. NULL with a message in
 * err on invalid names or metadata. */
static char *build_header(const st_tensor_in *t, int n, const char *const *kv, int n_meta, char *err, size_t errlen) {
  json_t *root = json_object(), *meta = NULL;
  int bad = !root;
  if (bad) snprintf(err, errlen, "out of memory building the header");
  if (!bad && n_meta > 0) {
    meta = json_object();
    bad = set_unique(root, "__metadata__", meta, "key", err, errlen);
    for (int i = 0; !bad && i < n_meta; i++) {
      json_t *v = json_string(kv[2 * i + 1]);
      if (!v) {
        snprintf(err, errlen, "metadata value of \"%.200s\" is not valid UTF-8", kv[2 * i]);
        bad = 1;
      } else bad = set_unique(meta, kv[2 * i], v, "metadata key", err, errlen);
    }
  }
  unsigned long long off = 0;
  for (int i = 0; !bad && i < n; i++) {
    unsigned long long bytes = 4ull * in_numel(&t[i]);
    json_t *shape = json_array(), *e = NULL;
    for (int d = 0; shape && d < t[i].ndim; d++)
      if (json_array_append_new(shape, json_integer(t[i].shape[d]))) json_decref(shape), shape = NULL;
    if (shape)
      e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets", (json_int_t)off,
                    (json_int_t)(off + bytes));
    bad = set_unique(root, t[i].name, e, "tensor name", err, errlen);
    off += bytes;
  }
  char *text = NULL;
  if (!bad && !(text = json_dumps(root, JSON_COMPACT))) snprintf(err, errlen, "out of memory building the header");
  json_decref(root);
  return text;
}

void st_write(const char *path, const st_tensor_in *tensors, int n, const char *const *meta_kv, int n_meta) {
  if (n < 0 || (n > 0 && !tensors)) db_fail("checkpoint %s: bad tensor list (n = %d)", path, n);
  if (n_meta < 0 || (n_meta > 0 && !meta_kv)) db_fail("checkpoint %s: bad metadata list (n_meta = %d)", path, n_meta);
  for (int i = 0; i < 2 * n_meta; i++)
    if (!meta_kv[i]) db_fail("checkpoint %s: metadata pair %d has a NULL %s", path, i / 2, i % 2 ? "value" : "key");
  for (int i = 0; i < n; i++) check_input(path, &tensors[i]);
  char err[512];
  char *header = build_header(tensors, n, meta_kv, n_meta, err, sizeof err);
  if (!header) db_fail("checkpoint %s: invalid tensor names or metadata: %s", path, err);

  size_t len = strlen(header), padded = (len + 7) / 8 * 8; /* spaces up to a multiple of 8 */
  static const char spaces[] = "        ";
  unsigned char len8[8];
  put_le64(len8, padded);
  atomic_file w;
  atomic_open(&w, path, "checkpoint");
  atomic_write(&w, len8, 8);
  atomic_write(&w, header, len);
  atomic_write(&w, spaces, padded - len);
  free(header);
  for (int i = 0; i < n; i++) atomic_write_le32(&w, tensors[i].data, in_numel(&tensors[i]));
  atomic_commit(&w);
}

/* ================================================================ st_read */

typedef struct {
  FILE *fp;
  char *header;
  json_t *root;
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
  *hlen = get_le64(len8);
  if (*hlen > ST_MAX_HEADER)
    return rfail(r, "header length %llu exceeds the limit of %u bytes (corrupt or not a safetensors file)", *hlen,
                 ST_MAX_HEADER);
  if (*hlen > *size - 8)
    return rfail(r, "header length %llu is larger than the rest of the file (%llu bytes): truncated or corrupt",
                 *hlen, *size - 8);
  r->header = db_malloc(*hlen + 1);
  errno = 0;
  if (fread(r->header, 1, *hlen, r->fp) != *hlen)
    return rfail(r, "reading the header failed: %s", errno ? strerror(errno) : "unexpected end of file");
  /* trailing padding (spaces) is whitespace after the value: accepted by the
   * EOF check; anything else after the object is an error. */
  json_error_t jerr;
  r->root = json_loadb(r->header, *hlen, JSON_REJECT_DUPLICATES, &jerr);
  if (!r->root)
    return rfail(r, "invalid JSON header: line %d, column %d (byte %d): %s", jerr.line, jerr.column, jerr.position,
                 jerr.text);
  if (!json_is_object(r->root)) return rfail(r, "the header is a JSON %s, not an object", jtype_name(r->root));
  return 0;
}

/* "__metadata__": an object of strings, copied into f.meta_kv */
static int read_metadata(reader *r, json_t *m) {
  if (!json_is_object(m)) return rfail(r, "\"__metadata__\" is a JSON %s, not an object", jtype_name(m));
  r->f.meta_kv = db_calloc(2 * json_object_size(m) + 1, sizeof *r->f.meta_kv);
  const char *key;
  json_t *v;
  json_object_foreach(m, key, v) {
    if (!json_is_string(v))
      return rfail(r, "\"__metadata__\" value of \"%.80s\" is a JSON %s, not a string", key, jtype_name(v));
    r->f.meta_kv[2 * r->f.n_meta] = db_strdup(key);
    r->f.meta_kv[2 * r->f.n_meta + 1] = db_strdup(json_string_value(v));
    r->f.n_meta++;
  }
  return 0;
}

/* an integer in [lo, hi] */
static int int_in(const json_t *v, long long lo, long long hi, long long *out) {
  if (!json_is_integer(v)) return 0;
  *out = json_integer_value(v);
  return *out >= lo && *out <= hi;
}

/* One header entry: dtype, shape and data_offsets checked against each other. */
static int read_entry(reader *r, const char *name, json_t *e, st_tensor *t, unsigned long long *b,
                      unsigned long long *en) {
  if (!json_is_object(e)) return rfail(r, "tensor '%.80s': entry is a JSON %s, not an object", name, jtype_name(e));
  const char *dtype = json_string_value(json_object_get(e, "dtype"));
  json_t *shape = json_object_get(e, "shape"), *offs = json_object_get(e, "data_offsets");
  if (!dtype) return rfail(r, "tensor '%.80s': missing or non-string \"dtype\"", name);
  if (strcmp(dtype, "F32")) return rfail(r, "tensor '%.80s' has dtype %.20s; only F32 is supported", name, dtype);
  if (!json_is_array(shape)) return rfail(r, "tensor '%.80s': missing or non-array \"shape\"", name);
  if (json_array_size(shape) > 4)
    return rfail(r, "tensor '%.80s' has %zu dimensions; at most 4 are supported", name, json_array_size(shape));
  long long dims[4];
  t->ndim = (int)json_array_size(shape);
  for (int d = 0; d < t->ndim; d++) {
    if (!int_in(json_array_get(shape, (size_t)d), 0, INT_MAX, &dims[d]))
      return rfail(r, "tensor '%.80s': shape[%d] is not an integer in [0, %d]", name, d, INT_MAX);
    t->shape[d] = (int)dims[d];
  }
  long long o[2];
  if (!json_is_array(offs) || json_array_size(offs) != 2 || !int_in(json_array_get(offs, 0), 0, LLONG_MAX, &o[0]) ||
      !int_in(json_array_get(offs, 1), o[0], LLONG_MAX, &o[1]))
    return rfail(r, "tensor '%.80s': \"data_offsets\" must be [begin, end] with integers 0 <= begin <= end", name);
  *b = (unsigned long long)o[0];
  *en = (unsigned long long)o[1];
  t->numel = shape_numel(t->ndim, dims);
  if (t->numel == SIZE_MAX || 4ull * t->numel != *en - *b)
    return rfail(r, "tensor '%.80s': its shape needs %llu bytes but data_offsets [%llu, %llu] span %llu", name,
                 t->numel == SIZE_MAX ? ~0ull : 4ull * t->numel, *b, *en, *en - *b);
  return 0;
}

/* every entry of the header, in file order */
static int read_entries(reader *r) {
  size_t n = json_object_size(r->root);
  r->f.tensors = db_calloc(n + 1, sizeof *r->f.tensors);
  r->begin = db_calloc(n + 1, sizeof *r->begin);
  r->end = db_calloc(n + 1, sizeof *r->end);
  const char *key;
  json_t *v;
  json_object_foreach(r->root, key, v) {
    if (!strcmp(key, "__metadata__")) {
      if (read_metadata(r, v)) return -1;
      continue;
    }
    st_tensor *t = &r->f.tensors[r->f.n];
    t->name = db_strdup(key);
    r->f.n++;
    if (read_entry(r, t->name, v, t, &r->begin[r->f.n - 1], &r->end[r->f.n - 1])) return -1;
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

/* Reads every tensor's bytes; the file position is at the start of the buffer.
 * Sizes were checked against the file size, so allocations are bounded by it. */
static int read_data(reader *r) {
  for (int i = 0; i < r->f.n; i++) {
    st_tensor *t = &r->f.tensors[i];
    t->data = db_malloc((t->numel ? t->numel : 1) * sizeof *t->data);
    errno = 0;
    if (fread(t->data, sizeof *t->data, t->numel, r->fp) != t->numel)
      return rfail(r, "reading tensor '%.80s' failed: %s", t->name, errno ? strerror(errno) : "unexpected end of file");
    le32_to_host(t->data, t->numel);
  }
  return 0;
}

static int read_all(reader *r, const char *path) {
  unsigned long long size = 0, hlen = 0, buf = 0;
  if (read_header(r, path, &size, &hlen) || read_entries(r) || check_layout(r, &buf)) return -1;
  unsigned long long want = 8 + hlen + buf;
  if (want < buf || size < want) /* want < buf: the offsets wrapped around */
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
  json_decref(r.root);
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
