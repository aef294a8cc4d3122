/* `dblocks tune`: picks, per GEMM shape class, the fastest of the kernel
 * configurations of cl/gemm.cl and CLBlast on this device, and caches the
 * winners (keyed by device, driver and platform version) next to the kernel
 * binaries in DBLOCKS_CACHE_DIR. Every candidate is validated against a
 * double reference before it is timed; a wrong one is never chosen. Training
 * reads the cache and never times anything itself, so its GEMMs are fixed
 * once tuned. */
#include "../ops/ops.h"
#include "cli.h"
#include <stdio.h>
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

int cmd_tune(int argc, char **argv) {
  const char *device = NULL;
  double seconds = 0.2;
  int quick = 0;
  cli_opt opts[] = {
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
  gemm_shape shapes[32];
  int n = model_shapes(shapes, quick);
  const char *const *cands;
  int nc = gemm_candidates(ctx, 0, &cands);
  int written = gemm_tune(ctx, shapes, n, cands, nc, seconds, 1);
  printf("%d shape classes written to %s\n", written, path);
  db_shutdown(ctx);
  return 0;
}
