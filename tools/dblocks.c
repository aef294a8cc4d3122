/* dblocks command line: `dblocks <command> [options]`. */
#include "../runtime/db.h"
#include "cli.h"
#include "dist.h"
#include <stdio.h>
#include <string.h>

int cmd_tune(int argc, char **argv); /* tools/cmd_tune.c */
int cmd_judge(int argc, char **argv); /* tools/cmd_judge.c */
int cmd_lm_train(int argc, char **argv); /* tools/cmd_lm_train.c */
int cmd_lm_sample(int argc, char **argv); /* tools/cmd_lm_sample.c */
int cmd_lm_eval(int argc, char **argv); /* tools/cmd_lm_eval.c */
int cmd_classify_eval(int argc, char **argv); /* tools/cmd_classify.c */
int cmd_classify_backprop(int argc, char **argv); /* tools/cmd_classify.c */
int cmd_report(int argc, char **argv); /* tools/cmd_report.c */

static const struct { const char *name, *help; int (*fn)(int, char **); } commands[] = {
    {"devices", "list OpenCL platforms and devices", cmd_devices},
    {"train", "train a DiffusionBlocks DiT, or with --task classify the diffusion classifier (B = 1: end to end)", cmd_train},
    {"sample", "draw class-conditional samples from a trained run", cmd_sample},
    {"eval", "Frechet distance and conditional accuracy of samples", cmd_eval},
    {"demo", "train a small B = 3 model, sample and evaluate it (what `make demo` runs)", cmd_demo},
    {"bench", "benchmarks: `dblocks bench ops`, `dblocks bench train`, `dblocks bench lm`", cmd_bench},
    {"tune", "pick and cache the fastest validated GEMM per shape class for this device", cmd_tune},
    {"lm-train", "train the block-diffusion byte language model (or its B = 1 baseline)", cmd_lm_train},
    {"lm-sample", "generate text from a trained language model, token by token with K/V caches", cmd_lm_sample},
    {"lm-eval", "score a trained language model: judge bits/byte, n-gram statistics, held-out cross-entropy", cmd_lm_eval},
    {"classify-eval", "test accuracy of a diffusion classifier (train --task classify), block by block", cmd_classify_eval},
    {"classify-backprop", "train the backprop ViT baseline of the classifier and report its test accuracy", cmd_classify_backprop},
    {"report", "figures of a run (loss, sigma, partition, memory, trajectory) and one HTML page", cmd_report},
    {"judge", "train the byte-level judge of the language model, or score text (bits per byte)", cmd_judge},
};

static void usage(FILE *f) {
  fprintf(f, "usage: dblocks <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(f, "  %-17s %s\n", commands[i].name, commands[i].help);
  fprintf(f, "\nevery command takes --device P:D (or DBLOCKS_DEVICE=P:D); default: the first GPU, else the\n"
             "first device. `dblocks <command> --help` documents a command.\n"
             "environment: DBLOCKS_CACHE_DIR (kernel binary cache; \"off\" disables), DBLOCKS_PROFILE=1\n"
             "(per-kernel device times at exit), DBLOCKS_GEMM=clblast|own:<params> (force one GEMM),\n"
             "DBLOCKS_TUNE=auto|cache|off (tune a GEMM shape class on its first use, capped by\n"
             "DBLOCKS_TUNE_SECONDS, default 4 / only read the tuning cache / ignore it).\n");
}

int main(int argc, char **argv) {
  dist_init(&argc, &argv); /* only under mpirun */
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(argv[1], commands[i].name)) {
      int rc = commands[i].fn(argc - 1, argv + 1);
      dist_finalize();
      return rc;
    }
  fprintf(stderr, "dblocks: error: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
