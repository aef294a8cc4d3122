/* The run manifest, written and read field by field from the run-option table. */
#include "manifest.h"
#include "../data/file_io.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const SECTIONS[] = {"model", "edm", "partition", "training", "lm", "classify"};
enum { N_SECTIONS = 6 };

static void manifest_path(char *out, size_t n, const char *dir) {
  if ((size_t)snprintf(out, n, "%s/manifest.json", dir) >= n) db_fail("path too long: %s/manifest.json", dir);
}

static json_t *field_to_json(const run_config *rc, const run_field *f) {
  double v = run_field_get(rc, f);
  const char *const *names = run_field_names(f);
  if (names) return json_string(names[(int)v]);
  if (f->type == RF_NUM) return json_real(v);
  return json_integer((json_int_t)v);
}

static json_t *block_ranges(const run_config *rc) {
  json_t *arr = json_array();
  for (int i = 0; i < rc->blocks; i++) {
    double lo, hi, tlo, thi;
    char file[64];
    edm_block_range(rc->bounds, rc->blocks, i, &lo, &hi);
    edm_block_train_range(rc->edm, rc->bounds, rc->blocks, i, rc->gamma, &tlo, &thi);
    snprintf(file, sizeof file, "block_%d.safetensors", i);
    json_array_append_new(arr, json_pack("{s:i, s:s, s:[f,f], s:[f,f]}", "block", i, "file", file, "sigma_range", lo,
                                         hi, "train_range", tlo, thi));
  }
  return arr;
}

void manifest_write(const char *dir, const run_config *rc) {
  mkdir(dir, 0755);
  json_t *root = json_object(), *sec[N_SECTIONS];
  json_object_set_new(root, "format", json_string(MANIFEST_FORMAT));
  if (rc->task != TASK_IMAGE) json_object_set_new(root, "task", json_string(task_name(rc->task)));
  for (int s = 0; s < N_SECTIONS; s++) {
    sec[s] = NULL;
    if (s < 4 || (s == 4 && rc->task == TASK_LM) || (s == 5 && rc->task == TASK_CLASSIFY))
      json_object_set_new(root, SECTIONS[s], sec[s] = json_object());
  }
  for (int i = 0; i < run_field_count; i++) {
    const run_field *f = &run_fields[i];
    if (!run_field_applies(rc, f)) continue;
    for (int s = 0; s < N_SECTIONS; s++)
      if (!strcmp(f->section, SECTIONS[s])) json_object_set_new(sec[s], f->key, field_to_json(rc, f));
  }
  /* derived values, for readers of the file; checked on reading */
  json_object_set_new(sec[0], "layers_per_block", json_integer(rc->model.depth));
  json_t *bounds = json_array();
  for (int k = 0; k <= rc->blocks; k++) json_array_append_new(bounds, json_real(rc->bounds[k]));
  json_object_set_new(sec[2], "bounds", bounds);
  json_object_set_new(root, "blocks", block_ranges(rc));
  if (rc->task == TASK_LM) {
    json_object_set_new(sec[4], "text", json_string(rc->text));
    if (rc->lm.noise == LM_NOISE_EQUIDIFF) { /* h(σ) of the corpus: the partition and the σ law */
      json_t *cs = json_array(), *ch = json_array();
      for (int k = 0; k < rc->curve.n; k++) {
        json_array_append_new(cs, json_real(rc->curve.sigma[k]));
        json_array_append_new(ch, json_real(rc->curve.h[k]));
      }
      json_object_set_new(sec[4], "entropy_curve", json_pack("{s:o, s:o, s:f}", "sigma", cs, "h", ch, "h_max", rc->curve.h_max));
    }
  }
  char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
  json_decref(root);
  if (!text) db_fail("manifest: out of memory formatting %s/manifest.json", dir);
  char path[1024];
  manifest_path(path, sizeof path, dir);
  size_t len = strlen(text);
  text[len] = '\n'; /* json_dumps leaves no final newline; replace the NUL and write len + 1 bytes */
  atomic_write_file(path, text, len + 1);
  free(text);
}

