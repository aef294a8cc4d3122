/* Checkpoint files: the JSON reader and writer, safetensors round trip and
 * byte layout, rejection of corrupt files, and atomic writes. Host only. */
#include "harness.h"
#include "../data/safetensors.h"
#include <errno.h>
#include <dirent.h>
#include <float.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char tdir[PATH_MAX]; /* temporary directory of this suite */

/* tdir/name, in one of a few rotating buffers */
static const char *tpath(const char *name) {
  static char buf[8][PATH_MAX];
  static int k;
  char *p = buf[k++ % 8];
  if (snprintf(p, PATH_MAX, "%s/%s", tdir, name) >= PATH_MAX) db_fail("checkpoint tests: path too long");
  return p;
}

static void make_tdir(void) {
  const char *base = getenv("DBLOCKS_CACHE_DIR");
  if (base && strcmp(base, "off")) {
    snprintf(tdir, sizeof tdir, "%s/checkpoint-test-XXXXXX", base);
    if (mkdtemp(tdir)) return;
  }
  snprintf(tdir, sizeof tdir, "/tmp/dblocks-checkpoint-test-XXXXXX");
  if (!mkdtemp(tdir)) db_fail("checkpoint tests: cannot create a temporary directory: %s", strerror(errno));
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)flag; (void)ftw;
  return remove(p);
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f)) db_fail("checkpoint tests: cannot write %s", path);
}

