/* `dblocks judge`: train the byte-level judge (models/judge.h) or score text
 * with it (bits per byte), docs/metrics.md "Language models". */
#include "../data/file_io.h"
#include "../data/text.h"
#include "../models/judge.h"
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JUDGE_DEFAULT_PATH "data/judge-kjv.safetensors"

int cmd_judge(int argc, char **argv);

static double heldout_bpb(judge *j, const text_corpus *c, size_t *n) {
  const unsigned char *t[1] = {c->heldout};
  size_t l[1] = {c->n_heldout};
  return judge_bits_per_byte_n(j, t, l, 1, 0, n);
}

int cmd_judge(int argc, char **argv) {
  const char *device = NULL, *text = NULL, *heldout = NULL, *out = NULL, *bpb = NULL, *path = NULL;
  int train = 0, steps = 7500, batch = 16, seed = 0, from = 0;
  judge_config cfg = judge_default_config();
  double lr = 2e-3;
  cli_opt opts[] = {
      {"train", OPT_FLAG, &train, "train a judge (next-byte cross-entropy) and save it to --out"},
      {"bpb", OPT_STR, &bpb, "bits per byte of this text file under the judge (--judge)"},
      {"from", OPT_INT, &from, "--bpb: score bytes from this index on (default 0; e.g. 50 after a 50-byte prompt)"},
      {"judge", OPT_STR, &path, "judge weights to score with (default " JUDGE_DEFAULT_PATH ")"},
      {"text", OPT_STR, &text, "--train: text file (default: the KJV Bible, train books; held-out: every 11th book)"},
      {"heldout", OPT_STR, &heldout, "--train --text: held-out text file (default: the last 10 % of --text)"},
      {"out", OPT_STR, &out, "--train: where to save the weights (default " JUDGE_DEFAULT_PATH ")"},
      {"steps", OPT_INT, &steps, "--train: AdamW steps (default 7500)"},
      {"batch", OPT_INT, &batch, "--train: windows per step (default 16)"},
      {"lr", OPT_FLOAT, &lr, "--train: peak learning rate (default 2e-3; warm-up, cosine to lr/10)"},
      {"seed", OPT_INT, &seed, "--train: initialisation and window seed (default 0)"},
      {"width", OPT_INT, &cfg.width, "--train: model width (default 128)"},
      {"heads", OPT_INT, &cfg.heads, "--train: attention heads (default 4)"},
      {"layers", OPT_INT, &cfg.layers, "--train: layers (default 4)"},
      {"context", OPT_INT, &cfg.context, "--train: context in bytes (default 128)"},
      {"device", OPT_STR, &device, "P:D device"},
  };
  cli_parse("judge",
            "dblocks judge --train [--text FILE] [--steps N] [--out FILE] | dblocks judge --bpb FILE [--judge FILE]\n"
            "  the byte-level judge of the language model: train it, or report bits per byte of a text\n"
            "  (without --train or --bpb: the judge's bits per byte on the KJV held-out books)",
            opts, (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  if (train && bpb) db_fail("judge: give --train or --bpb, not both");
  if (!path) path = JUDGE_DEFAULT_PATH;
  if (!out) out = JUDGE_DEFAULT_PATH;
  if (from < 0) db_fail("judge: --from %d must be >= 0", from);
  if (train) {
    judge_config_check(&cfg);
    if (steps <= 0 || batch <= 0) db_fail("judge: --steps and --batch must be positive");
    text_corpus c;
    if (text) text_corpus_file(&c, text, heldout, 0.1);
    else text_corpus_kjv(&c);
    db_ctx *ctx = db_init(device);
    judge *j = judge_create(ctx, cfg, (uint64_t)seed);
    fprintf(stderr, "judge: training on %s (%zu bytes; held-out %zu bytes) on %s\n", c.source, c.n_train, c.n_heldout,
            ctx->dev.name);
    double t0 = db_now();
    double tail = judge_train(j, c.train, c.n_train, steps, batch, lr, (uint64_t)seed);
    double train_s = db_now() - t0;
    size_t n = 0;
    double h = heldout_bpb(j, &c, &n);
    char v[1024];
    snprintf(v, sizeof v, "%.4f", h);
    judge_note(j, "heldout_bits_per_byte", v);
    snprintf(v, sizeof v, "%.4f", tail / 0.6931471805599453);
    judge_note(j, "train_bits_per_byte", v);
    snprintf(v, sizeof v, "%s; %d steps x %d windows, lr %g, seed %d; %.0f s on %s", c.source, steps, batch, lr, seed,
             train_s, ctx->dev.name);
    judge_note(j, "trained", v);
    judge_save(j, out);
    printf("judge: %zu parameters, trained in %.0f s; training loss (last 10 %% of steps) %.3f bits/byte\n",
           param_set_numel(judge_params(j)), train_s, tail / 0.6931471805599453);
    printf("  held-out bits per byte: %.4f (%zu bytes of %s)\n  saved %s\n", h, n, c.source, out);
    judge_destroy(j);
    text_corpus_free(&c);
    db_shutdown(ctx);
    return 0;
  }
  unsigned char *buf = NULL;
  size_t len = 0;
  text_corpus c = {0};
  if (bpb) buf = (unsigned char *)read_text_file(bpb, &len);
  else text_corpus_kjv(&c);
  db_ctx *ctx = db_init(device);
  judge *j = judge_load(ctx, path);
  size_t n = 0;
  double h;
  if (bpb) {
    const unsigned char *t[1] = {buf};
    size_t l[1] = {len};
    h = judge_bits_per_byte_n(j, t, l, 1, from, &n);
    printf("%.4f bits per byte (%zu bytes of %s scored by %s)\n", h, n, bpb, path);
  } else {
    h = heldout_bpb(j, &c, &n);
    printf("%.4f bits per byte (%zu bytes of the KJV held-out books, scored by %s)\n", h, n, path);
  }
  judge_destroy(j);
  free(buf);
  text_corpus_free(&c);
  db_shutdown(ctx);
  return 0;
}
