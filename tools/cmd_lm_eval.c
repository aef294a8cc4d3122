/* `dblocks lm-eval`: a trained language model scored without a hub
 * (docs/metrics.md): the paper's protocol — prompts are the first bytes of
 * held-out passages, several continuations per prompt — scored by the shipped
 * byte-level judge (bits per byte of the generated continuations against the
 * true ones), distinct-n and the Jensen-Shannon divergence of byte 1-4-gram
 * distributions against the held-out text; plus the held-out denoising
 * cross-entropy of the blocks themselves. */
#include "../data/file_io.h"
#include "../models/judge.h"
#include "../models/lm_eval.h"
#include "../models/text_metrics.h"
#include "cli.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JUDGE_DEFAULT "data/judge-kjv.safetensors"
int cmd_judge(int argc, char **argv); /* tools/cmd_judge.c */

int cmd_lm_eval(int argc, char **argv) {
  const char *run = NULL, *judge_path = JUDGE_DEFAULT, *text = NULL, *heldout = NULL, *device = NULL, *json = NULL;
  const char *spacing = "rho";
  double heldout_fraction = 0.05, temperature = 0, rho = 7;
  int prompts = 32, samples = 4, prompt_bytes = 50, tokens = 50, steps = 50, seed = 0, ce_seqs = 256, show = 3;
  int train_judge = 0;
  cli_opt opts[] = {
      {"run", OPT_STR, &run, "run directory of dblocks lm-train (required)"},
      {"judge", OPT_STR, &judge_path, "the judge's weights (default " JUDGE_DEFAULT ", made by dblocks judge --train)"},
      {"train-judge", OPT_FLAG, &train_judge, "first retrain the judge into --judge, as `dblocks judge --train` does (about 20 min on 2 CPU cores)"},
      {"text", OPT_STR, &text, "the run's --text corpus (default: the King James Bible)"},
      {"heldout", OPT_STR, &heldout, "the run's --heldout file"},
      {"heldout-fraction", OPT_FLOAT, &heldout_fraction, "the run's --heldout-fraction (default 0.05)"},
      {"prompts", OPT_INT, &prompts, "held-out passages used as prompts (default 32)"},
      {"samples", OPT_INT, &samples, "continuations per prompt (default 4)"},
      {"prompt-bytes", OPT_INT, &prompt_bytes, "bytes of each passage given as the prompt (default 50)"},
      {"tokens", OPT_INT, &tokens, "bytes generated per continuation (default 50)"},
      {"steps", OPT_INT, &steps, "Euler steps per byte (default 50)"},
      {"spacing", OPT_STR, &spacing, "rho | law: where the steps sit (default rho; see lm-sample)"},
      {"rho", OPT_FLOAT, &rho, "rho of the EDM schedule (default 7)"},
      {"temperature", OPT_FLOAT, &temperature, "temperature of the last step (default 0: argmax)"},
      {"seed", OPT_INT, &seed, "seed of the noise (default 0)"},
      {"ce-sequences", OPT_INT, &ce_seqs, "held-out windows for the denoising cross-entropy (default 256)"},
      {"show", OPT_INT, &show, "continuations printed verbatim (default 3)"},
      {"json", OPT_STR, &json, "also write the figures as JSON to this file"},
      {"device", OPT_STR, &device, "P:D device"},
  };
  cli_parse("lm-eval",
            "dblocks lm-eval --run DIR [options]\n"
            "  generates continuations of held-out prompts and scores them with the byte-level judge and n-gram\n"
            "  statistics; also the blocks' held-out denoising cross-entropy (docs/metrics.md)",
            opts, (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  if (!run) db_fail("lm-eval: --run DIR is required");
  if (prompts < 1 || samples < 1 || prompt_bytes < 1 || tokens < 1 || ce_seqs < 1 || show < 0)
    db_fail("lm-eval: --prompts, --samples, --prompt-bytes, --tokens and --ce-sequences must be positive");
  if (steps < 2) db_fail("lm-eval: --steps %d must be at least 2", steps);
  if (seed < 0) db_fail("lm-eval: --seed %d must not be negative", seed);
  int sp = lm_spacing_parse(spacing, "lm-eval");
  if (train_judge) { /* the shipped recipe: the judge command's defaults */
    char *jargv[] = {"judge", "--train", "--out", (char *)judge_path, "--device", (char *)device, NULL};
    if (cmd_judge(device ? 6 : 4, jargv) != 0) db_fail("lm-eval: training the judge failed");
  }
  db_ctx *ctx = db_init(device);
  lm_model m;
  lm_model_load(ctx, &m, run);
  text_corpus c;
  if (text) text_corpus_file(&c, text, heldout, heldout_fraction);
  else text_corpus_kjv(&c);
  if (strcmp(c.source, m.rc.text))
    db_fail("lm-eval: %s was trained on \"%s\", this corpus is \"%s\" (give the run's --text/--heldout)", run, m.rc.text,
            c.source);
  judge *jd = judge_load(ctx, judge_path);
  printf("dblocks lm-eval on %s: %s (B=%d, L=%d), judge %s\n", ctx->dev.name, run, m.rc.blocks, m.rc.layers, judge_path);

  /* the protocol: prompts from held-out passages, `samples` continuations each */
  int P = prompt_bytes, len = P + tokens, R = prompts * samples;
  /* reference: R other held-out passages, as many bytes as the generated set (n-gram statistics depend on the size) */
  unsigned char *refp = db_malloc((size_t)R * len);
  lm_passages(&c, R, len, refp);
  unsigned char *pass = db_malloc((size_t)prompts * len), *in = db_malloc((size_t)R * P),
                *gen = db_malloc((size_t)R * tokens), *full = db_malloc((size_t)R * len);
  lm_passages(&c, prompts, len, pass);
  for (int i = 0; i < prompts; i++)
    for (int s = 0; s < samples; s++) memcpy(in + (size_t)(i * samples + s) * P, pass + (size_t)i * len, (size_t)P);
  lm_sample_opts so = {steps, rho, temperature, (uint64_t)seed, sp};
  double secs = lm_generate(ctx, &m, in, R, P, tokens, so, gen, NULL, NULL);
  for (int r = 0; r < R; r++) {
    memcpy(full + (size_t)r * len, in + (size_t)r * P, (size_t)P);
    memcpy(full + (size_t)r * len + P, gen + (size_t)r * tokens, (size_t)tokens);
  }
  /* judge bits per byte of the continuations (scored from byte P on), generated and true */
  const unsigned char **tg = db_malloc(sizeof *tg * (size_t)R), **tr = db_malloc(sizeof *tr * (size_t)R);
  const unsigned char **cg = db_malloc(sizeof *cg * (size_t)R), **cr = db_malloc(sizeof *cr * (size_t)R);
  size_t *lg = db_malloc(sizeof *lg * (size_t)R), *lr = db_malloc(sizeof *lr * (size_t)R);
  size_t *kg = db_malloc(sizeof *kg * (size_t)R), *kr = db_malloc(sizeof *kr * (size_t)R);
  for (int r = 0; r < R; r++) { tg[r] = full + (size_t)r * len; lg[r] = (size_t)len; cg[r] = gen + (size_t)r * tokens; kg[r] = (size_t)tokens; }
  for (int i = 0; i < R; i++) { tr[i] = refp + (size_t)i * len; lr[i] = (size_t)len; cr[i] = refp + (size_t)i * len + P; kr[i] = (size_t)tokens; }
  double bpb_gen = judge_bits_per_byte(jd, tg, lg, R, P), bpb_true = judge_bits_per_byte(jd, tr, lr, R, P);
  /* n-gram statistics: continuations against the whole held-out text */
  const unsigned char *ho = c.heldout;
  size_t nho = c.n_heldout;
  tm_report rg = tm_compare(cg, kg, R, &ho, &nho, 1), rt = tm_compare(cr, kr, R, &ho, &nho, 1);
  double per_block[DB_MAX_BLOCKS];
  double ce = lm_heldout_ce(ctx, &m, &c, ce_seqs, 0xe7a1ULL, per_block);
  const char *hb = judge_get_note(jd, "heldout_bits_per_byte");

  printf("\nprotocol: %d held-out prompts of %d bytes, %d continuations of %d bytes each, %d Euler steps (%s spacing), %s\n",
         prompts, P, samples, tokens, steps, spacing, temperature > 0 ? "temperature sampling" : "argmax");
  printf("  generation: %d bytes in %.2f s, %.1f tokens/s\n", R * tokens, secs, R * tokens / secs);
  printf("\n%-40s %12s %12s\n", "", "generated", "held-out");
  printf("%-40s %12s %12s\n", "(continuations after the prompt bytes)", "", "(true text)");
  printf("%-40s %12.3f %12.3f\n", "judge bits/byte of the continuation", bpb_gen, bpb_true);
  for (int n = 1; n <= TM_MAX_N; n++) {
    char l1[64], l2[64];
    snprintf(l1, sizeof l1, "distinct-%d", n);
    snprintf(l2, sizeof l2, "JS divergence of %d-grams (bits)", n);
    printf("%-40s %12.3f %12.3f\n", l1, rg.distinct[n - 1], rt.distinct[n - 1]);
    printf("%-40s %12.3f %12.3f\n", l2, rg.js[n - 1], rt.js[n - 1]);
  }
  printf("\nheld-out denoising cross-entropy: %.4f nats/token (per block:", ce);
  for (int b = 0; b < m.rc.blocks; b++) printf(" %.4f", per_block[b]);
  printf(")\n");
  if (hb) printf("judge's own bits/byte on the held-out text: %s\n", hb);
  for (int i = 0; i < show && i < prompts; i++)
    printf("\n[%d] prompt:    %.*s\n    generated: %.*s\n    true:      %.*s\n", i, P, (const char *)pass + (size_t)i * len,
           tokens, (const char *)gen + (size_t)i * samples * tokens, tokens, (const char *)pass + (size_t)i * len + P);
  if (json) {
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:f, s:f, s:f, s:f, s:f}", "run", run, "device",
                          ctx->dev.name, "blocks", m.rc.blocks, "layers", m.rc.layers, "prompts", prompts, "samples",
                          samples, "tokens", tokens, "steps", steps, "spacing", spacing, "temperature", temperature,
                          "judge_bpb_generated", bpb_gen, "judge_bpb_true", bpb_true, "heldout_ce", ce,
                          "tokens_per_s", R * tokens / secs);
    json_t *d = json_array(), *j = json_array(), *dt = json_array(), *jt = json_array(), *pb = json_array();
    for (int n = 0; n < TM_MAX_N; n++) {
      json_array_append_new(d, json_real(rg.distinct[n]));
      json_array_append_new(j, json_real(rg.js[n]));
      json_array_append_new(dt, json_real(rt.distinct[n]));
      json_array_append_new(jt, json_real(rt.js[n]));
    }
    for (int b = 0; b < m.rc.blocks; b++) json_array_append_new(pb, json_real(per_block[b]));
    json_object_set_new(o, "distinct", d);
    json_object_set_new(o, "js_bits", j);
    json_object_set_new(o, "distinct_true", dt);
    json_object_set_new(o, "js_bits_true", jt);
    json_object_set_new(o, "heldout_ce_per_block", pb);
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
    atomic_write_file(json, s, strlen(s));
    free(s);
    json_decref(o);
  }
  free(refp); free(pass); free(in); free(gen); free(full); free(tg); free(tr); free(cg); free(cr); free(lg); free(lr); free(kg); free(kr);
  judge_destroy(jd);
  text_corpus_free(&c);
  lm_model_free(&m);
  db_shutdown(ctx);
  return 0;
}