/* A hand-made file: u64 length of `header` (as given, no padding), header, data. */
static void make_raw(const char *path, const char *header, const void *data, size_t nbytes) {
  size_t h = strlen(header);
  unsigned char *b = malloc(8 + h + nbytes + 1);
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

/* ================================================================ JSON */

static json_value *parse(const char *s, char *err) { return json_parse(s, strlen(s), err, 256); }

static void expect_json_error(const char *label, const char *text, size_t len, const char *needle) {
  char err[256];
  json_value *v = json_parse(text, len, err, sizeof err);
  th_check(!v && strstr(err, needle), label, "expected an error containing \"%s\", got: %s", needle,
           v ? "success" : err);
  json_free(v);
}
#define JSON_ERR(label, text, needle) expect_json_error(label, text, strlen(text), needle)

static void test_json_reader(void) {
  char err[256];
  json_value *v = parse(" {\"a\": {\"b\": [1, 2, {\"c\": null}], \"d\": true},\n \"e\": false, \"s\": \"x\", \"z\": []} ", err);
  const json_value *b = json_get(json_get(v, "a"), "b");
  th_check(v && json_len(v) == 4 && json_len(b) == 3 && json_num(json_at(b, 1), 0) == 2 &&
               json_get(json_at(b, 2), "c") && json_get(json_at(b, 2), "c")->type == JSON_NULL &&
               json_get(json_get(v, "a"), "d")->boolean == 1 && json_get(v, "e")->type == JSON_BOOL &&
               !json_get(v, "e")->boolean && !strcmp(json_str(json_get(v, "s")), "x") &&
               json_get(v, "z")->type == JSON_ARRAY && json_len(json_get(v, "z")) == 0 && !json_get(v, "nope") &&
               !json_at(b, 3) && !json_str(json_get(v, "e")),
           "json: nested objects and arrays", "%s", v ? "wrong tree" : err);
  json_free(v);

  v = parse("\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\f u\\u00e9 \\u20AC \\ud83d\\ude00 raw\xc3\xa9\"", err);
  const char *want = "q\"b\\s/n\nt\tr\rb\bf\f u\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 raw\xc3\xa9";
  th_check(v && json_str(v) && !strcmp(json_str(v), want), "json: escapes, \\u00e9, \\u20AC and a surrogate pair to UTF-8",
           "got \"%s\"", v ? json_str(v) : err);
  json_free(v);

  v = parse("[-1.5e-3, 0, -0, 12345678901, 1E2, 2.5, 1e-400, 9007199254740993]", err);
  long long i0 = -7, i3 = 0, i4 = 0, i7 = 0;
  th_check(v && json_num(json_at(v, 0), 0) == -1.5e-3 && json_int(json_at(v, 1), &i0) && i0 == 0 &&
               json_int(json_at(v, 3), &i3) && i3 == 12345678901LL && !json_int(json_at(v, 4), &i4) &&
               json_num(json_at(v, 4), 0) == 100 && !json_int(json_at(v, 5), &i4) &&
               json_num(json_at(v, 6), 1) == 0 && !json_int(json_at(v, 7), &i7) && json_at(v, 0)->integral == 0,
           "json: numbers (-1.5e-3, integers, exponents; json_int only for exact integers)", "%s", v ? "wrong values" : err);
  json_free(v);

  JSON_ERR("json: trailing garbage is an error", "{\"a\": 1} x", "line 1, column 10 (byte 9): expected the end of the input");
  JSON_ERR("json: unterminated string", "{\"a\": \"abc", "column 7 (byte 6): unterminated string");
  JSON_ERR("json: missing ':' names position and expectation", "{\"a\" 1}", "line 1, column 6 (byte 5): expected ':' after an object key, got '1'");
  JSON_ERR("json: error position counts lines", "{\n  \"a\": 1,\n  \"b\": tru\n}", "line 3, column 8");
  JSON_ERR("json: missing ',' between members", "{\"a\": 1 \"b\": 2}", "expected ',' or '}' after an object member, got '\"'");
  JSON_ERR("json: trailing comma in an array", "[1,]", "expected a value, got ']'");
  JSON_ERR("json: empty input", "  ", "expected a value, got end of input");
  JSON_ERR("json: truncated object", "{\"a\": [1, 2", "expected ',' or ']' after an array element, got end of input");
  JSON_ERR("json: leading zeros", "012", "leading zeros");
  JSON_ERR("json: '1.' is not a number", "1.", "expected a digit after the decimal point");
  JSON_ERR("json: '-' is not a number", "-", "expected a digit");
  JSON_ERR("json: overflowing number", "1e400", "out of the range");
  JSON_ERR("json: bad literal", "nul", "expected a value");
  JSON_ERR("json: invalid escape", "\"a\\x\"", "invalid escape sequence");
  JSON_ERR("json: short \\u escape", "\"\\u12\"", "expected 4 hex digits");
  JSON_ERR("json: lone low surrogate", "\"\\udc00\"", "lone UTF-16 low surrogate");
  JSON_ERR("json: high surrogate without its pair", "\"\\ud800x\"", "not followed by a \\u low surrogate");
  JSON_ERR("json: \\u0000 rejected", "\"a\\u0000\"", "\\u0000 is not supported");
  JSON_ERR("json: raw control character in a string", "\"a\tb\"", "control character in string");
  JSON_ERR("json: invalid UTF-8", "\"a\xff\"", "invalid UTF-8");
  JSON_ERR("json: overlong UTF-8", "\"\xc0\xaf\"", "invalid UTF-8");
  JSON_ERR("json: duplicate keys", "{\"k\": 1, \"j\": 2, \"k\": 3}", "duplicate key \"k\"");
  JSON_ERR("json: non-string key", "{1: 2}", "expected a string key");
  expect_json_error("json: NUL byte inside the input", "[1,\0 2]", 7, "got byte 0x00");

  /* depth: 64 levels are fine, 65 and a bomb of 100000 are not */
  static char deep[100001];
  memset(deep, '[', 64);
  memset(deep + 64, ']', 64);
  v = json_parse(deep, 128, err, sizeof err);
  th_check(v != NULL, "json: 64 nested arrays are accepted", "%s", err);
  json_free(v);
  memset(deep, '[', 65);
  memset(deep + 65, ']', 65);
  expect_json_error("json: 65 nested arrays exceed the depth limit", deep, 130, "nesting deeper than 64 levels");
  memset(deep, '[', 100000);
  expect_json_error("json: a depth bomb of 100000 '[' fails cleanly", deep, 100000, "nesting deeper than 64 levels");
  memset(deep, 0, sizeof deep);
}

static void test_json_writer(void) {
  const char *nasty = "quote\" back\\slash /\n\t\r\b\f\x01\x1f caf\xc3\xa9 \xf0\x9f\x98\x80";
  const double nums[] = {0.1, -1.5e-3, 1e300, 5e-324, 123456789, -0.0, 1.0 / 3};
  json_buf b = {0};
  json_buf_printf(&b, "{\"s\":");
  json_buf_string(&b, nasty);
  json_buf_printf(&b, ",\"n\":[");
  for (int i = 0; i < 7; i++) {
    if (i) json_buf_printf(&b, ",");
    json_buf_number(&b, nums[i]);
  }
  json_buf_printf(&b, "],\"nan\":");
  json_buf_number(&b, NAN);
  json_buf_printf(&b, ",\"e\":");
  json_buf_string(&b, "");
  json_buf_printf(&b, "}");
  char err[256];
  json_value *v = json_parse(b.data, b.len, err, sizeof err);
  int nums_ok = v && json_len(json_get(v, "n")) == 7;
  for (int i = 0; nums_ok && i < 7; i++) nums_ok = json_num(json_at(json_get(v, "n"), i), 1) == nums[i];
  th_check(v && !strcmp(json_str(json_get(v, "s")), nasty) && !strcmp(json_str(json_get(v, "e")), ""),
           "json writer: escaped strings read back identical", "%s", v ? b.data : err);
  th_check(nums_ok && signbit(json_num(json_at(json_get(v, "n"), 5), 0)), "json writer: numbers read back bit-exact",
           "%s", b.data);
  th_check(v && json_get(v, "nan")->type == JSON_NULL, "json writer: NaN is written as null", "%s", b.data);
  th_check(strstr(b.data, "0.1,") != NULL, "json writer: shortest round-trip form (0.1, not 0.10000000000000001)", "%s",
           b.data);
  json_free(v);
  json_buf_free(&b);
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
    double *tmp = malloc((n + 1) * sizeof *tmp);
    data[i] = malloc((n + 1) * sizeof **data);
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

/* The layout checked by hand: u64 LE length, padded JSON, contiguous data. */
static void test_layout(const char *path, float **data) {
  size_t len;
  unsigned char *b = (unsigned char *)read_text_file(path, &len);
  unsigned long long n = 0, total = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
  for (int i = 0; i < NT; i++) total += 4 * numel_of(i);
  th_check(n % 8 == 0 && len == 8 + n + total, "safetensors: header length is a multiple of 8, file = 8 + N + data",
           "N %llu, file %zu, data %llu", n, len, total);
  char err[256];
  json_value *h = json_parse((char *)b + 8, n, err, sizeof err);
  int ok = h && h->type == JSON_OBJECT && json_len(h) == NT + 1 && b[8] == '{';
  size_t end = n;
  while (end > 0 && b[8 + end - 1] == ' ') end--;
  ok = ok && b[8 + end - 1] == '}' && n - end < 8;
  unsigned long long off = 0;
  for (int i = 0; ok && i < NT; i++) {
    const json_value *e = json_get(h, names[i]), *sh = json_get(e, "shape"), *o = json_get(e, "data_offsets");
    long long lo, hi, d;
    ok = json_str(json_get(e, "dtype")) && !strcmp(json_str(json_get(e, "dtype")), "F32") &&
         json_len(sh) == (size_t)ndims[i] && json_len(o) == 2 && json_int(json_at(o, 0), &lo) &&
         json_int(json_at(o, 1), &hi) && (unsigned long long)lo == off && (unsigned long long)hi == off + 4 * numel_of(i);
    for (int k = 0; ok && k < ndims[i]; k++) ok = json_int(json_at(sh, (size_t)k), &d) && d == shapes[i][k];
    /* little-endian float32 bytes at 8 + N + begin */
    for (size_t k = 0; ok && k < numel_of(i); k++) {
      uint32_t u;
      memcpy(&u, &data[i][k], 4);
      const unsigned char *p = b + 8 + n + off + 4 * k;
      ok = p[0] == (u & 0xff) && p[1] == (u >> 8 & 0xff) && p[2] == (u >> 16 & 0xff) && p[3] == u >> 24;
    }
    off += 4 * numel_of(i);
  }
  const json_value *m = json_get(h, "__metadata__");
  ok = ok && m && m->type == JSON_OBJECT && !strcmp(json_str(json_get(m, "step")), "1234");
  th_check(ok, "safetensors: header JSON has dtype/shape/data_offsets in write order, space padding, LE data",
           "%s", h ? (char *)b + 8 : err);
  json_free(h);
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

  unsigned char *b = malloc(len + 4);
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
       "invalid JSON header: line 1, column 54 (byte 53): expected ',' or '}' after an object member, got end of input"},
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
       8, "invalid JSON header: line 1, column 1 (byte 0): duplicate key \"a\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "bad%zu", i);
    make_raw(tpath(name), cases[i].header, d, cases[i].bytes);
    expect_read_error(cases[i].label, tpath(name), cases[i].problem);
  }
  expect_read_error("corrupt: missing file", tpath("does-not-exist"), "cannot open: No such file or directory");
  expect_read_error("corrupt: a directory is not a checkpoint", tdir, "not a regular file");
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
  TH_EXPECT_ERROR("st_write: duplicate names rejected", "duplicate key \"w\"", st_write(p, dup, 2, NULL, 0));
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
  snprintf(needle, sizeof needle, "checkpoint %s: cannot create the temporary file %s.tmp.", nodir, nodir);
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
  snprintf(needle, sizeof needle, "checkpoint %s: cannot create the temporary file", p);
  TH_EXPECT_ERROR("atomic: failing to create the temporary file is reported", needle, one_tensor(p, 3, 4));
  th_check(same_file(p, old, len), "atomic: ... and leaves the old file intact", "changed");
  rmdir(tmp);
  free(old);

  const char *adir = tpath("adir");
  mkdir(adir, 0755);
  snprintf(needle, sizeof needle, "checkpoint %s: cannot rename the temporary file", adir);
  TH_EXPECT_ERROR("atomic: a directory in the way fails at the rename", needle, one_tensor(adir, 1, 4));
  th_check(stat(adir, &st) == 0 && S_ISDIR(st.st_mode) && count_tmp(tdir) == 0,
           "atomic: ... the directory stays, the temporary file is removed", "left over");

  /* a name that fits but whose temporary name exceeds NAME_MAX */
  char longname[256];
  memset(longname, 'L', 250);
  memcpy(longname + 250, ".st", 4);
  const char *lp = tpath(longname);
  write_bytes(lp, "old", 3);
  snprintf(needle, sizeof needle, "checkpoint %s: cannot create the temporary file", lp);
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
  snprintf(needle, sizeof needle, "cannot write %s: cannot create the temporary file", nodir);
  TH_EXPECT_ERROR("atomic_write_file: a missing directory names the path", needle, atomic_write_file(nodir, "x", 1));
  th_check(count_tmp(tdir) == 0 && count_tmp(adir) == 0, "atomic: no *.tmp.* files left behind", "found some");
}

void tests_checkpoint(void) {
  test_json_reader();
  test_json_writer();
  make_tdir();
  float *data[NT];
  fill(data);
  const char *ref = tpath("ref.safetensors");
  write_reference(ref, data);
  test_round_trip(ref, data);
  test_layout(ref, data);
  test_foreign_order();
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
  th_check(nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "checkpoint: temporary directory removed", "%s", tdir);
}
