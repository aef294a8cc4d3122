/* The run-option table (models/run_config.h): defaults, the manifest written
 * and read through it field by field, range checks, the resume match check,
 * and the command line's refusal of non-finite and out-of-range values. */
#include "harness.h"
#include "../models/diffusion.h"
#include "../data/file_io.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) db_fail("test: cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void test_table(void) {
  run_config rc;
  run_config_defaults(&rc);
  edm_config e = edm_default();
  th_check(rc.model.in_ch == 1 && rc.model.img_h == 28 && rc.model.width == 384 && rc.model.heads == 6 &&
               rc.model.patch == 2 && rc.layers == 12 && rc.blocks == 3 && rc.batch == 256 && rc.lr == 2e-4 &&
               rc.clip == 1 && rc.label_dropout == 0.1 && rc.gamma == 0.1 && rc.steps == 1000 &&
               rc.partition == EDM_PARTITION_EQUIPROB && rc.schedule == SCHEDULE_SEQUENTIAL,
           "run_config: the table's defaults are the documented ones", "differ");
  th_check(rc.edm.p_mean == e.p_mean && rc.edm.p_std == e.p_std && rc.edm.sigma_min == e.sigma_min &&
               rc.edm.sigma_max == e.sigma_max && rc.edm.sigma_data == e.sigma_data,
           "run_config: the table's EDM defaults are edm_default()", "differ");
  int dup = 0;
  for (int i = 0; i < run_field_count; i++)
    for (int j = i + 1; j < run_field_count; j++) {
      const run_field *a = &run_fields[i], *b = &run_fields[j];
      dup |= a->offset == b->offset || (!strcmp(a->section, b->section) && !strcmp(a->key, b->key)) ||
             (a->flag && b->flag && !strcmp(a->flag, b->flag));
    }
  th_check(!dup, "run_config: members, manifest keys and flags are unique in the table", "a duplicate");
  run_config_finish(&rc);
  th_check(rc.model.depth == 4, "run_config: finish derives layers per block", "depth %d", rc.model.depth);
}

/* Every field set to a non-default value survives write + read exactly. */
static void test_round_trip(void) {
  run_config rc, back;
  run_config_defaults(&rc);
  rc.model.width = 48; rc.model.heads = 3; rc.model.patch = 4; rc.layers = 8; rc.blocks = 4;
  rc.model.n_classes = 7; rc.model.freq_dim = 64; rc.model.img_h = 16; rc.model.img_w = 12;
  rc.edm.p_mean = -1.1; rc.edm.p_std = 1.3; rc.edm.sigma_min = 0.003; rc.edm.sigma_max = 70; rc.edm.sigma_data = 0.4;
  rc.partition = EDM_PARTITION_UNIFORM; rc.gamma = 0.123456789012345; rc.batch = 33; rc.lr = 1.0 / 3.0;
  rc.weight_decay = 0.01; rc.clip = 0; rc.label_dropout = 0.25; rc.seed = 9007199254740991ULL;
  rc.schedule = SCHEDULE_RANDOM; rc.steps = 77;
  run_config_finish(&rc);
  manifest_write(dir, &rc);
  manifest_read(dir, &back);
  int same = 1;
  char first[64] = "";
  for (int i = 0; i < run_field_count; i++)
    if (run_field_get(&rc, &run_fields[i]) != run_field_get(&back, &run_fields[i])) {
      same = 0;
      if (!*first) snprintf(first, sizeof first, "%s", run_fields[i].member);
    }
  for (int k = 0; k <= rc.blocks; k++) same &= rc.bounds[k] == back.bounds[k];
  th_check(same, "manifest: every field of the table round-trips exactly (seed 2^53-1, 1/3, uniform, random)",
           "first difference: %s", first);
}

