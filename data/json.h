/* A small JSON reader (a DOM of json_value nodes) and writer helper, for
 * checkpoint headers and manifests. Pure C, no OpenCL.
 *
 * Reader: strict RFC 8259. Strings are checked to be valid UTF-8 and \uXXXX
 * escapes (with surrogate pairs) are decoded to UTF-8; \u0000 is rejected
 * (strings are NUL-terminated C strings). Numbers are doubles; a number
 * written without fraction or exponent is also marked `integral`. Duplicate
 * keys in one object and nesting deeper than JSON_MAX_DEPTH are errors.
 * Errors come back as text in a caller's buffer ("line 3, column 14 (byte 41):
 * expected ',' or '}' after an object member, got 'x'") rather than through
 * db_fail, so that the caller can name the file. */
#ifndef DB_JSON_H
#define DB_JSON_H
#include <stddef.h>

#define JSON_MAX_DEPTH 64

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
  json_type type;
  int boolean;        /* JSON_BOOL */
  int integral;       /* JSON_NUMBER written as -?digits (no '.', no exponent) */
  double number;      /* JSON_NUMBER */
  char *string;       /* JSON_STRING: UTF-8, NUL-terminated */
  size_t n;           /* JSON_ARRAY / JSON_OBJECT: number of items */
  json_value *items;  /* array elements, or object member values */
  char **keys;        /* JSON_OBJECT: member names, parallel to items */
};

/* Parse exactly one JSON value from text[0..len) (surrounding whitespace
 * allowed, nothing else). NULL on error with a message in err (if errlen > 0). */
json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(json_value *v); /* NULL is fine */

/* Accessors: all accept NULL and values of the wrong type. */
const json_value *json_get(const json_value *obj, const char *key); /* NULL if absent */
const json_value *json_at(const json_value *arr, size_t i);         /* NULL if out of range */
size_t json_len(const json_value *v);              /* items of an array/object, else 0 */
const char *json_type_name(json_type t);           /* "object", "string", ... */
const char *json_str(const json_value *v);         /* NULL unless a string */
double json_num(const json_value *v, double dflt); /* dflt unless a number */
/* 1 and *out set if v is a number written as an integer with |v| < 2^53, else 0. */
int json_int(const json_value *v, long long *out);

/* Writer: a growable NUL-terminated string buffer. Start from {0}; out of
 * memory is a db_fail. */
typedef struct { char *data; size_t len, cap; } json_buf;
void json_buf_printf(json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void json_buf_string(json_buf *b, const char *s); /* "s" quoted, with escapes */
void json_buf_number(json_buf *b, double x);     /* %.17g; NaN/Inf written as null */
void json_buf_free(json_buf *b);

#endif
