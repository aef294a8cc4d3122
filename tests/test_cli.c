/* The command line, run as a separate process (DBLOCKS_BIN, set by `make test`):
 * help, device listing, and clear errors with a non-zero exit for bad input. */
#include "harness.h"
#include <stdio.h>
#include <unistd.h>
#include "../data/image_io.h"
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)flag; (void)ftw;
  return remove(p);
}

/* `dblocks eval --samples`: the .npy inputs are checked (shape against the
 * classifier's 28x28, labels, finiteness) with clear errors, before any
 * device work; and a well-formed (n,1,28,28) file is evaluated. */
static void test_eval_inputs(void) {
  char dir[] = "/tmp/dblocks-cli-eval-XXXXXX";
  if (!mkdtemp(dir)) { th_check(0, "cli: eval temporary directory", "mkdtemp failed"); return; }
  enum { N = 4, PX = 28 * 28 };
  static float img[N * PX];
  for (int i = 0; i < N * PX; i++) img[i] = (float)((i * 37) % 200) / 100.0f - 1.0f;
  int32_t lab[N] = {0, 3, 9, 1};
  char s[300], l[300], args[1200], needle[700];
#define PATHS(stem)                                                   \
  (snprintf(s, sizeof s, "%s/%s.npy", dir, stem), snprintf(l, sizeof l, "%s/%s_labels.npy", dir, stem))

  /* samples of the wrong shape (the heap over-read of clf_features) */
  PATHS("flat");
  npy_write_f32(s, img, 2, (int[]){2, 3});
  npy_write_i32(l, lab, 1, (int[]){2});
  snprintf(args, sizeof args, "eval --samples %s", s);
  snprintf(needle, sizeof needle, "%s has shape (2, 3); expected (n, 1, 28, 28) or (n, 28, 28)", s);
  th_cli_expect_as("cli: eval refuses samples of shape (2,3), naming the file, its shape and the expected shape", args, 1,
            needle, NULL);
  PATHS("small");
  npy_write_f32(s, img, 3, (int[]){10, 14, 14});
  npy_write_i32(l, (int32_t[10]){0}, 1, (int[]){10});
  snprintf(args, sizeof args, "eval --samples %s", s);
  snprintf(needle, sizeof needle, "%s has shape (10, 14, 14); expected (n, 1, 28, 28) or (n, 28, 28)", s);
  th_cli_expect_as("cli: eval refuses 14x14 samples (10,14,14), naming the file, its shape and the expected shape", args, 1,
            needle, NULL);
  PATHS("chan");
  npy_write_f32(s, img, 4, (int[]){2, 2, 28, 14});
  npy_write_i32(l, lab, 1, (int[]){2});
  snprintf(args, sizeof args, "eval --samples %s", s);
  snprintf(needle, sizeof needle, "%s has shape (2, 2, 28, 14); expected (n, 1, 28, 28) or (n, 28, 28)", s);
  th_cli_expect_as("cli: eval refuses samples of shape (2,2,28,14)", args, 1, needle, NULL);

  /* labels: rank, count, range */
  PATHS("good");
  npy_write_f32(s, img, 3, (int[]){N, 28, 28});
  npy_write_i32(l, lab, 2, (int[]){2, 2});
  snprintf(args, sizeof args, "eval --samples %s", s);
  snprintf(needle, sizeof needle, "%s has shape (2, 2); expected (4): one label per sample of %s", l, s);
  th_cli_expect_as("cli: eval refuses a 2-D labels file, naming it, its shape and the expected shape", args, 1, needle, NULL);
  npy_write_i32(l, lab, 1, (int[]){3});
  snprintf(needle, sizeof needle, "%s has shape (3); expected (4): one label per sample of %s", l, s);
  th_cli_expect_as("cli: eval refuses 3 labels for 4 samples", args, 1, needle, NULL);
  char l2[300];
  snprintf(l2, sizeof l2, "%s/range_labels.npy", dir);
  npy_write_i32(l2, (int32_t[N]){0, 3, 10, 1}, 1, (int[]){N});
  snprintf(args, sizeof args, "eval --samples %s --labels %s", s, l2);
  snprintf(needle, sizeof needle, "%s: label 10 at index 2 is outside 0..9", l2);
  th_cli_expect_as("cli: eval refuses label 10 of a 10-class classifier, naming the file, index and value", args, 1, needle,
            NULL);
  npy_write_i32(l2, (int32_t[N]){0, 3, 1, -1}, 1, (int[]){N});
  snprintf(needle, sizeof needle, "%s: label -1 at index 3 is outside 0..9", l2);
  th_cli_expect_as("cli: eval refuses a negative label, naming the file, index and value", args, 1, needle, NULL);

  /* non-finite samples were scored as a perfect Frechet distance 0 */
  PATHS("nan");
  img[1000] = NAN;
  img[2000] = INFINITY;
  img[3000] = -INFINITY;
  npy_write_f32(s, img, 4, (int[]){N, 1, 28, 28});
  npy_write_i32(l, lab, 1, (int[]){N});
  img[1000] = img[2000] = img[3000] = 0;
  snprintf(args, sizeof args, "eval --samples %s", s);
  snprintf(needle, sizeof needle, "%s holds 3 non-finite values (NaN or Inf), the first at index 1000 (sample 1)", s);
  th_cli_expect_as("cli: eval refuses samples holding NaN/Inf, naming how many and the first index", args, 1, needle,
            "Frechet distance");

  /* a well-formed (n,1,28,28) file with its default labels path is evaluated */
  PATHS("ok");
  npy_write_f32(s, img, 4, (int[]){N, 1, 28, 28});
  npy_write_i32(l, lab, 1, (int[]){N});
  char js[300];
  snprintf(js, sizeof js, "%s/metrics.json", dir);
  snprintf(args, sizeof args, "eval --samples %s --json %s", s, js);
  th_cli_expect_as("cli: eval --samples of shape (4,1,28,28) reports a Frechet distance", args, 0,
            "Frechet distance (classifier features, vs test set):", NULL);
  FILE *jf = fopen(js, "r");
  char jtext[512] = "";
  if (jf) { jtext[fread(jtext, 1, sizeof jtext - 1, jf)] = 0; fclose(jf); }
  th_check(strstr(jtext, "\"frechet\": ") && strstr(jtext, "\"n_samples\": 4") && jtext[strlen(jtext) - 1] == '\n',
           "cli: eval --json writes the metrics as one JSON object", "%s: '%s'", js, jtext);
#undef PATHS
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void tests_cli(void) {
  th_cli_expect("--help", 0, "commands:");
  th_cli_expect("", 2, "usage: dblocks");
  th_cli_expect("frobnicate", 2, "unknown command 'frobnicate'");
  th_cli_expect("devices", 0, "0:0");
  th_cli_expect("devices --help", 0, "usage: dblocks devices");
  th_cli_expect("bench", 1, "say what to benchmark");
  th_cli_expect("bench ops --device 9:9", 1, "no device 9:9");
  th_cli_expect("bench ops --device gpu", 1, "bad device 'gpu'");
  th_cli_expect("bench ops --batch abc", 1, "option --batch wants an integer, got 'abc'");
  th_cli_expect("bench ops --bogus", 1, "unknown option '--bogus'");
  th_cli_expect("bench ops --batch", 1, "option --batch needs a value");
  th_cli_expect("bench ops --quick --seconds 0.01", 0, "DiT layer fwd+bwd");
  th_cli_expect("tune --clblast-params /dev/null", 1, "--clblast-params /dev/null: not a JSON file");
  {
    char path[] = "/tmp/dblocks-cli-cbparams-XXXXXX", args[128];
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f) {
      fputs("{\"kernel_family\": \"xgemv\", \"precision\": \"32\", \"best_parameters\": \"WGS1=64\"}", f);
      fclose(f);
      snprintf(args, sizeof args, "tune --clblast-params %s", path);
      th_cli_expect(args, 1, "is not a single-precision result of clblast_tuner_xgemm");
      unlink(path);
    } else th_check(0, "cli: tune --clblast-params temp file", "mkstemp failed");
  }
  th_cli_expect("train --help", 0, "usage: dblocks train");
  th_cli_expect("train --layers 7 --blocks 3 --out /nonexistent/x", 1, "--layers 7 must be a positive multiple of --blocks 3");
  th_cli_expect("train --blocks 0", 1, "--blocks is 0, must be");
  th_cli_expect("train --partition zigzag", 1, "--partition zigzag: expected equiprob or uniform");
  th_cli_expect("train --width 30 --heads 4", 1, "width 30 must be a positive multiple of 4");
  th_cli_expect("train --data /nonexistent/fmnist --out /tmp/dblocks-cli-test-none", 1, "/nonexistent/fmnist");
  th_cli_expect("sample --run /nonexistent/run", 1, "cannot read /nonexistent/run/manifest.json");
  th_cli_expect("sample --sampler rk4 --run /nonexistent/run", 1, "--sampler rk4: expected euler or heun");
  th_cli_expect("eval", 1, "give exactly one of --run DIR or --samples FILE.npy");
  th_cli_expect("eval --samples /nonexistent/s.npy --classifier /nonexistent/c.safetensors --data /nonexistent/d", 1, "/nonexistent");
  th_cli_expect("bench train --layers 5 --blocks 2", 1, "--layers 5 must be a positive multiple of --blocks 2");
  th_cli_expect_as("cli: eval --help says \"90.1 %\" (not \"%%\")", "eval --help", 0, "90.1 % test accuracy", "%%");
  test_eval_inputs();
}
