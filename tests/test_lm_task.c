/* The language model on the one training driver (models/lm_task.c), its
 * generation (models/lm_sampler.c) and its commands: training lowers the loss,
 * resume equals the uninterrupted run, --block i leaves the other blocks bit for
 * bit, generation is deterministic for a seed, bad input gets a clear error and
 * leaves checkpoints intact. Run from tests/test_lm.c (suite `lm`). */
#include "harness.h"
#include "../data/file_io.h"
#include "../models/judge.h"
#include "../models/lm_sampler.h"
#include "../models/lm_task.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[512];

static void path(char *out, const char *dir, const char *file) {
  if ((size_t)snprintf(out, 1024, "%s/%s", dir, file) >= 1024) db_fail("test path too long: %s/%s", dir, file);
}


/* A small corpus with structure a model picks up in a few steps. */
static const char *VERSES =
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and "
    "darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God "
    "said, Let there be light: and there was light. And God saw the light, that it was good: and God divided "
    "the light from the darkness.\n";

static text_corpus tiny_corpus(void) {
  text_corpus c = {0};
  size_t v = strlen(VERSES);
  c.n_train = 40 * v;
  c.train = db_malloc(c.n_train);
  for (int i = 0; i < 40; i++) memcpy(c.train + (size_t)i * v, VERSES, v);
  c.n_heldout = v;
  c.heldout = db_malloc(v);
  memcpy(c.heldout, VERSES, v);
  snprintf(c.source, sizeof c.source, "test verses");
  return c;
}

static train_opts tiny_opts(const char *out, const text_corpus *c, int blocks, int steps) {
  train_opts o = {0};
  run_config_defaults_task(&o.rc, TASK_LM);
  o.rc.model.width = 32;
  o.rc.model.heads = 2;
  o.rc.layers = 2;
  o.rc.blocks = blocks;
  o.rc.lm.context = 16;
  o.rc.lm.embed_dim = 16;
  o.rc.batch = 8;
  o.rc.steps = steps;
  o.rc.lr = 3e-3;
  snprintf(o.rc.text, sizeof o.rc.text, "%s", c->source);
  lm_prepare_config(&o.rc, c);
  o.out_dir = out;
  o.only_block = -1;
  o.log_every = 4;
  return o;
}

static train_result train(train_opts *o, const text_corpus *c) {
  train_task *t = lm_task_create(th_ctx, &o->rc, c);
  train_result r = train_run(th_ctx, o, t);
  lm_task_destroy(t);
  return r;
}

static void test_loss_decreases(const text_corpus *c) {
  char out[1024];
  path(out, root, "loss");
  train_opts o = tiny_opts(out, c, 1, 60);
  train_result r = train(&o, c);
  th_check(r.last_loss < 0.8 * r.first_loss, "lm train: 60 steps lower the loss", "first interval %.4f, last %.4f",
           r.first_loss, r.last_loss);
  printf("        loss %.4f -> %.4f nats/token over %ld steps\n", r.first_loss, r.last_loss, r.steps_run);
}

