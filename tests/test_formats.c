/* File formats (data/): the atomic writer and byte-order helpers of
 * file_io, safetensors round trip and byte layout, rejection of corrupt
 * files (the header through jansson), and atomic checkpoint writes. Host only. */
#include "harness.h"
#include "../data/file_io.h"
#include "../data/safetensors.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tdir[PATH_MAX]; /* temporary directory of this suite */

/* tdir/name, in one of a few rotating buffers */
static const char *tpath(const char *name) {
  static char buf[8][PATH_MAX];
  static int k;
  char *p = buf[k++ % 8];
  if (snprintf(p, PATH_MAX, "%s/%s", tdir, name) >= PATH_MAX) db_fail("formats tests: path too long");
  return p;
}

static void make_tdir(void) {
  const char *base = getenv("DBLOCKS_CACHE_DIR");
  if (base && strcmp(base, "off")) {
    snprintf(tdir, sizeof tdir, "%s/formats-test-XXXXXX", base);
    if (mkdtemp(tdir)) return;
  }
  snprintf(tdir, sizeof tdir, "/tmp/dblocks-formats-test-XXXXXX");
  if (!mkdtemp(tdir)) db_fail("formats tests: cannot create a temporary directory: %s", strerror(errno));
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)flag; (void)ftw;
  return remove(p);
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f)) db_fail("formats tests: cannot write %s", path);
}

