/* The hand-written JSON reader and writer of data/json.c (still used by code
 * being moved to jansson; these tests go together with data/json.c). The
 * safetensors and atomic-write tests are in test_formats.c. Host only. */
#include "harness.h"
#include "../data/json.h"

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

void tests_checkpoint(void) {
  test_json_reader();
  test_json_writer();
}