/* A language-model run: its fields, corpus name and entropy curve survive write + read. */
static void test_round_trip_lm(int noise) {
  run_config rc, back;
  run_config_defaults_task(&rc, TASK_LM);
  rc.model.width = 48; rc.model.heads = 4; rc.layers = 6; rc.blocks = 3; rc.lm.context = 33; rc.lm.embed_dim = 12;
  rc.lm.noise = noise; rc.gamma = 0.2; rc.batch = 5; rc.seed = 12345;
  snprintf(rc.text, sizeof rc.text, "/some/corpus.txt");
  if (noise == LM_NOISE_EQUIDIFF) { /* a smooth made-up curve: h rises from 0 to 3 nats */
    rc.curve.n = LM_CURVE_N;
    rc.curve.h_max = 3.0;
    for (int k = 0; k < LM_CURVE_N; k++) {
      rc.curve.sigma[k] = 0.01 * pow(1e5, k / (LM_CURVE_N - 1.0));
      rc.curve.h[k] = 3.0 / (1 + exp(-(log(rc.curve.sigma[k]) - 0.5) * 2));
    }
  }
  run_config_finish(&rc);
  manifest_write(dir, &rc);
  manifest_read(dir, &back);
  int same = back.task == TASK_LM && !strcmp(back.text, rc.text) && back.curve.n == rc.curve.n;
  char first[64] = "";
  for (int i = 0; i < run_field_count; i++)
    if (run_field_applies(&rc, &run_fields[i]) && run_field_get(&rc, &run_fields[i]) != run_field_get(&back, &run_fields[i])) {
      same = 0;
      if (!*first) snprintf(first, sizeof first, "%s", run_fields[i].member);
    }
  for (int k = 0; k <= rc.blocks; k++) same &= rc.bounds[k] == back.bounds[k];
  for (int k = 0; k < rc.curve.n; k++) same &= rc.curve.sigma[k] == back.curve.sigma[k] && rc.curve.h[k] == back.curve.h[k];
  int ascending = 1;
  for (int k = 0; k < rc.blocks; k++) ascending &= rc.bounds[k] < rc.bounds[k + 1];
  th_check(same && ascending, noise == LM_NOISE_EQUIDIFF
                                  ? "manifest (language model, equi-difficulty): fields, corpus, curve and bounds round-trip"
                                  : "manifest (language model, log-normal): fields, corpus and bounds round-trip",
           "first difference: %s%s", first, ascending ? "" : " (bounds not ascending)");
  char path[1024];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  size_t len;
  char *text = read_text_file(path, &len);
  th_check(strstr(text, "\"task\": \"lm\"") && !strstr(text, "img_h") && !strstr(text, "label_dropout"),
           "manifest (language model): names its task and leaves the image fields out", "%.200s", text);
  free(text);
}

static void expect_manifest_error(const char *label, const char *from, const char *to, const char *needle) {
  char path[1024];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  run_config rc;
  run_config_defaults(&rc);
  run_config_finish(&rc);
  manifest_write(dir, &rc);
  char *text = read_all(path);
  char *at = strstr(text, from);
  if (!at) { th_check(0, label, "test: \"%s\" not in the manifest", from); return; }
  static char edited[1 << 16];
  snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  write_text(path, edited);
  TH_EXPECT_ERROR(label, needle, manifest_read(dir, &rc));
}

static void test_manifest_errors(void) {
  expect_manifest_error("manifest: an out-of-range value is refused, named by its flag", "\"clip\": 1.0", "\"clip\": -1",
                        "--clip is -1, must be in");
  expect_manifest_error("manifest: a fractional integer is refused", "\"batch\": 256", "\"batch\": 2.5",
                        "\"training.batch\" must be an integer");
  expect_manifest_error("manifest: a string for a number is refused", "\"lr\": ", "\"lr\": \"fast\", \"lr_was\": ",
                        "\"training.lr\" must be a number");
  expect_manifest_error("manifest: an unknown partition kind is refused", "\"equiprob\"", "\"zigzag\"",
                        "zigzag: expected equiprob or uniform");
  expect_manifest_error("manifest: a missing field is named", ",\n    \"steps_per_block\": 1000", "",
                        "missing \"steps_per_block\" in \"training\"");
  expect_manifest_error("manifest: duplicate keys are refused", "\"batch\": 256", "\"batch\": 256, \"batch\": 8",
                        "duplicate");
  expect_manifest_error("manifest: a width the heads do not divide is refused", "\"width\": 384", "\"width\": 100",
                        "width 100 must be a multiple of heads");
  expect_manifest_error("manifest: stored bounds must match the configuration", "\"bounds\": [\n      0.002",
                        "\"bounds\": [\n      0.003", "partition bound 0 is");
  expect_manifest_error("manifest: a field without a flag is named in words", "\"img_h\": 28", "\"img_h\": 0",
                        "image height (model.img_h) is 0");
}