/* A hand-made file: u64 length of `header` (as given, no padding), header, data. */
static void make_raw(const char *path, const char *header, const void *data, size_t nbytes) {
  size_t h = strlen(header);
  unsigned char *b = db_malloc(8 + h + nbytes + 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((unsigned long long)h >> (8 * i));
  memcpy(b + 8, header, h);
  if (nbytes) memcpy(b + 8 + h, data, nbytes);
  write_bytes(path, b, 8 + h + nbytes);
  free(b);
}

/* files in directory d whose name contains ".tmp." */
static int count_tmp(const char *d) {
  DIR *dp = opendir(d);
  int n = 0;
  if (!dp) return 0;
  for (struct dirent *e; (e = readdir(dp));) n += strstr(e->d_name, ".tmp.") != NULL;
  closedir(dp);
  return n;
}

static int same_file(const char *path, const unsigned char *want, size_t n) {
  size_t len;
  char *got = read_text_file(path, &len);
  int ok = len == n && !memcmp(got, want, n);
  free(got);
  return ok;
}

/* ================================================================ safetensors */

#define NT 7
static const char *names[NT] = {"blocks.0.attn.qkv.weight", "b", "conv4d", "x3", "one", "scalar", "empty"};
static const int ndims[NT] = {2, 1, 4, 3, 1, 0, 2};
static const int shapes[NT][4] = {{3, 5}, {7}, {2, 3, 1, 4}, {2, 1, 3}, {1}, {0}, {0, 3}};

static size_t numel_of(int i) {
  size_t n = 1;
  for (int d = 0; d < ndims[i]; d++) n *= (size_t)shapes[i][d];
  return n;
}

/* random data with special values (signed zero, subnormal, extremes, Inf, NaN) */
static void fill(float **data) {
  for (int i = 0; i < NT; i++) {
    size_t n = numel_of(i);
    double *tmp = db_malloc((n + 1) * sizeof *tmp);
    data[i] = db_malloc((n + 1) * sizeof **data);
    th_rand(tmp, n, 1000 + (uint64_t)i, -3, 3);
    for (size_t k = 0; k < n; k++) data[i][k] = (float)tmp[k];
    free(tmp);
  }
  const float special[] = {-0.0f, 1e-45f, FLT_MAX, -FLT_MIN, INFINITY, NAN, -INFINITY};
  memcpy(data[0], special, sizeof special);
}

static void write_reference(const char *path, float **data) {
  st_tensor_in in[NT];
  for (int i = 0; i < NT; i++) {
    in[i].name = names[i];
    in[i].ndim = ndims[i];
    memcpy(in[i].shape, shapes[i], sizeof in[i].shape);
    in[i].data = data[i];
  }
  const char *meta[] = {"format", "dblocks", "step", "1234", "note", "quote \" and caf\xc3\xa9"};
  st_write(path, in, NT, meta, 3);
}

static void test_round_trip(const char *path, float **data) {
  st_file f = st_read(path);
  int ok = f.n == NT;
  for (int i = 0; ok && i < NT; i++) {
    const st_tensor *t = &f.tensors[i];
    ok = !strcmp(t->name, names[i]) && t->ndim == ndims[i] && t->numel == numel_of(i) && t->data &&
         !memcmp(t->shape, shapes[i], (size_t)ndims[i] * sizeof(int)) &&
         !memcmp(t->data, data[i], t->numel * sizeof(float)) && st_find(&f, names[i]) == t;
  }
  th_check(ok, "safetensors: round trip of 1-D..4-D, [1], scalar and empty tensors is bit-exact, in order",
           "mismatch (n = %d)", f.n);
  th_check(!st_find(&f, "missing") && !st_find(&f, "__metadata__"), "safetensors: st_find returns NULL when absent", "found");
  th_check(f.n_meta == 3 && !strcmp(st_meta(&f, "step"), "1234") && !strcmp(st_meta(&f, "format"), "dblocks") &&
               !strcmp(st_meta(&f, "note"), "quote \" and caf\xc3\xa9") && !st_meta(&f, "nope"),
           "safetensors: metadata round trip", "n_meta %d", f.n_meta);
  st_free(&f);
}

/* The layout checked by hand: u64 LE length, padded JSON, contiguous data.
 * Bytes are decoded with shifts here, not with the helpers under test. */
static void test_layout(const char *path, float **data) {
  size_t len;
  unsigned char *b = (unsigned char *)read_text_file(path, &len);
  unsigned long long n = 0, total = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
  for (int i = 0; i < NT; i++) total += 4 * numel_of(i);
  th_check(n % 8 == 0 && len == 8 + n + total, "safetensors: header length is a multiple of 8, file = 8 + N + data",
           "N %llu, file %zu, data %llu", n, len, total);
  json_error_t err;
  json_t *h = json_loadb((char *)b + 8, n, JSON_REJECT_DUPLICATES, &err);
  int ok = json_is_object(h) && json_object_size(h) == NT + 1 && b[8] == '{';
  size_t end = n;
  while (end > 0 && b[8 + end - 1] == ' ') end--;
  ok = ok && b[8 + end - 1] == '}' && n - end < 8;
  /* keys in write order: __metadata__, then the tensors */
  int k = 0;
  const char *key;
  json_t *v;
  json_object_foreach(h, key, v) {
    ok = ok && !strcmp(key, k ? names[k - 1] : "__metadata__");
    k++;
  }
  unsigned long long off = 0;
  for (int i = 0; ok && i < NT; i++) {
    json_t *e = json_object_get(h, names[i]), *sh = json_object_get(e, "shape"), *o = json_object_get(e, "data_offsets");
    const char *dtype = json_string_value(json_object_get(e, "dtype"));
    ok = dtype && !strcmp(dtype, "F32") && json_object_size(e) == 3 && json_array_size(sh) == (size_t)ndims[i] &&
         json_array_size(o) == 2 && json_is_integer(json_array_get(o, 0)) && json_is_integer(json_array_get(o, 1)) &&
         (unsigned long long)json_integer_value(json_array_get(o, 0)) == off &&
         (unsigned long long)json_integer_value(json_array_get(o, 1)) == off + 4 * numel_of(i);
    for (int d = 0; ok && d < ndims[i]; d++)
      ok = json_is_integer(json_array_get(sh, (size_t)d)) && json_integer_value(json_array_get(sh, (size_t)d)) == shapes[i][d];
    /* little-endian float32 bytes at 8 + N + begin */
    for (size_t q = 0; ok && q < numel_of(i); q++) {
      uint32_t u;
      memcpy(&u, &data[i][q], 4);
      const unsigned char *p = b + 8 + n + off + 4 * q;
      ok = p[0] == (u & 0xff) && p[1] == (u >> 8 & 0xff) && p[2] == (u >> 16 & 0xff) && p[3] == u >> 24;
    }
    off += 4 * numel_of(i);
  }
  json_t *m = json_object_get(h, "__metadata__");
  ok = ok && json_is_object(m) && json_object_size(m) == 3 &&
       !strcmp(json_string_value(json_object_get(m, "step")) ? json_string_value(json_object_get(m, "step")) : "", "1234");
  th_check(ok, "safetensors: header JSON has dtype/shape/data_offsets in write order, space padding, LE data",
           "%.*s%s", (int)n, h ? (char *)b + 8 : "", h ? "" : err.text);
  json_decref(h);
  free(b);
}

/* A file written the way other writers may: unpadded, keys out of data order. */
static void test_foreign_order(void) {
  const float ab[4] = {1, 2, 3, 4};
  const char *p = tpath("foreign.safetensors");
  make_raw(p, "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}, \"a\":{\"dtype\":\"F32\",\"shape\":[1,2],"
              "\"data_offsets\":[0,8]},\"__metadata__\":{}}", ab, sizeof ab);
  st_file f = st_read(p);
  th_check(f.n == 2 && !strcmp(f.tensors[0].name, "a") && f.tensors[0].data[1] == 2 && st_find(&f, "b")->data[0] == 3 &&
               f.n_meta == 0,
           "safetensors: unpadded header with keys out of data order is read, tensors in data order", "n %d", f.n);
  st_free(&f);

  st_write(tpath("none.safetensors"), NULL, 0, NULL, 0);
  f = st_read(tpath("none.safetensors"));
  th_check(f.n == 0 && f.n_meta == 0, "safetensors: a file with no tensors and no metadata", "n %d", f.n);
  st_free(&f);
}

/* st_read(path) must fail with a message starting "checkpoint PATH: " and
 * containing `problem`. */
static void expect_read_error(const char *label, const char *path, const char *problem) {
  char prefix[PATH_MAX + 16];
  snprintf(prefix, sizeof prefix, "checkpoint %s: ", path);
  jmp_buf trap;
  volatile int failed = 0;
  db_trap_errors(&trap);
  if (setjmp(trap) == 0) {
    st_file f = st_read(path);
    st_free(&f);
  } else failed = 1;
  db_trap_errors(NULL);
  const char *e = db_last_error();
  th_check(failed && !strncmp(e, prefix, strlen(prefix)) && strstr(e, problem), label,
           "expected \"%s...%s\", got: %s", prefix, problem, failed ? e : "no error");
}

/* A copy of the reference file cut or patched. */
static const char *variant(const char *name, const unsigned char *good, size_t len, size_t cut) {
  const char *p = tpath(name);
  write_bytes(p, good, cut < len ? cut : len);
  return p;
}

static void test_truncation(const unsigned char *good, size_t len, unsigned long long n) {
  char hl[64];
  snprintf(hl, sizeof hl, "header length %llu is larger than the rest of the file", n);
  expect_read_error("corrupt: empty file", variant("t0", good, len, 0), "file is 0 bytes, too short");
  expect_read_error("corrupt: cut inside the header length", variant("t4", good, len, 4), "file is 4 bytes, too short");
  expect_read_error("corrupt: cut just after the header length", variant("t8", good, len, 8), hl);
  expect_read_error("corrupt: cut inside the header", variant("th", good, len, 8 + n / 2), hl);
  expect_read_error("corrupt: cut after the header (no data)", variant("tn", good, len, 8 + n), "file is truncated");
  expect_read_error("corrupt: cut inside the data", variant("td", good, len, 8 + n + (len - 8 - n) / 2),
                    "file is truncated");
  expect_read_error("corrupt: last byte missing", variant("t1", good, len, len - 1), "file is truncated");

  unsigned char *b = db_malloc(len + 4);
  memcpy(b, good, len);
  memset(b + len, 0, 4);
  write_bytes(tpath("trail"), b, len + 4);
  expect_read_error("corrupt: trailing bytes after the data", tpath("trail"), "4 unexpected bytes after the end of the data");
  unsigned long long big = len; /* header length = file size */
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(big >> (8 * i));
  write_bytes(tpath("hbig"), b, len);
  snprintf(hl, sizeof hl, "header length %llu is larger than the rest of the file (%zu bytes)", big, len - 8);
  expect_read_error("corrupt: header length larger than the file", tpath("hbig"), hl);
  big = 1ull << 40;
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(big >> (8 * i));
  write_bytes(tpath("hhuge"), b, len);
  expect_read_error("corrupt: header length 2^40 exceeds the 100 MB limit", tpath("hhuge"),
                    "header length 1099511627776 exceeds the limit");
  memcpy(b, good, len);
  char *colon = memchr(b + 8, ':', n);
  *colon = ';';
  write_bytes(tpath("badjson"), b, len);
  expect_read_error("corrupt: a byte of the header changed (invalid JSON)", tpath("badjson"),
                    "invalid JSON header: line 1, column");
  free(b);
}

static void test_bad_headers(void) {
  float d[8] = {0};
  const struct { const char *label, *header; size_t bytes; const char *problem; } cases[] = {
      {"corrupt: unterminated JSON", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8,
       "invalid JSON header: line 1, column 53 (byte 53): '}' expected near end of file"},
      {"corrupt: header is not an object", "[1, 2]", 0, "the header is a JSON array, not an object"},
      {"corrupt: dtype F16", "{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8,
       "tensor 'w' has dtype F16; only F32 is supported"},
      {"corrupt: missing dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'w': missing or non-string \"dtype\""},
      {"corrupt: shape/offset mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
       "tensor 'w': its shape needs 24 bytes but data_offsets [0, 20] span 20"},
      {"corrupt: negative dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
       "tensor 'w': shape[0] is not an integer"},
      {"corrupt: fractional dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
       "tensor 'w': shape[0] is not an integer"},
      {"corrupt: 5 dimensions", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
       "tensor 'w' has 5 dimensions"},
      {"corrupt: missing data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'w': \"data_offsets\" must be"},
      {"corrupt: end before begin", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
       "tensor 'w': \"data_offsets\" must be"},
      {"corrupt: overlapping offsets",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
       24, "tensors 'a' [0, 16] and 'b' [8, 24] overlap"},
      {"corrupt: same offsets twice",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
       8, "tensors 'a' [0, 8] and 'b' [0, 8] overlap"},
      {"corrupt: gap between tensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
       20, "4 bytes of the data buffer before tensor 'b' [12, 20] belong to no tensor"},
      {"corrupt: offsets past the data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
       "file is truncated"},
      {"corrupt: non-string metadata", "{\"__metadata__\":{\"step\":3}}", 0,
       "\"__metadata__\" value of \"step\" is a JSON number, not a string"},
      {"corrupt: duplicate tensor names",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       8, "invalid JSON header: line 1, column 57 (byte 57): duplicate object key near '\"a\"'"},
      {"corrupt: duplicate metadata keys", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
       "invalid JSON header: line 1, column 28 (byte 28): duplicate object key near '\"k\"'"},
      {"corrupt: garbage after the header object", "{} x", 0, "invalid JSON header: line 1, column 4 (byte 4): end of file expected"},
      {"corrupt: invalid UTF-8 in a name", "{\"\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
       "invalid JSON header: line 1, column 2 (byte 2): unable to decode byte 0xff"},
      {"corrupt: \\u0000 in a metadata value", "{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0, "\\u0000 is not allowed"},
      {"corrupt: integer out of range", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 4,
       "too big integer"},
      {"corrupt: metadata is not an object", "{\"__metadata__\":[\"a\"]}", 0, "\"__metadata__\" is a JSON array, not an object"},
      {"corrupt: entry is not an object", "{\"w\":[1]}", 0, "tensor 'w': entry is a JSON array, not an object"},
      {"corrupt: shape is not an array", "{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
       "tensor 'w': missing or non-array \"shape\""},
      {"corrupt: dtype is not a string", "{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
       "tensor 'w': missing or non-string \"dtype\""},
      {"corrupt: three data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
       "tensor 'w': \"data_offsets\" must be"},
      {"corrupt: negative data offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-4,-4]}}", 0,
       "tensor 'w': \"data_offsets\" must be"},
      {"corrupt: real-valued data offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]}}", 8,
       "tensor 'w': \"data_offsets\" must be"},
      {"corrupt: dimension above INT_MAX", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483648,0],\"data_offsets\":[0,0]}}", 0,
       "tensor 'w': shape[0] is not an integer in [0, 2147483647]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "bad%zu", i);
    make_raw(tpath(name), cases[i].header, d, cases[i].bytes);
    expect_read_error(cases[i].label, tpath(name), cases[i].problem);
  }
  expect_read_error("corrupt: missing file", tpath("does-not-exist"), "cannot open: No such file or directory");
  expect_read_error("corrupt: a directory is not a checkpoint", tdir, "not a regular file");

  /* a NUL byte inside the header, and a nesting bomb (jansson stops at depth 2048) */
  const char nul_hdr[8] = {'{', '}', ' ', 0, ' ', ' ', ' ', ' '};
  unsigned char raw[8 + 8];
  for (int i = 0; i < 8; i++) raw[i] = i ? 0 : 8;
  memcpy(raw + 8, nul_hdr, 8);
  write_bytes(tpath("nul"), raw, sizeof raw);
  expect_read_error("corrupt: a NUL byte inside the header", tpath("nul"), "invalid JSON header: line 1, column");
  static char bomb[100001];
  memset(bomb, '[', 100000);
  make_raw(tpath("bomb"), bomb, NULL, 0);
  expect_read_error("corrupt: a nesting bomb of 100000 '[' fails cleanly", tpath("bomb"), "maximum parsing depth reached");
  memset(bomb, 0, sizeof bomb);
}

static void test_write_validation(void) {
  float x[4] = {1, 2, 3, 4};
  const char *p = tpath("invalid.safetensors");
  st_tensor_in t5 = {"w", 5, {1, 1, 1, 4}, x}, tneg = {"w", 2, {2, -2}, x}, tnull = {"w", 1, {4}, NULL},
               tmeta = {"__metadata__", 1, {4}, x}, dup[2] = {{"w", 1, {4}, x}, {"w", 1, {4}, x}};
  const char *badmeta[] = {"k", NULL};
  TH_EXPECT_ERROR("st_write: 5 dimensions rejected", "tensor 'w' has 5 dimensions", st_write(p, &t5, 1, NULL, 0));
  TH_EXPECT_ERROR("st_write: negative dimension rejected", "negative dimension", st_write(p, &tneg, 1, NULL, 0));
  TH_EXPECT_ERROR("st_write: NULL data rejected", "tensor 'w' has no data", st_write(p, &tnull, 1, NULL, 0));
  TH_EXPECT_ERROR("st_write: a tensor named __metadata__ rejected", "cannot name a tensor", st_write(p, &tmeta, 1, NULL, 0));
  TH_EXPECT_ERROR("st_write: duplicate names rejected", "tensor name \"w\" appears twice", st_write(p, dup, 2, NULL, 0));
  const char *dupmeta[] = {"k", "1", "k", "2"}, *utfmeta[] = {"k", "caf\xe9"};
  TH_EXPECT_ERROR("st_write: duplicate metadata keys rejected", "metadata key \"k\" appears twice",
                  st_write(p, dup, 1, dupmeta, 2));
  TH_EXPECT_ERROR("st_write: a metadata value that is not UTF-8 rejected", "metadata value of \"k\" is not valid UTF-8",
                  st_write(p, dup, 1, utfmeta, 1));
  st_tensor_in tutf = {"caf\xe9", 1, {4}, x};
  TH_EXPECT_ERROR("st_write: a tensor name that is not UTF-8 rejected", "is not valid UTF-8", st_write(p, &tutf, 1, NULL, 0));
  TH_EXPECT_ERROR("st_write: NULL metadata value rejected", "metadata pair 0 has a NULL value", st_write(p, dup, 1, badmeta, 1));
  struct stat st;
  th_check(stat(p, &st) != 0 && count_tmp(tdir) == 0, "st_write: invalid input leaves no file behind", "file exists");
}

/* ================================================================ atomic writes */

/* a checkpoint with one tensor x = v, v+1, ..., v+n-1 (n <= 100000) */
static void one_tensor(const char *path, float v, int n) {
  static float x[100000];
  for (int i = 0; i < n; i++) x[i] = v + (float)i;
  st_tensor_in t = {"x", 1, {n}, x};
  st_write(path, &t, 1, NULL, 0);
}

/* An st_write that must fail in the middle of writing the data: the file size
 * limit makes write(2) fail with EFBIG (SIGXFSZ ignored meanwhile). The limit
 * is lifted before anything is printed. */
static void test_failed_data_write(const char *path) {
  size_t len;
  unsigned char *old = (unsigned char *)read_text_file(path, &len);
  struct rlimit saved, lim;
  getrlimit(RLIMIT_FSIZE, &saved);
  lim = saved;
  lim.rlim_cur = 64 * 1024;
  void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
  jmp_buf trap;
  volatile int failed = 0;
  fflush(stdout);
  setrlimit(RLIMIT_FSIZE, &lim);
  db_trap_errors(&trap);
  if (setjmp(trap) == 0) one_tensor(path, 7, 100000); /* 400 KB */
  else failed = 1;
  db_trap_errors(NULL);
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, oldsig);
  char needle[PATH_MAX + 64];
  snprintf(needle, sizeof needle, "checkpoint %s: ", path);
  th_check(failed && strstr(db_last_error(), needle) && strstr(db_last_error(), strerror(EFBIG)),
           "atomic: a write failing mid-data (file size limit) is reported", "%s", failed ? db_last_error() : "no error");
  th_check(same_file(path, old, len) && count_tmp(tdir) == 0, "atomic: ... and leaves the old file intact, no temp file",
           "old file changed or temp file left");
  free(old);
}

static void test_atomic(void) {
  char needle[PATH_MAX + 128];
  const char *nodir = tpath("no-such-dir/ckpt.safetensors");
  snprintf(needle, sizeof needle, "checkpoint %s: No such file or directory (creating the temporary file %s.tmp.%ld)",
           nodir, nodir, (long)getpid());
  TH_EXPECT_ERROR("atomic: writing into a missing directory fails naming the path", needle, one_tensor(nodir, 1, 4));
  struct stat st;
  th_check(stat(tpath("no-such-dir"), &st) != 0, "atomic: ... and creates nothing", "directory exists");

  const char *p = tpath("replace.safetensors");
  one_tensor(p, 1, 4);
  one_tensor(p, 10, 6);
  st_file f = st_read(p);
  th_check(f.n == 1 && f.tensors[0].numel == 6 && f.tensors[0].data[5] == 15, "atomic: a successful write replaces an old file",
           "old content");
  st_free(&f);

  size_t len;
  unsigned char *old = (unsigned char *)read_text_file(p, &len);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
  mkdir(tmp, 0755); /* the temporary file cannot be created */
  snprintf(needle, sizeof needle, "checkpoint %s: Is a directory (creating the temporary file %s)", p, tmp);
  TH_EXPECT_ERROR("atomic: failing to create the temporary file is reported", needle, one_tensor(p, 3, 4));
  th_check(same_file(p, old, len), "atomic: ... and leaves the old file intact", "changed");
  rmdir(tmp);
  free(old);

  const char *adir = tpath("adir");
  mkdir(adir, 0755);
  snprintf(needle, sizeof needle, "checkpoint %s: it exists and is not a regular file", adir);
  TH_EXPECT_ERROR("atomic: a directory in the way is refused", needle, one_tensor(adir, 1, 4));
  th_check(stat(adir, &st) == 0 && S_ISDIR(st.st_mode) && count_tmp(tdir) == 0,
           "atomic: ... the directory stays, the temporary file is removed", "left over");

  /* a name that fits but whose temporary name exceeds NAME_MAX */
  char longname[256];
  memset(longname, 'L', 250);
  memcpy(longname + 250, ".st", 4);
  const char *lp = tpath(longname);
  write_bytes(lp, "old", 3);
  snprintf(needle, sizeof needle, "checkpoint %s: File name too long (creating the temporary file", lp);
  TH_EXPECT_ERROR("atomic: a temporary name too long for the file system fails", needle, one_tensor(lp, 1, 4));
  th_check(same_file(lp, (const unsigned char *)"old", 3), "atomic: ... and leaves the old file intact", "changed");

  test_failed_data_write(p);

  const char *txt = tpath("manifest.json");
  atomic_write_file(txt, "{\"a\": 1}\n", 9);
  atomic_write_file(txt, "{\"a\": 2}\n", 9);
  size_t n;
  char *s = read_text_file(txt, &n);
  th_check(n == 9 && !strcmp(s, "{\"a\": 2}\n"), "atomic_write_file / read_text_file round trip and replace", "%s", s);
  free(s);
  snprintf(needle, sizeof needle, "cannot read %s: No such file", tpath("nope.json"));
  TH_EXPECT_ERROR("read_text_file: a missing file names the path", needle, free(read_text_file(tpath("nope.json"), NULL)));
  snprintf(needle, sizeof needle, "cannot write %s: No such file or directory (creating the temporary file", nodir);
  TH_EXPECT_ERROR("atomic_write_file: a missing directory names the path", needle, atomic_write_file(nodir, "x", 1));
  th_check(count_tmp(tdir) == 0 && count_tmp(adir) == 0, "atomic: no *.tmp.* files left behind", "found some");
}

/* ================================================================ file_io */

/* the bytes of a file equal want[0..n) */
static int file_is(const char *path, const void *want, size_t n) { return same_file(path, want, n); }

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static void test_endian(void) {
  unsigned char b[8];
  static const unsigned char le32[4] = {0x04, 0x03, 0x02, 0x01}, be32[4] = {0x01, 0x02, 0x03, 0x04},
                             le64[8] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}, le16[2] = {0x34, 0x12};
  put_le32(b, 0x01020304u);
  th_check(!memcmp(b, le32, 4) && get_le32(le32) == 0x01020304u, "endian: put_le32/get_le32 0x01020304 <-> 04 03 02 01",
           "%02x %02x %02x %02x", b[0], b[1], b[2], b[3]);
  put_be32(b, 0x01020304u);
  th_check(!memcmp(b, be32, 4) && get_be32(be32) == 0x01020304u && get_be32(le32) == 0x04030201u,
           "endian: put_be32/get_be32 0x01020304 <-> 01 02 03 04", "%02x %02x %02x %02x", b[0], b[1], b[2], b[3]);
  put_le64(b, 0x0102030405060708ull);
  th_check(!memcmp(b, le64, 8) && get_le64(le64) == 0x0102030405060708ull,
           "endian: put_le64/get_le64 0x0102030405060708 <-> 08 07 .. 01", "%02x .. %02x", b[0], b[7]);
  put_le64(b, ~0ull);
  th_check(get_le64(b) == ~0ull && b[7] == 0xff, "endian: 2^64-1 round trip", "%llx", (unsigned long long)get_le64(b));
  put_le16(b, 0x1234);
  th_check(!memcmp(b, le16, 2) && get_le16(le16) == 0x1234, "endian: put_le16/get_le16 0x1234 <-> 34 12", "%02x %02x",
           b[0], b[1]);
  /* IEEE-754 patterns: 1.0 = 0x3f800000, -2.0 = 0xc0000000, -0.0 = 0x80000000, a NaN payload */
  static const unsigned char one[4] = {0x00, 0x00, 0x80, 0x3f}, mtwo[4] = {0x00, 0x00, 0x00, 0xc0},
                             mzero[4] = {0x00, 0x00, 0x00, 0x80}, nan1[4] = {0x01, 0x00, 0xc0, 0x7f};
  int ok = 1;
  put_le_f32(b, 1.0f), ok &= !memcmp(b, one, 4);
  put_le_f32(b, -2.0f), ok &= !memcmp(b, mtwo, 4);
  put_le_f32(b, -0.0f), ok &= !memcmp(b, mzero, 4);
  float z = get_le_f32(mzero), nan = get_le_f32(nan1);
  uint32_t nbits;
  memcpy(&nbits, &nan, 4);
  ok &= get_le_f32(one) == 1.0f && get_le_f32(mtwo) == -2.0f && z == 0 && signbit(z) && nbits == 0x7fc00001u;
  th_check(ok, "endian: put_le_f32/get_le_f32 (1, -2, -0, NaN payload) bit-exact", "mismatch");

  unsigned char w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  static const unsigned char sw[8] = {4, 3, 2, 1, 8, 7, 6, 5};
  bswap32_n(w, 2);
  th_check(!memcmp(w, sw, 8), "endian: bswap32_n reverses each 4-byte word", "%d %d %d %d", w[0], w[1], w[2], w[3]);
  /* little-endian bytes -> host floats, whatever the host */
  float f[2];
  memcpy(f, one, 4);
  memcpy(f + 1, mtwo, 4);
  le32_to_host(f, 2);
  const uint32_t probe = 0x01020304u;
  th_check(f[0] == 1.0f && f[1] == -2.0f && host_is_little_endian() == (*(const unsigned char *)&probe == 4),
           "endian: le32_to_host turns LE bytes into host floats; host_is_little_endian agrees", "%g %g", f[0], f[1]);
}