static const json_t *need(const json_t *obj, const char *key, const char *path, const char *section) {
  const json_t *v = json_object_get(obj, key);
  if (!v) db_fail("manifest %s: missing \"%s\" in \"%s\"", path, key, section);
  return v;
}

/* The language model's corpus name and, for equi-difficulty, its entropy curve. */
static void read_lm(const json_t *root, run_config *rc, const char *path) {
  const json_t *lm = need(root, "lm", path, "(top)");
  const char *text = json_string_value(need(lm, "text", path, "lm"));
  if (!text || strlen(text) >= sizeof rc->text) db_fail("manifest %s: lm.text must be a string of under %zu bytes", path, sizeof rc->text);
  snprintf(rc->text, sizeof rc->text, "%s", text);
  if (rc->lm.noise != LM_NOISE_EQUIDIFF) return;
  const json_t *c = need(lm, "entropy_curve", path, "lm");
  const json_t *cs = json_object_get(c, "sigma"), *ch = json_object_get(c, "h"), *hm = json_object_get(c, "h_max");
  size_t n = json_array_size(cs);
  if (!json_is_array(cs) || !json_is_array(ch) || n != json_array_size(ch) || n < 2 || n > LM_CURVE_N || !json_is_number(hm))
    db_fail("manifest %s: lm.entropy_curve must hold arrays sigma and h of 2..%d numbers and h_max", path, LM_CURVE_N);
  rc->curve.n = (int)n;
  rc->curve.h_max = json_number_value(hm);
  for (size_t k = 0; k < n; k++) {
    const json_t *a = json_array_get(cs, k), *b = json_array_get(ch, k);
    if (!json_is_number(a) || !json_is_number(b)) db_fail("manifest %s: lm.entropy_curve entry %zu is not a number", path, k);
    rc->curve.sigma[k] = json_number_value(a);
    rc->curve.h[k] = json_number_value(b);
    if (!(rc->curve.sigma[k] > 0) || (k && !(rc->curve.sigma[k] > rc->curve.sigma[k - 1])) || !(rc->curve.h[k] >= 0) ||
        (k && rc->curve.h[k] < rc->curve.h[k - 1]))
      db_fail("manifest %s: lm.entropy_curve must be increasing in sigma and non-decreasing in h (entry %zu)", path, k);
  }
  if (!(rc->curve.h_max > 0)) db_fail("manifest %s: lm.entropy_curve.h_max must be positive", path);
}

static double read_field(const json_t *sec, const run_field *f, const char *path) {
  const json_t *v = need(sec, f->key, path, f->section);
  char where[1100];
  snprintf(where, sizeof where, "manifest %s", path);
  if (run_field_names(f)) {
    if (!json_is_string(v)) db_fail("manifest %s: \"%s.%s\" must be a string", path, f->section, f->key);
    return run_field_parse(f, json_string_value(v), where);
  }
  double x;
  if (f->type == RF_NUM) {
    if (!json_is_number(v)) db_fail("manifest %s: \"%s.%s\" must be a number", path, f->section, f->key);
    x = json_number_value(v);
  } else {
    if (!json_is_integer(v)) db_fail("manifest %s: \"%s.%s\" must be an integer", path, f->section, f->key);
    x = (double)json_integer_value(v);
  }
  run_field_check(f, x, where);
  return x;
}

