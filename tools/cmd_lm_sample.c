/* `dblocks lm-sample`: text from a trained block-diffusion language model,
 * token by token (models/lm_sampler.h); prints as it generates and reports tokens/s. */
#include "../data/file_io.h"
#include "../models/lm_sampler.h"
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int R; } stream_state;

/* one sequence: print each byte as it comes */
static void print_token(void *user, int k, const unsigned char *tokens, int R) {
  (void)user; (void)k;
  if (R == 1) {
    fputc(tokens[0], stdout);
    fflush(stdout);
  }
}

/* Prompts: lines of a file (empty lines skipped), or the one --prompt. */
static char **read_prompts(const char *prompt, const char *file, int *n) {
  char **out = NULL;
  *n = 0;
  if (prompt) {
    if (!*prompt) db_fail("lm-sample: --prompt is empty");
    out = db_malloc(sizeof *out);
    out[(*n)++] = strdup(prompt);
    return out;
  }
  size_t len;
  char *text = read_text_file(file, &len);
  int cap = 16;
  out = db_malloc(sizeof *out * (size_t)cap);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    size_t l = strlen(line);
    if (l && line[l - 1] == '\r') line[--l] = 0;
    if (!l) continue;
    if (*n == cap) out = db_realloc(out, sizeof *out * (size_t)(cap *= 2));
    out[(*n)++] = strdup(line);
  }
  free(text);
  if (!*n) db_fail("lm-sample: %s holds no prompt (one per line)", file);
  return out;
}

int cmd_lm_sample(int argc, char **argv) {
  const char *run = NULL, *prompt = NULL, *prompts_file = NULL, *device = NULL, *spacing = "rho";
  int tokens = 200, steps = 50, samples = 1;
  double temperature = 0, rho = 7;
  int seed = 0;
  cli_opt opts[] = {
      {"run", OPT_STR, &run, "run directory of dblocks lm-train (required)"},
      {"prompt", OPT_STR, &prompt, "the text to continue"},
      {"prompts", OPT_STR, &prompts_file, "a file of prompts, one per line"},
      {"tokens", OPT_INT, &tokens, "bytes to generate per prompt (default 200)"},
      {"steps", OPT_INT, &steps, "Euler steps per token, M (default 50)"},
      {"rho", OPT_FLOAT, &rho, "rho of the EDM noise schedule (default 7)"},
      {"spacing", OPT_STR, &spacing, "rho (EDM schedule) | law (equal steps of the training noise law) (default rho)"},
      {"temperature", OPT_FLOAT, &temperature, "sample the last step's logits at this temperature (default 0: argmax)"},
      {"samples", OPT_INT, &samples, "continuations per prompt, each from its own noise (default 1)"},
      {"seed", OPT_INT, &seed, "seed of the noise and of temperature sampling (default 0)"},
      {"device", OPT_STR, &device, "P:D device"},
  };
  cli_parse("lm-sample",
            "dblocks lm-sample --run DIR (--prompt TEXT | --prompts FILE) [options]\n"
            "  continues each prompt byte by byte: every byte is denoised by M Euler steps, each run by the block\n"
            "  that owns its noise level on one token against that block's K/V cache",
            opts, (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  if (!run) db_fail("lm-sample: --run DIR is required");
  if (!prompt == !prompts_file) db_fail("lm-sample: give exactly one of --prompt TEXT and --prompts FILE");
  if (tokens < 1 || tokens > 1 << 20) db_fail("lm-sample: --tokens %d must be in 1..%d", tokens, 1 << 20);
  if (steps < 2 || steps > 10000) db_fail("lm-sample: --steps %d must be in 2..10000", steps);
  if (samples < 1 || samples > 4096) db_fail("lm-sample: --samples %d must be in 1..4096", samples);
  if (!(temperature >= 0) || temperature > 100) db_fail("lm-sample: --temperature %g must be in [0, 100]", temperature);
  if (!(rho > 0) || rho > 100) db_fail("lm-sample: --rho %g must be in (0, 100]", rho);
  if (seed < 0) db_fail("lm-sample: --seed %d must not be negative", seed);
  int sp = lm_spacing_parse(spacing, "lm-sample");
  int np;
  char **ps = read_prompts(prompt, prompts_file, &np);
  db_ctx *ctx = db_init(device);
  lm_model m;
  lm_model_load(ctx, &m, run);
  fprintf(stderr, "dblocks lm-sample on %s: %d block(s) of %d layers, %d steps per byte (rho %g), %s\n", ctx->dev.name,
          m.rc.blocks, m.rc.layers / m.rc.blocks, steps, rho, temperature > 0 ? "temperature sampling" : "argmax");
  lm_sample_opts o = {steps, rho, temperature, (uint64_t)seed, sp};
  double secs = 0;
  long generated = 0;
  int streaming = np == 1 && samples == 1;
  for (int i = 0; i < np; i++) { /* prompt by prompt: equal lengths within a batch of samples */
    int P = (int)strlen(ps[i]), R = samples;
    unsigned char *in = db_malloc((size_t)R * P), *out = db_malloc((size_t)R * tokens);
    for (int r = 0; r < R; r++) memcpy(in + (size_t)r * P, ps[i], (size_t)P);
    if (streaming) fputs(ps[i], stdout);
    o.seed = (uint64_t)seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    secs += lm_generate(ctx, &m, in, R, P, tokens, o, out, streaming ? print_token : NULL, NULL);
    generated += (long)R * tokens;
    if (streaming) fputc('\n', stdout);
    else
      for (int r = 0; r < R; r++) printf("%s%.*s\n", ps[i], tokens, (const char *)out + (size_t)r * tokens);
    fflush(stdout);
    free(in);
    free(out);
  }
  fprintf(stderr, "%ld bytes in %.2f s: %.1f tokens/s (%d prompt(s) x %d sample(s))\n", generated, secs,
          secs > 0 ? generated / secs : 0, np, samples);
  for (int i = 0; i < np; i++) free(ps[i]);
  free(ps);
  lm_model_free(&m);
  db_shutdown(ctx);
  return 0;
}
