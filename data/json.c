/* Small strict JSON reader (DOM) and writer helper; see json.h. */
#include "json.h"
#include "../runtime/db.h"
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ reader */

typedef struct {
  const char *s;
  size_t len, pos;
  char *err;
  size_t errlen;
} parser;

/* "line L, column C (byte B): <message>[, got <what is at pos>]" */
static int vperr(parser *p, int got_it, const char *fmt, va_list ap) {
  if (!p->errlen) return -1;
  size_t line = 1, col = 1;
  for (size_t i = 0; i < p->pos && i < p->len; i++) {
    if (p->s[i] == '\n') line++, col = 1;
    else col++;
  }
  char msg[256], got[48] = "";
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (got_it && p->pos >= p->len) snprintf(got, sizeof got, ", got end of input");
  else if (got_it) {
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x20 && c < 0x7f) snprintf(got, sizeof got, ", got '%c'", c);
    else snprintf(got, sizeof got, ", got byte 0x%02x", c);
  }
  snprintf(p->err, p->errlen, "line %zu, column %zu (byte %zu): %s%s", line, col, p->pos, msg, got);
  return -1;
}

/* An error about what was found at pos (which the message names). */
static int perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(parser *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vperr(p, 1, fmt, ap);
  va_end(ap);
  return -1;
}

