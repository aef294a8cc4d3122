/* `dblocks sample`: integrate the probability-flow ODE from σ_max to 0, each
 * step evaluated by the block that owns its σ; PNG grid (one row per class)
 * plus .npy files of the samples and their labels. */
#include "../data/image_io.h"
#include "cli.h"
#include "sample_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_sample(int argc, char **argv) {
  const char *device = NULL, *run = "runs/default", *png = NULL, *npy = NULL, *sampler = "euler";
  int steps = 50, per_class = 10, seed = 0;
  double guidance = 2.0, rho = 7.0;
  cli_opt opts[] = {
      {"run", OPT_STR, &run, "run directory with manifest.json and block_<i>.safetensors (default runs/default)"},
      {"steps", OPT_INT, &steps, "noise levels N of the EDM schedule (default 50)"},
      {"sampler", OPT_STR, &sampler, "euler | heun (default euler)"},
      {"guidance", OPT_FLOAT, &guidance, "classifier-free guidance scale (default 2.0; 1 = none)"},
      {"rho", OPT_FLOAT, &rho, "EDM schedule exponent (default 7)"},
      {"per-class", OPT_INT, &per_class, "samples per class (default 10)"},
      {"seed", OPT_INT, &seed, "noise seed (default 0)"},
      {"png", OPT_STR, &png, "grid image (default RUN/samples.png)"},
      {"npy", OPT_STR, &npy, "samples as .npy (default RUN/samples.npy; labels beside as *_labels.npy)"},
      {"device", OPT_STR, &device, "P:D device"},
  };
  cli_parse("sample", "dblocks sample [options]\n  draws per-class samples from a trained run", opts,
            (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  sample_request q = {run, steps, !strcmp(sampler, "heun"), guidance, rho, per_class, (uint64_t)seed, png, npy};
  if (strcmp(sampler, "euler") && strcmp(sampler, "heun")) db_fail("sample: --sampler %s: expected euler or heun", sampler);
  if (seed < 0) db_fail("sample: --seed must not be negative");
  if (!(rho > 0)) db_fail("sample: --rho %g must be positive", rho);
  if (guidance < 0) db_fail("sample: --guidance %g must not be negative (1 = none, 0 = unconditional)", guidance);
  db_ctx *ctx = db_init(device);
  sample_run(ctx, &q, 1);
  db_shutdown(ctx);
  return 0;
}