static void test_file_io(void) {
  char needle[2 * PATH_MAX + 128], tmp[PATH_MAX + 32], p[PATH_MAX], d[PATH_MAX], ro[PATH_MAX], rof[PATH_MAX];
  snprintf(p, sizeof p, "%s", tpath("io.bin")); /* copies: tpath's buffers rotate */
  snprintf(d, sizeof d, "%s", tpath("io-dir"));
  snprintf(ro, sizeof ro, "%s", tpath("ro"));
  snprintf(rof, sizeof rof, "%s", tpath("ro/keep.txt"));
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());

  /* streaming: the temporary has the documented name while open, PATH appears at commit */
  atomic_file f;
  atomic_open(&f, p, NULL);
  int tmp_seen = exists(tmp) && !exists(p);
  atomic_write(&f, "ab", 2);
  const float fl[2] = {1.0f, -2.0f};
  atomic_write_le32(&f, fl, 2);
  atomic_write(&f, "", 0);
  atomic_commit(&f);
  static const unsigned char want[10] = {'a', 'b', 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
  th_check(tmp_seen, "file_io: while open, only PATH.tmp.<pid> exists", "tmp %d, path %d", exists(tmp), exists(p));
  th_check(file_is(p, want, 10) && !exists(tmp) && !f.tmp, "file_io: open/write/write_le32/commit writes the bytes, LE floats",
           "wrong content");
  struct stat st;
  mode_t um = umask(0);
  umask(um);
  th_check(stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == (0666 & ~um),
           "file_io: the file gets the usual mode (0666 & ~umask)", "mode %o", (unsigned)(st.st_mode & 0777));

  /* abort: the old file stays, the temporary goes */
  atomic_open(&f, p, NULL);
  atomic_write(&f, "new", 3);
  atomic_abort(&f);
  atomic_abort(&f); /* twice is fine */
  th_check(file_is(p, want, 10) && !exists(tmp), "file_io: abort keeps the old file and removes the temporary", "changed");

  /* atomic_fail: the caller's reason, the old file intact, no temporary */
  atomic_open(&f, p, "widget");
  atomic_write(&f, "new", 3);
  snprintf(needle, sizeof needle, "widget %s: encoder said no (42)", p);
  TH_EXPECT_ERROR("file_io: atomic_fail reports WHAT PATH: reason", needle, atomic_fail(&f, "encoder said %s (%d)", "no", 42));
  th_check(file_is(p, want, 10) && !exists(tmp), "file_io: ... old file intact, no temporary", "changed");

  /* a target that is a directory is refused, before anything is created */
  mkdir(d, 0755);
  snprintf(needle, sizeof needle, "cannot write %s: it exists and is not a regular file", d);
  TH_EXPECT_ERROR("file_io: a directory as the target is refused", needle, atomic_write_file(d, "x", 1));
  th_check(stat(d, &st) == 0 && S_ISDIR(st.st_mode) && count_tmp(tdir) == 0, "file_io: ... it stays a directory, no temporary",
           "changed");
  /* a FIFO of our own stands for devices: were the check broken, the rename
   * would replace a node in tdir, never a real device */
  char fifo[PATH_MAX];
  snprintf(fifo, sizeof fifo, "%s", tpath("io-fifo"));
  if (mkfifo(fifo, 0644) != 0) db_fail("formats tests: mkfifo: %s", strerror(errno));
  snprintf(needle, sizeof needle, "cannot write %s: it exists and is not a regular file", fifo);
  TH_EXPECT_ERROR("file_io: a FIFO (or device) as the target is refused", needle, atomic_write_file(fifo, "x", 1));
  th_check(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "file_io: ... the FIFO stays", "replaced");
  TH_EXPECT_ERROR("file_io: an empty path is refused", "cannot write : empty file name", atomic_write_file("", "x", 1));

  /* the target directory is not writable: only meaningful without root's override */
  mkdir(ro, 0755);
  atomic_write_file(rof, "old", 3);
  chmod(ro, 0555);
  if (geteuid() != 0) {
    snprintf(needle, sizeof needle, "cannot write %s: Permission denied (creating the temporary file", rof);
    TH_EXPECT_ERROR("file_io: a read-only directory fails naming the path", needle, atomic_write_file(rof, "new", 3));
  } else {
    /* root ignores directory permissions: try it in a child turned into nobody */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      jmp_buf ctrap;
      if (chdir(ro) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
      db_trap_errors(&ctrap);
      if (setjmp(ctrap) == 0) {
        atomic_write_file("keep.txt", "new", 3); /* ro is r-x for others: only the write is denied */
        _exit(1); /* no error */
      }
      _exit(strstr(db_last_error(), "cannot write keep.txt: Permission denied (creating the temporary file keep.txt.tmp.")
                ? 0 : 2);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    th_check(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "file_io: a read-only directory fails naming the path (as nobody)",
             "child exit status %d (1: no error, 2: wrong message, 3: could not drop root)",
             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  th_check(file_is(rof, "old", 3) && count_tmp(ro) == 0, "file_io: ... the old file is intact, no temporary", "changed");
  chmod(ro, 0755);

  /* a write failing mid-file (file size limit): old file intact, no temporary */
  static char big[256 * 1024];
  memset(big, 'z', sizeof big);
  struct rlimit saved, lim;
  getrlimit(RLIMIT_FSIZE, &saved);
  lim = saved;
  lim.rlim_cur = 64 * 1024;
  void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
  jmp_buf trap;
  volatile int failed = 0;
  fflush(stdout);
  setrlimit(RLIMIT_FSIZE, &lim);
  db_trap_errors(&trap);
  if (setjmp(trap) == 0) atomic_write_file(p, big, sizeof big);
  else failed = 1;
  db_trap_errors(NULL);
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, oldsig);
  snprintf(needle, sizeof needle, "cannot write %s: %s (writing the temporary file %s)", p, strerror(EFBIG), tmp);
  th_check(failed && strstr(db_last_error(), needle), "file_io: a write failing mid-file is reported with errno and stage",
           "%s", failed ? db_last_error() : "no error");
  th_check(file_is(p, want, 10) && !exists(tmp), "file_io: ... the old file is intact, no temporary", "changed");

  /* a symbolic link planted at the temporary name is not followed */
  const char *victim = tpath("victim.txt");
  atomic_write_file(victim, "victim", 6);
  if (symlink(victim, tmp) != 0) db_fail("formats tests: symlink: %s", strerror(errno));
  snprintf(needle, sizeof needle, "cannot write %s: ", p);
  TH_EXPECT_ERROR("file_io: a symlink at the temporary name is not followed", needle, atomic_write_file(p, "new", 3));
  th_check(file_is(victim, "victim", 6) && file_is(p, want, 10) && lstat(tmp, &st) == 0 && S_ISLNK(st.st_mode),
           "file_io: ... the link target and the old file are untouched, the link (not ours) stays", "changed");
  unlink(tmp);

  /* a leftover regular file of an earlier process with our pid is reused */
  write_bytes(tmp, "stale stale stale", 17);
  atomic_write_file(p, "fresh", 5);
  th_check(file_is(p, "fresh", 5) && !exists(tmp), "file_io: a stale PATH.tmp.<pid> file is overwritten and consumed",
           "wrong content or temporary left");

  /* read_text_file */
  size_t n = 99;
  char *s = read_text_file(tpath("victim.txt"), &n);
  th_check(n == 6 && !strcmp(s, "victim"), "file_io: read_text_file returns the bytes, NUL-terminated", "%zu", n);
  free(s);
  write_bytes(tpath("empty.txt"), "", 0);
  s = read_text_file(tpath("empty.txt"), &n);
  th_check(n == 0 && s && s[0] == 0, "file_io: read_text_file of an empty file", "%zu", n);
  free(s);
  s = read_text_file(tpath("io.bin"), &n);
  th_check(n == 5, "file_io: read_text_file of a file that was replaced", "%zu", n);
  free(s);
  {
    static char large[300000];
    for (size_t i = 0; i < sizeof large; i++) large[i] = (char)('a' + i % 26);
    atomic_write_file(tpath("large.txt"), large, sizeof large);
    s = read_text_file(tpath("large.txt"), &n);
    th_check(n == sizeof large && !memcmp(s, large, n) && s[n] == 0, "file_io: 300000-byte round trip", "%zu", n);
    free(s);
  }
  snprintf(needle, sizeof needle, "cannot read %s: Is a directory", d);
  TH_EXPECT_ERROR("file_io: read_text_file of a directory fails naming it", needle, free(read_text_file(d, NULL)));
  th_check(count_tmp(tdir) == 0 && count_tmp(ro) == 0, "file_io: no *.tmp.* files left behind", "found some");
}

/* A tensor name and metadata with characters JSON must escape. */
static void test_escaped_names(void) {
  const char *name = "q\"uote\\back/slash\nnew\ttab\x01 caf\xc3\xa9 \xf0\x9f\x98\x80";
  float x[2] = {5, 6};
  st_tensor_in t = {name, 1, {2}, x};
  const char *meta[] = {"k\"ey\\", "v\nal\x1f\xe2\x82\xac", "", ""};
  const char *p = tpath("escaped.safetensors");
  st_write(p, &t, 1, meta, 2);
  st_file f = st_read(p);
  th_check(f.n == 1 && !strcmp(f.tensors[0].name, name) && f.tensors[0].data[1] == 6 && f.n_meta == 2 &&
               st_meta(&f, "k\"ey\\") && !strcmp(st_meta(&f, "k\"ey\\"), meta[1]) && st_meta(&f, "") && !*st_meta(&f, ""),
           "safetensors: names and metadata needing JSON escapes (and empty ones) round trip", "n %d, n_meta %d", f.n, f.n_meta);
  st_free(&f);
}

void tests_formats(void) {
  make_tdir();
  test_endian();
  test_file_io();
  float *data[NT];
  fill(data);
  const char *ref = tpath("ref.safetensors");
  write_reference(ref, data);
  test_round_trip(ref, data);
  test_layout(ref, data);
  test_foreign_order();
  test_escaped_names();
  size_t len;
  unsigned char *good = (unsigned char *)read_text_file(ref, &len);
  unsigned long long n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | good[i];
  test_truncation(good, len, n);
  free(good);
  test_bad_headers();
  test_write_validation();
  test_atomic();
  for (int i = 0; i < NT; i++) free(data[i]);
  th_check(nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "formats: temporary directory removed", "%s", tdir);
}