/* An error about the construct starting at `at` (no "got"). */
static int perr_at(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr_at(parser *p, size_t at, const char *fmt, ...) {
  va_list ap;
  p->pos = at;
  va_start(ap, fmt);
  vperr(p, 0, fmt, ap);
  va_end(ap);
  return -1;
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int peek(parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

/* Frees what v owns (not v itself). Safe on partially built values: every
 * container keeps n equal to the number of (zero-initialised) slots in use. */
static void free_contents(json_value *v) {
  free(v->string);
  for (size_t i = 0; i < v->n; i++) {
    free_contents(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  memset(v, 0, sizeof *v);
}

static int parse_value(parser *p, json_value *v, int depth);

/* Length of the valid UTF-8 sequence at s (at most `avail` bytes), or 0 if it
 * is not well-formed (overlong forms, surrogates and > U+10FFFF rejected). */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
  unsigned c = s[0];
  size_t n;
  unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
  if (c < 0x80) return 1;
  else if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else return 0;
  if (avail < n || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  return n;
}

static size_t utf8_put(char *o, uint32_t cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Four hex digits at pos (after "\u"); advances pos. */
static int parse_hex4(parser *p, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int c = peek(p), d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return perr(p, "expected 4 hex digits after \\u");
    v = v * 16 + (uint32_t)d;
    p->pos++;
  }
  *out = v;
  return 0;
}

/* The code point of a \uXXXX escape (pos after the 'u'), joining a UTF-16
 * surrogate pair written as two escapes. */
static int parse_u_escape(parser *p, uint32_t *cp) {
  size_t start = p->pos - 2;
  if (parse_hex4(p, cp)) return -1;
  if (*cp >= 0xdc00 && *cp <= 0xdfff) {
    return perr_at(p, start, "lone UTF-16 low surrogate \\u%04X", (unsigned)*cp);
  }
  if (*cp >= 0xd800 && *cp <= 0xdbff) {
    uint32_t lo;
    if (p->pos + 1 >= p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
      return perr_at(p, start, "UTF-16 high surrogate \\u%04X not followed by a \\u low surrogate", (unsigned)*cp);
    }
    p->pos += 2;
    if (parse_hex4(p, &lo)) return -1;
    if (lo < 0xdc00 || lo > 0xdfff) {
      return perr_at(p, start, "UTF-16 high surrogate \\u%04X followed by \\u%04X, not a low surrogate", (unsigned)*cp,
                  (unsigned)lo);
    }
    *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
  }
  if (*cp == 0) {
    return perr_at(p, start, "\\u0000 is not supported in strings");
  }
  return 0;
}

/* One escape sequence (pos at the backslash), appended to o; returns bytes written or -1. */
static int parse_escape(parser *p, char *o) {
  p->pos++;
  int c = peek(p);
  p->pos++;
  switch (c) {
    case '"': *o = '"'; return 1;
    case '\\': *o = '\\'; return 1;
    case '/': *o = '/'; return 1;
    case 'b': *o = '\b'; return 1;
    case 'f': *o = '\f'; return 1;
    case 'n': *o = '\n'; return 1;
    case 'r': *o = '\r'; return 1;
    case 't': *o = '\t'; return 1;
    case 'u': {
      uint32_t cp;
      if (parse_u_escape(p, &cp)) return -1;
      return (int)utf8_put(o, cp);
    }
    default:
      p->pos--;
      return perr(p, "invalid escape sequence in string (expected one of \\\"\\\\/bfnrtu after the backslash)");
  }
}

/* A string (pos at the opening quote) into a new NUL-terminated buffer.
 * The decoded text is never longer than the raw text, which sizes the buffer. */
static int parse_string(parser *p, char **out) {
  size_t start = p->pos++, end = p->pos;
  while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
  if (end >= p->len) {
    return perr_at(p, start, "unterminated string (no closing quote before the end of the input)");
  }
  char *buf = malloc(end - p->pos + 1);
  if (!buf) return perr(p, "out of memory");
  size_t n = 0;
  while (p->pos < end) {
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '\\') {
      int k = parse_escape(p, buf + n);
      if (k < 0) { free(buf); return -1; }
      n += (size_t)k;
    } else if (c < 0x20) {
      free(buf);
      return perr(p, "control character in string (must be escaped)");
    } else {
      size_t k = utf8_seq((const unsigned char *)p->s + p->pos, end - p->pos);
      if (!k) { free(buf); return perr(p, "invalid UTF-8 in string"); }
      memcpy(buf + n, p->s + p->pos, k);
      n += k;
      p->pos += k;
    }
  }
  buf[n] = 0;
  p->pos = end + 1;
  *out = buf;
  return 0;
}

static size_t skip_digits(parser *p) {
  size_t n = 0;
  while (peek(p) >= '0' && peek(p) <= '9') p->pos++, n++;
  return n;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, converted with strtod. */
static int parse_number(parser *p, json_value *v) {
  size_t start = p->pos;
  v->type = JSON_NUMBER;
  v->integral = 1;
  if (peek(p) == '-') p->pos++;
  if (peek(p) == '0') {
    p->pos++;
    if (peek(p) >= '0' && peek(p) <= '9') return perr(p, "leading zeros are not allowed in numbers");
  } else if (!skip_digits(p)) return perr(p, "expected a digit");
  if (peek(p) == '.') {
    p->pos++;
    v->integral = 0;
    if (!skip_digits(p)) return perr(p, "expected a digit after the decimal point");
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    p->pos++;
    v->integral = 0;
    if (peek(p) == '+' || peek(p) == '-') p->pos++;
    if (!skip_digits(p)) return perr(p, "expected a digit in the exponent");
  }
  /* strtod needs a NUL-terminated copy, with the locale's decimal point */
  size_t n = p->pos - start;
  char small[64], *tmp = n < sizeof small ? small : malloc(n + 1);
  if (!tmp) return perr(p, "out of memory");
  memcpy(tmp, p->s + start, n);
  tmp[n] = 0;
  const char *dp = localeconv()->decimal_point;
  char *dot = strchr(tmp, '.');
  if (dot && dp && dp[0] && !dp[1]) *dot = dp[0];
  v->number = strtod(tmp, NULL);
  if (tmp != small) free(tmp);
  if (isinf(v->number)) {
    return perr_at(p, start, "number out of the range of a double");
  }
  return 0;
}

static int parse_literal(parser *p, json_value *v) {
  static const struct { const char *word; json_type type; int b; } lits[] = {
      {"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}, {"null", JSON_NULL, 0}};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(lits[i].word);
    if (p->len - p->pos >= n && !memcmp(p->s + p->pos, lits[i].word, n)) {
      p->pos += n;
      v->type = lits[i].type;
      v->boolean = lits[i].b;
      return 0;
    }
  }
  return perr(p, "expected a value");
}

/* Make room for one more zeroed item (and key slot for objects); n grows. */
static int push_item(parser *p, json_value *v, size_t *cap) {
  if (v->n == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    json_value *items = realloc(v->items, nc * sizeof *items);
    if (!items) return perr(p, "out of memory");
    v->items = items;
    if (v->type == JSON_OBJECT) {
      char **keys = realloc(v->keys, nc * sizeof *keys);
      if (!keys) return perr(p, "out of memory");
      v->keys = keys;
    }
    *cap = nc;
  }
  memset(&v->items[v->n], 0, sizeof v->items[0]);
  if (v->keys) v->keys[v->n] = NULL;
  v->n++;
  return 0;
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Duplicate member names, found by sorting a copy of the key list. */
static int check_duplicates(parser *p, const json_value *v, size_t obj_start) {
  if (v->n < 2) return 0;
  char **k = malloc(v->n * sizeof *k);
  if (!k) return perr(p, "out of memory");
  memcpy(k, v->keys, v->n * sizeof *k);
  qsort(k, v->n, sizeof *k, cmp_key);
  for (size_t i = 1; i < v->n; i++)
    if (!strcmp(k[i - 1], k[i])) {
      perr_at(p, obj_start, "duplicate key \"%.60s\" in the object starting here", k[i]);
      free(k);
      return -1;
    }
  free(k);
  return 0;
}

/* '[' or '{' at pos. Objects and arrays share the loop; objects add "key":. */
static int parse_container(parser *p, json_value *v, int depth) {
  int is_obj = p->s[p->pos] == '{';
  char close = is_obj ? '}' : ']';
  size_t start = p->pos, cap = 0;
  if (depth >= JSON_MAX_DEPTH) return perr(p, "nesting deeper than %d levels", JSON_MAX_DEPTH);
  v->type = is_obj ? JSON_OBJECT : JSON_ARRAY;
  p->pos++;
  skip_ws(p);
  if (peek(p) == close) { p->pos++; return 0; }
  for (;;) {
    if (push_item(p, v, &cap)) return -1;
    if (is_obj) {
      skip_ws(p);
      if (peek(p) != '"') return perr(p, "expected a string key");
      if (parse_string(p, &v->keys[v->n - 1])) return -1;
      skip_ws(p);
      if (peek(p) != ':') return perr(p, "expected ':' after an object key");
      p->pos++;
    }
    if (parse_value(p, &v->items[v->n - 1], depth + 1)) return -1;
    skip_ws(p);
    if (peek(p) == close) break;
    if (peek(p) != ',')
      return perr(p, is_obj ? "expected ',' or '}' after an object member" : "expected ',' or ']' after an array element");
    p->pos++;
  }
  p->pos++;
  return is_obj ? check_duplicates(p, v, start) : 0;
}

static int parse_value(parser *p, json_value *v, int depth) {
  skip_ws(p);
  int c = peek(p);
  if (c == '{' || c == '[') return parse_container(p, v, depth);
  if (c == '"') {
    v->type = JSON_STRING;
    return parse_string(p, &v->string);
  }
  if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
  return parse_literal(p, v);
}

json_value *json_parse(const char *text, size_t len, char *err, size_t errlen) {
  parser p = {text, len, 0, err, errlen};
  if (errlen) err[0] = 0;
  json_value *v = calloc(1, sizeof *v);
  if (!v) {
    if (errlen) snprintf(err, errlen, "out of memory");
    return NULL;
  }
  int rc = parse_value(&p, v, 0);
  if (!rc) {
    skip_ws(&p);
    if (p.pos < p.len) rc = perr(&p, "expected the end of the input after the JSON value");
  }
  if (rc) {
    json_free(v);
    return NULL;
  }
  return v;
}

void json_free(json_value *v) {
  if (!v) return;
  free_contents(v);
  free(v);
}

/* ================================================================ accessors */

const json_value *json_get(const json_value *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJECT) return NULL;
  for (size_t i = 0; i < obj->n; i++)
    if (!strcmp(obj->keys[i], key)) return &obj->items[i];
  return NULL;
}

const json_value *json_at(const json_value *arr, size_t i) {
  if (!arr || arr->type != JSON_ARRAY || i >= arr->n) return NULL;
  return &arr->items[i];
}

size_t json_len(const json_value *v) {
  return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->n : 0;
}

const char *json_type_name(json_type t) {
  static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
  return (unsigned)t < 6 ? names[t] : "?";
}

const char *json_str(const json_value *v) { return v && v->type == JSON_STRING ? v->string : NULL; }

double json_num(const json_value *v, double dflt) { return v && v->type == JSON_NUMBER ? v->number : dflt; }

int json_int(const json_value *v, long long *out) {
  /* below 2^53 every integer is exact; 2^53 itself may be a rounded 2^53 + 1 */
  const double lim = 9007199254740992.0;
  if (!v || v->type != JSON_NUMBER || !v->integral || !(fabs(v->number) < lim)) return 0;
  *out = (long long)v->number;
  return 1;
}

/* ================================================================ writer */

static void buf_reserve(json_buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->len + extra + 1) nc *= 2;
  char *d = realloc(b->data, nc);
  if (!d) db_fail("json: out of memory growing a buffer to %zu bytes", nc);
  b->data = d;
  b->cap = nc;
}

void json_buf_printf(json_buf *b, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap); /* the length it needs */
  va_end(ap);
  if (n < 0) db_fail("json: bad format \"%s\"", fmt);
  buf_reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  b->len += (size_t)n;
}

void json_buf_string(json_buf *b, const char *s) {
  buf_reserve(b, 2);
  b->data[b->len++] = '"';
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    const char *esc = NULL;
    switch (*c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
    }
    if (esc) json_buf_printf(b, "%s", esc);
    else if (*c < 0x20) json_buf_printf(b, "\\u%04x", *c);
    else {
      buf_reserve(b, 1);
      b->data[b->len++] = (char)*c;
    }
  }
  buf_reserve(b, 1);
  b->data[b->len++] = '"';
  b->data[b->len] = 0;
}

/* The shortest of %.15g/%.16g/%.17g that reads back as the same double. */
void json_buf_number(json_buf *b, double x) {
  if (!isfinite(x)) {
    json_buf_printf(b, "null");
    return;
  }
  char s[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(s, sizeof s, "%.*g", prec, x);
    if (strtod(s, NULL) == x) break;
  }
  /* a locale with a decimal comma would make invalid JSON */
  for (char *c = s; *c; c++)
    if (*c == ',') *c = '.';
  json_buf_printf(b, "%s", s);
}

void json_buf_free(json_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}
