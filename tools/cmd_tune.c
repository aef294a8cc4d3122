/* `dblocks tune`: picks, per GEMM shape class, the fastest of the kernel
 * configurations of cl/gemm.cl and CLBlast on this device, and caches the
 * winners (keyed by device, driver and platform version) next to the kernel
 * binaries in DBLOCKS_CACHE_DIR. Every candidate is validated against a
 * double reference before it is timed; a wrong one is never chosen. Training
 * reads the cache and never times anything itself, so its GEMMs are fixed
 * once tuned. */
#include "../ops/ops.h"
#include "cli.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The products of the models' linears (M = batch x tokens): forward NT,
 * dinp NN, dweight TN, at width 384 (batch 32, 196 tokens) and the demo's
 * width 64 (batch 64, 49 tokens), and square n = 1024, 2048. */
static int model_shapes(gemm_shape *out, int quick) {
  int n = 0;
  const int widths[2][2] = {{6272, 384}, {3136, 64}};
  for (int w = quick ? 1 : 0; w < 2; w++) {
    int M = widths[w][0], C = widths[w][1];
    int io[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
    for (int i = 0; i < 4; i++) {
      int IC = io[i][0], OC = io[i][1];
      out[n++] = (gemm_shape){0, 1, M, OC, IC};  /* forward */
      out[n++] = (gemm_shape){0, 0, M, IC, OC};  /* dinp */
      out[n++] = (gemm_shape){1, 0, OC, IC, M};  /* dweight */
    }
  }
  if (!quick) {
    out[n++] = (gemm_shape){0, 0, 1024, 1024, 1024};
    out[n++] = (gemm_shape){0, 0, 2048, 2048, 2048};
  }
  return n;
}

/* The best parameters of a CLBlast tuner result file (clblast_tuner_xgemm's
 * clblast_xgemm_*_32.json: "best_parameters": "GEMMK=0 KREG=1 KWG=32 ...")
 * into the device's cache, where every later CLBlast product of dblocks
 * uses them. Fails clearly on a file that is not such a result. */
static void import_clblast_params(db_ctx *ctx, const char *file) {
  json_error_t jerr;
  json_t *root = json_load_file(file, 0, &jerr);
  if (!root) db_fail("tune: --clblast-params %s: not a JSON file (%s, line %d)", file, jerr.text, jerr.line);
  const char *best = json_string_value(json_object_get(root, "best_parameters"));
  const char *family = json_string_value(json_object_get(root, "kernel_family"));
  const char *precision = json_string_value(json_object_get(root, "precision"));
  if (!best || !family || strncmp(family, "xgemm_", 6) || (precision && strcmp(precision, "32")))
    db_fail("tune: --clblast-params %s is not a single-precision result of clblast_tuner_xgemm (want kernel_family "
            "xgemm_*, precision 32 and best_parameters)", file);
  const char *names[24];
  size_t values[24];
  char buf[1024], *save = NULL;
  snprintf(buf, sizeof buf, "%s", best);
  int n = 0;
  for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok) db_fail("tune: --clblast-params %s: bad parameter '%s' in best_parameters", file, tok);
    *eq = 0;
    if (!strcmp(tok, "PRECISION")) continue;
    char *end;
    long v = strtol(eq + 1, &end, 10);
    if (*end || v < 0 || v > 65536 || n == 24)
      db_fail("tune: --clblast-params %s: bad value for %s in best_parameters", file, tok);
    names[n] = tok;
    values[n++] = (size_t)v;
  }
  if (!n) db_fail("tune: --clblast-params %s: no parameters in best_parameters", file);
  char source[600];
  snprintf(source, sizeof source, "%s (%s)", file, family);
  gemm_cache_put_clblast(ctx, names, values, n, source);
  printf("CLBlast Xgemm parameters from %s: %s\n", file, best);
  json_decref(root);
}

int cmd_tune(int argc, char **argv) {
  const char *device = NULL;
  double seconds = 0.2;
  int quick = 0;
  const char *clblast_params = NULL;
  cli_opt opts[] = {
      {"clblast-params", OPT_STR, &clblast_params,
       "a clblast_tuner_xgemm result (clblast_xgemm_*_32.json): CLBlast runs with its best parameters from then on"},
      {"device", OPT_STR, &device, "P:D device"},
      {"seconds", OPT_FLOAT, &seconds, "device time per candidate and shape (default 0.2)"},
      {"quick", OPT_FLAG, &quick, "the demo's width-64 shapes only"},
  };
  cli_parse("tune",
            "dblocks tune [options]\n  times the GEMM candidates (own kernel configurations and CLBlast) for the shape\n"
            "  classes the models use, after validating each against a double reference, and caches the winners\n"
            "  for this device in DBLOCKS_CACHE_DIR (read by every later run; DBLOCKS_TUNE=off ignores them)",
            opts, (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  if (seconds <= 0) db_fail("tune: --seconds %g must be positive", seconds);
  db_ctx *ctx = db_init(device);
  char path[1200];
  gemm_cache_path(ctx, path, sizeof path);
  if (!path[0]) db_fail("tune: the cache is off (DBLOCKS_CACHE_DIR=off): nowhere to keep the results");
  printf("dblocks tune on %s (%s; driver %s)\n", ctx->dev.name, ctx->dev.platform_name, ctx->dev.driver);
  if (clblast_params) import_clblast_params(ctx, clblast_params);
  gemm_shape shapes[32];
  int n = model_shapes(shapes, quick);
  const char *const *cands;
  int nc = gemm_candidates(ctx, 0, &cands);
  int written = gemm_tune(ctx, shapes, n, cands, nc, seconds, 1);
  printf("%d shape classes written to %s\n", written, path);
  db_shutdown(ctx);
  return 0;
}
