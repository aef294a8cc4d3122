/* The command line, run as a separate process (DBLOCKS_BIN, set by `make test`):
 * help, device listing, and clear errors with a non-zero exit for bad input. */
#include "harness.h"
#include <stdlib.h>
#include <sys/wait.h>

static int run_cli(const char *args, char *out, size_t n) {
  const char *bin = getenv("DBLOCKS_BIN");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin ? bin : "build/dblocks", args);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t len = fread(out, 1, n - 1, p);
  out[len] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect(const char *args, int want_rc, const char *needle) {
  static char out[1 << 16];
  int rc = run_cli(args, out, sizeof out);
  char name[300];
  snprintf(name, sizeof name, "cli: dblocks %s -> exit %d, says \"%s\"", args, want_rc, needle);
  th_check(rc == want_rc && strstr(out, needle) != NULL, name, "exit %d, output:\n%s", rc, out);
}

void tests_cli(void) {
  expect("--help", 0, "commands:");
  expect("", 2, "usage: dblocks");
  expect("frobnicate", 2, "unknown command 'frobnicate'");
  expect("devices", 0, "0:0");
  expect("devices --help", 0, "usage: dblocks devices");
  expect("bench", 1, "say what to benchmark");
  expect("bench ops --device 9:9", 1, "no device 9:9");
  expect("bench ops --device gpu", 1, "bad device 'gpu'");
  expect("bench ops --batch abc", 1, "option --batch wants an integer, got 'abc'");
  expect("bench ops --bogus", 1, "unknown option '--bogus'");
  expect("bench ops --batch", 1, "option --batch needs a value");
  expect("bench ops --quick --seconds 0.01", 0, "DiT layer fwd+bwd");
  expect("train --help", 0, "usage: dblocks train");
  expect("train --layers 7 --blocks 3 --out /nonexistent/x", 1, "--layers 7 must be a positive multiple of --blocks 3");
  expect("train --blocks 0", 1, "--blocks 0: must be");
  expect("train --partition zigzag", 1, "--partition zigzag: expected equiprob or uniform");
  expect("train --width 30 --heads 4", 1, "width 30 must be a positive multiple of 4");
  expect("train --data /nonexistent/fmnist --out /tmp/dblocks-cli-test-none", 1, "/nonexistent/fmnist");
  expect("sample --run /nonexistent/run", 1, "cannot read /nonexistent/run/manifest.json");
  expect("sample --sampler rk4 --run /nonexistent/run", 1, "--sampler rk4: expected euler or heun");
  expect("eval", 1, "give exactly one of --run DIR or --samples FILE.npy");
  expect("eval --samples /nonexistent/s.npy --classifier /nonexistent/c.safetensors --data /nonexistent/d", 1, "/nonexistent");
  expect("bench train --layers 5 --blocks 2", 1, "--layers 5 must be a positive multiple of --blocks 2");
}