/* A resumed run must be the same run: every field but steps is compared. */
static void test_match(int task) {
  run_config have;
  run_config_defaults_task(&have, task);
  run_config_finish(&have);
  int named = 0, total = 0;
  for (int i = 0; i < run_field_count; i++) {
    const run_field *f = &run_fields[i];
    if (!strcmp(f->key, "steps_per_block") || !run_field_applies(&have, f)) continue;
    run_config want = have;
    double v = run_field_get(&have, f);
    run_field_set(&want, f, v == f->hi ? f->lo : v + (f->type == RF_NUM ? 0.5 * (f->hi - v > 1 ? 1 : f->hi - v) : 1));
    char label[128];
    run_field_label(f, label, sizeof label);
    jmp_buf trap;
    volatile int failed = 0;
    db_trap_errors(&trap);
    if (setjmp(trap) == 0) manifest_check_match(&have, &want, "m.json");
    else failed = 1;
    db_trap_errors(NULL);
    total++;
    named += failed && strstr(db_last_error(), label) != NULL;
  }
  th_check(named == total, task == TASK_LM ? "manifest (language model): a resume with any other setting is refused, naming the field"
                                           : "manifest: a resume with any other setting is refused, naming the field",
           "%d of %d fields named", named, total);
  run_config longer = have;
  longer.steps *= 2;
  jmp_buf trap;
  volatile int failed = 0;
  db_trap_errors(&trap);
  if (setjmp(trap) == 0) manifest_check_match(&have, &longer, "m.json");
  else failed = 1;
  db_trap_errors(NULL);
  th_check(!failed, "manifest: more steps is the same run, extended", "%s", db_last_error());
}

/* Defect: NaN was the "not given" sentinel, so --lr nan trained with the
 * default; non-finite and out-of-range values must be refused. */
static void test_cli_values(void) {
  char args[1200];
  const char *bad[][2] = {
      {"train --lr nan", "--lr wants a finite number, got 'nan'"},
      {"train --gamma nan", "--gamma wants a finite number, got 'nan'"},
      {"train --gamma -0.5", "--gamma is -0.5, must be in"},
      {"train --lr inf", "--lr wants a finite number, got 'inf'"},
      {"train --lr 1e999", "--lr wants a finite number, got '1e999'"},
      {"train --clip -1", "--clip is -1, must be in [0,"},
      {"train --label-dropout 1.5", "--label-dropout is 1.5, must be in [0, 1]"},
      {"train --seed -1", "--seed is -1, must be in 0.."},
      {"train --batch 0", "--batch is 0, must be in 1.."},
      {"train --steps 2.5", "--steps wants an integer, got '2.5'"},
      {"train --log-every 0", "--log-every 0 must be in 1..32"},
      {"train --ckpt-every -3", "--ckpt-every -3 must not be negative"},
      {"sample --guidance nan", "--guidance wants a finite number, got 'nan'"},
      {"sample --rho -1", "--rho -1 must be positive"},
      {"sample --guidance -2", "--guidance -2 must not be negative"},
      {"bench train --seconds nan", "--seconds wants a finite number, got 'nan'"},
      {"bench ops --batch -4", "--batch -4 must be positive"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snprintf(args, sizeof args, "%s --out %s/never", bad[i][0], dir);
    if (!strncmp(bad[i][0], "sample", 6)) snprintf(args, sizeof args, "%s --run %s/none", bad[i][0], dir);
    if (!strncmp(bad[i][0], "bench", 5)) snprintf(args, sizeof args, "%s", bad[i][0]);
    th_cli_expect(args, 1, bad[i][1]);
  }
  char never[1100];
  snprintf(never, sizeof never, "%s/never", dir);
  struct stat st;
  th_check(stat(never, &st) != 0, "cli: a refused value leaves no run directory behind", "%s exists", never);
}

void tests_run_config(void) {
  snprintf(dir, sizeof dir, "%s/dblocks-run-config-test-%d", getenv("DBLOCKS_CACHE_DIR") ? getenv("DBLOCKS_CACHE_DIR") : "/tmp",
           (int)getpid());
  mkdir(dir, 0755);
  test_table();
  test_round_trip();
  test_round_trip_lm(LM_NOISE_EQUIDIFF);
  test_round_trip_lm(LM_NOISE_LOGNORMAL);
  test_manifest_errors();
  test_match(TASK_IMAGE);
  test_match(TASK_LM);
  test_cli_values();
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) printf("        could not remove %s\n", dir);
}