static void test_resume_blocks_generate(const text_corpus *c) {
  char a[1024], b[1024], fa[1024], fb[1024], keep0[1024], keep1[1024];
  path(a, root, "straight");
  path(b, root, "resumed");
  train_opts o = tiny_opts(a, c, 2, 8);
  train(&o, c); /* uninterrupted: 2 blocks x 8 steps */
  train_opts p = tiny_opts(b, c, 2, 8);
  p.max_steps_this_run = 5; /* stops inside block 0 */
  train(&p, c);
  p.max_steps_this_run = 0;
  p.resume = 1;
  train(&p, c);
  int same = 1;
  for (int i = 0; i < 2; i++) {
    char name[64];
    snprintf(name, sizeof name, "block_%d.safetensors", i);
    path(fa, a, name);
    path(fb, b, name);
    same &= th_same_file(fa, fb);
  }
  th_check(same, "lm train: resume gives bit-identical checkpoints to the uninterrupted run", "files differ");

  /* --block 1 alone leaves block 0 untouched, bit for bit */
  path(fa, a, "block_0.safetensors");
  path(fb, a, "block_1.safetensors");
  path(keep0, root, "block_0.copy");
  path(keep1, root, "block_1.copy");
  th_copy_file(fa, keep0);
  th_copy_file(fb, keep1);
  train_opts q = tiny_opts(a, c, 2, 12);
  q.only_block = 1;
  q.resume = 1;
  train(&q, c);
  th_check(th_same_file(fa, keep0), "lm train: --block 1 leaves block 0's file bit-for-bit unchanged", "block 0 changed");
  th_check(!th_same_file(fb, keep1), "lm train: --block 1 did train block 1", "block 1 unchanged");

  /* generation: deterministic for a seed, another seed another text */
  lm_model m;
  lm_model_load(th_ctx, &m, a);
  const unsigned char prompts[2 * 6] = {'I', 'n', ' ', 't', 'h', 'e', 'A', 'n', 'd', ' ', 'G', 'o'};
  /* 6 + 30 bytes pass the context of 16 twice: the window slides */
  enum { NT = 30 };
  unsigned char o1[2 * NT], o2[2 * NT], o3[2 * NT];
  lm_sample_opts so = {6, 7, 0, 11, LM_STEPS_RHO};
  lm_generate(th_ctx, &m, prompts, 2, 6, NT, so, o1, NULL, NULL);
  lm_generate(th_ctx, &m, prompts, 2, 6, NT, so, o2, NULL, NULL);
  so.temperature = 1.0;
  lm_generate(th_ctx, &m, prompts, 2, 6, NT, so, o3, NULL, NULL);
  unsigned char o4[2 * NT];
  so.seed = 12;
  lm_generate(th_ctx, &m, prompts, 2, 6, NT, so, o4, NULL, NULL);
  th_check(!memcmp(o1, o2, sizeof o1), "lm generate: same seed, same text (past the context: the window slides)", "differ");
  th_check(memcmp(o3, o4, sizeof o3) != 0, "lm generate: another seed, another text (temperature 1)", "same");
  lm_model_free(&m);
}

static void write_bytes(const char *p, const void *data, size_t n) {
  FILE *f = fopen(p, "wb");
  if (f) { fwrite(data, 1, n, f); fclose(f); }
}

