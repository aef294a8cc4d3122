/* The run configuration and its one table of options (run_config.h). */
#include "run_config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_FIELD_ENTRY(tasks, type, member, section, key, flag, dflt, lo, hi, help) \
  {RF_##tasks, RF_##type, offsetof(run_config, member), #member, section, key, flag, dflt, lo, hi, help},
const run_field run_fields[] = {RUN_FIELDS(RUN_FIELD_ENTRY)};
#undef RUN_FIELD_ENTRY
const int run_field_count = (int)(sizeof run_fields / sizeof *run_fields);

static const char *const partition_names[] = {"equiprob", "uniform", NULL};
static const char *const schedule_names[] = {"sequential", "random", NULL};
static const char *const noise_names[] = {"equidiff", "lognormal", NULL};
static const char *const lr_schedule_names[] = {"constant", "cosine", NULL};
static const char *const sigma_law_names[] = {"lognormal", "loguniform", NULL};

const char *task_name(int task) { return task == TASK_LM ? "lm" : task == TASK_CLASSIFY ? "classify" : "image"; }
const char *noise_name(int noise) { return noise == LM_NOISE_LOGNORMAL ? "lognormal" : "equidiff"; }
const char *lr_schedule_name(int s) { return lr_schedule_names[s == LR_COSINE]; }
const char *sigma_law_name(int s) { return sigma_law_names[s == SIGMA_LAW_LOGUNIFORM]; }
int run_field_applies(const run_config *rc, const run_field *f) {
  int mask = rc->task == TASK_LM ? RF_LM : rc->task == TASK_CLASSIFY ? RF_CLS : RF_IMG;
  return (f->tasks & mask) != 0;
}

double run_lr_at(const run_config *rc, int step) {
  if (rc->task != TASK_CLASSIFY || rc->cls.lr_schedule == LR_CONSTANT || rc->steps <= 0) return rc->lr;
  int warm = (int)ceil(LR_WARMUP_SHARE * rc->steps);
  if (step < warm) return rc->lr * (step + 1) / warm;
  double t = (double)(step - warm) / (double)(rc->steps - warm > 0 ? rc->steps - warm : 1);
  if (t > 1) t = 1; /* a run extended past its --steps keeps the last rate */
  return rc->lr * 0.5 * (1.0 + cos(M_PI * t));
}

const char *partition_name(edm_partition_kind k) { return k == EDM_PARTITION_UNIFORM ? "uniform" : "equiprob"; }
const char *schedule_name(int s) { return s == SCHEDULE_RANDOM ? "random" : "sequential"; }

const char *const *run_field_names(const run_field *f) {
  return f->type == RF_PARTITION ? partition_names : f->type == RF_SCHEDULE ? schedule_names
       : f->type == RF_NOISE       ? noise_names
       : f->type == RF_LRSCHED     ? lr_schedule_names
       : f->type == RF_SIGMALAW    ? sigma_law_names
                                   : NULL;
}

double run_field_get(const run_config *rc, const run_field *f) {
  const char *p = (const char *)rc + f->offset;
  switch (f->type) {
    case RF_INT: return *(const int *)p;
    case RF_U64: return (double)*(const uint64_t *)p;
    case RF_NUM: return *(const double *)p;
    case RF_PARTITION: return (double)*(const edm_partition_kind *)p;
    case RF_SCHEDULE:
    case RF_NOISE:
    case RF_LRSCHED:
    case RF_SIGMALAW: return *(const int *)p;
  }
  return 0;
}

void run_field_set(run_config *rc, const run_field *f, double v) {
  char *p = (char *)rc + f->offset;
  switch (f->type) {
    case RF_INT: *(int *)p = (int)v; break;
    case RF_U64: *(uint64_t *)p = (uint64_t)v; break;
    case RF_NUM: *(double *)p = v; break;
    case RF_PARTITION: *(edm_partition_kind *)p = (edm_partition_kind)(int)v; break;
    case RF_SCHEDULE:
    case RF_NOISE:
    case RF_LRSCHED:
    case RF_SIGMALAW: *(int *)p = (int)v; break;
  }
}

void run_field_label(const run_field *f, char *out, size_t n) {
  if (f->flag) snprintf(out, n, "--%s", f->flag);
  else snprintf(out, n, "%s (%s.%s)", f->help, f->section, f->key);
}

static void enum_choices(const run_field *f, char *out, size_t n) {
  out[0] = 0;
  const char *const *names = run_field_names(f);
  for (int i = 0; names[i]; i++) {
    size_t len = strlen(out);
    snprintf(out + len, n - len, "%s%s", i ? (names[i + 1] ? ", " : " or ") : "", names[i]);
  }
}

void run_field_check(const run_field *f, double v, const char *where) {
  char label[128];
  run_field_label(f, label, sizeof label);
  if (!isfinite(v)) db_fail("%s: %s must be a finite number, got %g", where, label, v);
  int integral = f->type != RF_NUM;
  if (integral && v != floor(v)) db_fail("%s: %s must be an integer, got %g", where, label, v);
  if (v < f->lo || v > f->hi) {
    if (integral) db_fail("%s: %s is %.0f, must be in %.0f..%.0f", where, label, v, f->lo, f->hi);
    db_fail("%s: %s is %g, must be in [%g, %g]", where, label, v, f->lo, f->hi);
  }
}

double run_field_parse(const run_field *f, const char *text, const char *where) {
  char label[128];
  run_field_label(f, label, sizeof label);
  const char *const *names = run_field_names(f);
  if (names) {
    for (int i = 0; names[i]; i++)
      if (!strcmp(text, names[i])) return i;
    char choices[128];
    enum_choices(f, choices, sizeof choices);
    db_fail("%s: %s %s: expected %s", where, label, text, choices);
  }
  char *end;
  double v = f->type == RF_NUM ? strtod(text, &end) : (double)strtoll(text, &end, 10);
  if (!*text || *end) db_fail("%s: %s wants %s, got '%s'", where, label, f->type == RF_NUM ? "a number" : "an integer", text);
  if (!isfinite(v)) db_fail("%s: %s wants a finite number, got '%s'", where, label, text);
  run_field_check(f, v, where);
  return v;
}

void run_config_defaults(run_config *rc) {
  memset(rc, 0, sizeof *rc);
  for (int i = 0; i < run_field_count; i++) run_field_set(rc, &run_fields[i], run_fields[i].dflt);
  rc->model.depth = rc->layers / rc->blocks;
}

void run_config_defaults_task(run_config *rc, int task) {
  run_config_defaults(rc);
  rc->task = task;
  if (task == TASK_CLASSIFY) {
    rc->model.patch = 7;
    rc->model.width = 64;
    rc->model.heads = 4;
    rc->layers = 12;
    rc->blocks = 3;
    rc->batch = 128;
    rc->lr = 1e-3;
    rc->weight_decay = 0.05;
    rc->model.depth = rc->layers / rc->blocks;
    return;
  }
  if (task != TASK_LM) return;
  rc->model.width = 256;
  rc->model.heads = 4;
  rc->layers = 8;
  rc->blocks = 4;
  rc->batch = 32;
  rc->lr = 3e-4;
  rc->edm.p_mean = 1.0; /* docs/lm_data.md: the text's noise sits above the images' */
  rc->edm.p_std = 1.2;
  rc->model.depth = rc->layers / rc->blocks;
  snprintf(rc->text, sizeof rc->text, "kjv");
}

/* The language model's partition: equi-difficulty bounds come from the corpus'
 * entropy curve (rc->curve, filled by the task or read from a manifest);
 * σ_min, σ_max are its ends. */
static void lm_finish(run_config *rc) {
  if (rc->model.width % rc->model.heads || (rc->model.width / rc->model.heads) % 2)
    db_fail("--width %d must be a multiple of --heads %d with an even head size (rotary embedding)", rc->model.width,
            rc->model.heads);
  if (rc->model.width / rc->model.heads > 128)
    db_fail("--width %d / --heads %d: head size %d is above the attention kernels' 128", rc->model.width,
            rc->model.heads, rc->model.width / rc->model.heads);
  if (rc->lm.noise == LM_NOISE_LOGNORMAL || rc->curve.n == 0) {
    if (rc->lm.noise == LM_NOISE_LOGNORMAL) edm_partition(rc->edm, rc->blocks, rc->partition, rc->bounds);
    return; /* equidiff without a curve yet: the task computes it (lm_task) */
  }
  lm_partition_equidiff(&rc->curve, rc->blocks, LM_FRAC_LO, LM_FRAC_HI, rc->bounds);
  rc->edm.sigma_min = rc->bounds[0];
  rc->edm.sigma_max = rc->bounds[rc->blocks];
}

void run_config_finish(run_config *rc) {
  for (int i = 0; i < run_field_count; i++)
    if (run_field_applies(rc, &run_fields[i]))
      run_field_check(&run_fields[i], run_field_get(rc, &run_fields[i]), "configuration");
  if (rc->layers % rc->blocks)
    db_fail("--layers %d must be a positive multiple of --blocks %d (each block gets L/B layers)", rc->layers, rc->blocks);
  if (!(rc->edm.sigma_max > rc->edm.sigma_min))
    db_fail("configuration: sigma_max %g must be above sigma_min %g", rc->edm.sigma_max, rc->edm.sigma_min);
  rc->model.depth = rc->layers / rc->blocks;
  if (rc->task == TASK_LM) {
    lm_finish(rc);
    return;
  }
  dit_config_check(&rc->model);
  int w = rc->cls.window, p = rc->model.patch;
  if (rc->task == TASK_CLASSIFY && w && (w < p || (w - p) % 2))
    db_fail("--window %d must be 0 or --patch %d plus an even number (a window centred on its patch)", w, p);
  edm_partition(rc->edm, rc->blocks, rc->partition, rc->bounds);
}