void manifest_read(const char *dir, run_config *rc) {
  char path[1024];
  manifest_path(path, sizeof path, dir);
  size_t len;
  char *text = read_text_file(path, &len);
  json_error_t err;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  free(text);
  if (!root) db_fail("manifest %s: not valid JSON: line %d, column %d: %s", path, err.line, err.column, err.text);
  if (!json_is_object(root)) { json_decref(root); db_fail("manifest %s: not a JSON object", path); }
  const char *fmt = json_string_value(json_object_get(root, "format"));
  if (!fmt || strcmp(fmt, MANIFEST_FORMAT)) {
    char got[64];
    snprintf(got, sizeof got, "%s", fmt ? fmt : "missing");
    json_decref(root);
    db_fail("manifest %s: not a dblocks manifest (format \"%s\")", path, got);
  }
  /* a failure below frees the tree before it is reported */
  jmp_buf cleanup, *outer = db_trap_errors(&cleanup);
  if (setjmp(cleanup)) {
    db_trap_errors(outer);
    json_decref(root);
    db_fail_again();
  }
  const char *task = json_string_value(json_object_get(root, "task"));
  if (task && strcmp(task, "lm") && strcmp(task, "image") && strcmp(task, "classify"))
    db_fail("manifest %s: unknown task \"%s\"", path, task);
  run_config_defaults_task(rc, !task ? TASK_IMAGE : !strcmp(task, "lm") ? TASK_LM : !strcmp(task, "classify") ? TASK_CLASSIFY : TASK_IMAGE);
  for (int i = 0; i < run_field_count; i++) {
    const run_field *f = &run_fields[i];
    if (!run_field_applies(rc, f)) continue;
    const json_t *sec = need(root, f->section, path, "(top)");
    if (!json_is_object(sec)) db_fail("manifest %s: \"%s\" must be an object", path, f->section);
    run_field_set(rc, f, read_field(sec, f, path));
  }
  if (rc->task == TASK_LM) read_lm(root, rc, path);
  run_config_finish(rc);
  /* the stored bounds must be what this configuration gives */
  const json_t *jb = need(json_object_get(root, "partition"), "bounds", path, "partition");
  if (!json_is_array(jb) || json_array_size(jb) != (size_t)rc->blocks + 1)
    db_fail("manifest %s: partition.bounds must be an array of %d numbers", path, rc->blocks + 1);
  for (int k = 0; k <= rc->blocks; k++) {
    double b = json_number_value(json_array_get(jb, (size_t)k));
    if (!json_is_number(json_array_get(jb, (size_t)k)) || fabs(b - rc->bounds[k]) > 1e-9 * rc->bounds[k])
      db_fail("manifest %s: partition bound %d is %.10g, the configuration gives %.10g", path, k, b, rc->bounds[k]);
  }
  db_trap_errors(outer);
  json_decref(root);
}

static void format_value(const run_config *rc, const run_field *f, char *out, size_t n) {
  double v = run_field_get(rc, f);
  const char *const *names = run_field_names(f);
  if (names) snprintf(out, n, "%s", names[(int)v]);
  else if (f->type == RF_NUM) snprintf(out, n, "%g", v);
  else snprintf(out, n, "%.0f", v);
}

void manifest_check_match(const run_config *have, const run_config *want, const char *path) {
  if (have->task != want->task)
    db_fail("manifest %s: the run there trains the %s task, this command the %s task", path, task_name(have->task),
            task_name(want->task));
  if (have->task == TASK_LM && strcmp(have->text, want->text))
    db_fail("manifest %s: the run there was trained on \"%s\", this command uses \"%s\"; use a new --out directory",
            path, have->text, want->text);
  for (int i = 0; i < run_field_count; i++) {
    const run_field *f = &run_fields[i];
    if (!run_field_applies(have, f)) continue;
    if (!strcmp(f->key, "steps_per_block")) continue; /* a run can be extended */
    double h = run_field_get(have, f), w = run_field_get(want, f);
    int same = f->type == RF_NUM ? fabs(h - w) <= 1e-12 * fabs(h) : h == w;
    if (same) continue;
    char label[128], hs[64], ws[64];
    run_field_label(f, label, sizeof label);
    format_value(have, f, hs, sizeof hs);
    format_value(want, f, ws, sizeof ws);
    db_fail("manifest %s: %s is %s there but %s here; use a new --out directory or the same settings", path, label, hs,
            ws);
  }
  for (int k = 0; k <= have->blocks && have->blocks == want->blocks; k++)
    if (fabs(have->bounds[k] - want->bounds[k]) > 1e-9 * have->bounds[k])
      db_fail("manifest %s: partition bound %d is %.10g there but %.10g here (a different corpus or noise law?)", path,
              k, have->bounds[k], want->bounds[k]);
}