static void test_cli_errors(const text_corpus *c) {
  char a[1024], text[1024], garbage[1024], f0[1024], keep0[1024], args[4096];
  path(a, root, "cli");
  path(text, root, "verses.txt");
  path(garbage, root, "garbage.bin");
  write_bytes(text, c->train, 8 * strlen(VERSES));
  unsigned char junk[4096];
  for (int i = 0; i < 4096; i++) junk[i] = (unsigned char)(i * 7 % 32); /* control bytes */
  write_bytes(garbage, junk, sizeof junk);
  snprintf(args, sizeof args, "lm-train --out %s --text %s --width 32 --heads 2 --layers 2 --blocks 2 --context 16 "
           "--embed-dim 8 --batch 4 --steps 3 --quiet --heldout-fraction 0.2", a, text);
  th_cli_expect_as("lm-train --text trains a tiny model from the command line", args, 0, "done:", NULL);
  path(f0, a, "block_0.safetensors");
  path(keep0, root, "cli_block_0.copy");
  th_copy_file(f0, keep0);
  snprintf(args, sizeof args, "lm-train --out %s --text %s --resume --quiet", a, garbage);
  th_cli_expect_as("lm-train: a binary file is refused, naming it", args, 1, "garbage.bin", NULL);
  snprintf(args, sizeof args, "lm-train --out %s --text %s --heldout-fraction 0.2 --resume --quiet --width 64", a, text);
  th_cli_expect_as("lm-train: resuming with another width is refused", args, 1, "--width is 32 there but 64 here", NULL);
  th_check(th_same_file(f0, keep0), "lm-train: refused runs leave the checkpoints intact", "block 0 changed");
  snprintf(args, sizeof args, "lm-sample --run %s --prompt \"In the\" --tokens 4 --steps 3", a);
  th_cli_expect_as("lm-sample continues a prompt and reports tokens/s", args, 0, "tokens/s", NULL);
  snprintf(args, sizeof args, "lm-sample --run %s --prompt \"\"", a);
  th_cli_expect_as("lm-sample: an empty prompt is refused", args, 1, "--prompt is empty", NULL);
  snprintf(args, sizeof args, "lm-sample --run %s/nowhere --prompt x", root);
  th_cli_expect_as("lm-sample: a missing run directory is named", args, 1, "nowhere", NULL);
  snprintf(args, sizeof args, "lm-sample --run %s --prompt x --steps 1", a);
  th_cli_expect_as("lm-sample: --steps 1 is refused", args, 1, "--steps 1", NULL);
  /* lm-eval end to end with a tiny judge */
  char jpath[1024];
  path(jpath, root, "judge.safetensors");
  judge *j = judge_create(th_ctx, (judge_config){16, 2, 1, 16}, 1);
  judge_train(j, c->train, c->n_train, 3, 4, 1e-3, 1);
  judge_save(j, jpath);
  judge_destroy(j);
  snprintf(args, sizeof args, "lm-eval --run %s --judge %s --text %s --heldout-fraction 0.2 --prompts 2 --samples 2 "
           "--tokens 4 --steps 3 --ce-sequences 4", a, jpath, text);
  th_cli_expect_as("lm-eval scores continuations with the judge and n-gram statistics", args, 0,
                   "held-out denoising cross-entropy", NULL);
  snprintf(args, sizeof args, "lm-eval --run %s --judge %s --text %s --prompts 2", a, jpath, text);
  th_cli_expect_as("lm-eval: another corpus than the run's is refused", args, 1, "was trained on", NULL);
  snprintf(args, sizeof args, "lm-eval --run %s --judge %s/nojudge --text %s --heldout-fraction 0.2", a, root, text);
  th_cli_expect_as("lm-eval: a missing judge file is named", args, 1, "nojudge", NULL);
  write_bytes(f0, "not a safetensors file at all", 29);
  snprintf(args, sizeof args, "lm-sample --run %s --prompt x", a);
  th_cli_expect_as("lm-sample: a corrupt block file is named", args, 1, "block_0.safetensors", NULL);
}

/* The noise levels of a byte: from σ_max down to σ_min, strictly, then 0, for both spacings and laws. */
static void test_sigma_steps(const text_corpus *c) {
  for (int noise = 0; noise < 2; noise++)
    for (int sp = 0; sp < 2; sp++) {
      train_opts o = tiny_opts(NULL, c, 1, 1);
      o.rc.layers = 3;
      o.rc.blocks = 3;
      o.rc.lm.noise = noise;
      o.rc.curve.n = 0;
      lm_prepare_config(&o.rc, c);
      double sig[21];
      lm_sample_opts so = {20, 7, 0, 0, sp};
      lm_sigma_steps(&o.rc, so, sig);
      int ok = sig[0] == o.rc.bounds[3] && fabs(sig[19] - o.rc.bounds[0]) <= 1e-12 * o.rc.bounds[0] && sig[20] == 0;
      for (int j = 0; j < 19; j++) ok &= sig[j + 1] < sig[j];
      char name[128];
      snprintf(name, sizeof name, "lm sampler: %s steps under the %s law run from sigma_max down to sigma_min, then 0",
               sp ? "law-spaced" : "rho-spaced", noise ? "log-normal" : "equi-difficulty");
      th_check(ok, name, "sigma %g .. %g (bounds %g .. %g)", sig[0], sig[19], o.rc.bounds[0], o.rc.bounds[3]);
    }
}

void tests_lm_task(void) {
  snprintf(root, sizeof root, "%s/dblocks-lm-test-%d", getenv("DBLOCKS_CACHE_DIR") ? getenv("DBLOCKS_CACHE_DIR") : "/tmp",
           (int)getpid());
  mkdir(root, 0755);
  text_corpus c = tiny_corpus();
  test_sigma_steps(&c);
  test_loss_decreases(&c);
  test_resume_blocks_generate(&c);
  test_cli_errors(&c);
  text_corpus_free(&c);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) printf("        could not remove %s\n", root);
}
