/* Looking inside the samplers (issue 12): the step hooks of the image sampler
 * (sample_images_traced) and of the language model's (lm_generate_traced) only
 * read -- the images and bytes are those of sample_images and lm_generate, bit
 * for bit -- and they report what they promise (every step, its σ, the block
 * that owns it, z and D, the logits that choose the byte). Then the two figures
 * built on them (tools/report_traces.c: the denoising trajectory and the
 * generation trace) through `dblocks report` on tiny runs: they live with the
 * CLI, not in the library this binary links, so they are tested where a
 * learner meets them, with their errors (a missing block, an output that
 * cannot be written). */
#include "harness.h"
#include "../models/diffusion.h"
#include "../models/lm_sampler.h"
#include <stdlib.h>
#include <sys/stat.h>

#define TINY_IMG "train --width 16 --heads 2 --layers 2 --blocks 2 --patch 4 --batch 8 --steps 8 --quiet"
#define TINY_LM "lm-train --blocks 2 --layers 2 --width 32 --heads 2 --context 16 --embed-dim 16 --batch 8 --steps 4 --quiet"

/* ---------------------------------------------------------------- the image sampler's hook */
typedef struct {
  const run_config *rc;
  size_t img;
  int steps, calls, blocks_ok, order_ok, next_step;
  float *final;   /* (n, img): z of the call after the last step */
  float *z0;      /* (n, img): z at step 0 */
} img_trace;

static void img_hook(void *user, int first, int m, int step, double sigma, int block, const float *z, const float *D) {
  img_trace *t = user;
  t->calls++;
  if (step != t->next_step) t->order_ok = 0;
  t->next_step = step == t->steps ? 0 : step + 1;
  if (step < t->steps) t->blocks_ok &= D != NULL && block == edm_block_of_sigma(t->rc->bounds, t->rc->blocks, sigma);
  else t->blocks_ok &= D == NULL && block == -1;
  if (step == 0) memcpy(t->z0 + (size_t)first * t->img, z, (size_t)m * t->img * sizeof *z);
  if (step == t->steps) memcpy(t->final + (size_t)first * t->img, z, (size_t)m * t->img * sizeof *z);
}

static void test_image_hook(const char *run) {
  run_config rc;
  manifest_read(run, &rc);
  dit_block bl[2];
  for (int i = 0; i < 2; i++) {
    dit_block_create(th_ctx, &bl[i], rc.model, "traced");
    block_load(th_ctx, run, i, &bl[i].ps);
  }
  size_t img = (size_t)rc.model.in_ch * rc.model.img_h * rc.model.img_w;
  int labels[4] = {0, 1, 2, 10};
  float *s1 = db_malloc(4 * img * sizeof(float)), *s2 = db_malloc(4 * img * sizeof(float));
  img_trace t = {&rc, img, 6, 0, 1, 1, 0, db_malloc(4 * img * sizeof(float)), db_malloc(4 * img * sizeof(float))};
  for (int heun = 0; heun < 2; heun++) {
    sampler_opts so = {6, 7.0, heun, 2.0, 11, 3}; /* chunks of 3 and 1 */
    sample_images(th_ctx, bl, &rc, labels, 4, so, s1);
    t.calls = 0, t.blocks_ok = 1, t.order_ok = 1, t.next_step = 0;
    sample_images_traced(th_ctx, bl, &rc, labels, 4, so, NULL, 0, img_hook, &t, s2);
    th_check(!memcmp(s1, s2, 4 * img * sizeof(float)),
             heun ? "traces: sample_images_traced (Heun, guided, 2 chunks) = sample_images bit for bit"
                  : "traces: sample_images_traced (Euler, guided, 2 chunks) = sample_images bit for bit", "images differ");
    th_check(t.calls == 2 * 7 && t.order_ok && t.blocks_ok && !memcmp(t.final, s2, 4 * img * sizeof(float)),
             heun ? "traces: the hook sees steps 0..N of each chunk, each σ's owner, and the result last (Heun)"
                  : "traces: the hook sees steps 0..N of each chunk, each σ's owner, and the result last (Euler)",
             "%d calls (want 14), order %d, blocks %d, final %s", t.calls, t.order_ok, t.blocks_ok,
             memcmp(t.final, s2, 4 * img * sizeof(float)) ? "differs" : "same");
  }
  /* an explicit grid: z starts at its first σ with sample_images' noise */
  double grid[5] = {40, 3, 0.5, 0.002, 0};
  sampler_opts so = {50, 7.0, 0, 1.0, 5, 256};
  t.steps = 4, t.calls = 0, t.blocks_ok = 1, t.order_ok = 1, t.next_step = 0;
  sample_images_traced(th_ctx, bl, &rc, labels, 4, so, grid, 4, img_hook, &t, s2);
  float *eps = db_malloc(img * sizeof(float));
  int noise_ok = 1;
  for (int i = 0; i < 4; i++) {
    db_rng_normal_host(eps, img, 5, (uint64_t)i * ((img + 3) / 4));
    for (size_t k = 0; k < img; k++) noise_ok &= t.z0[(size_t)i * img + k] == (float)(eps[k] * 40.0f);
  }
  th_check(noise_ok && t.calls == 5 && t.order_ok && t.blocks_ok && !memcmp(t.final, s2, 4 * img * sizeof(float)),
           "traces: a given noise grid (40, 3, 0.5, 0.002, 0): z starts at 40 ε, every step seen by its owner",
           "noise %d, %d calls (want 5), order %d, blocks %d", noise_ok, t.calls, t.order_ok, t.blocks_ok);
  double bad[3] = {1, 2, 0};
  TH_EXPECT_ERROR("traces: a noise grid that rises is refused", "noise grid",
                  sample_images_traced(th_ctx, bl, &rc, labels, 4, so, bad, 2, NULL, NULL, s2));
  free(eps); free(s1); free(s2); free(t.final); free(t.z0);
  for (int i = 0; i < 2; i++) dit_block_destroy(&bl[i]);
}

/* ---------------------------------------------------------------- the LM sampler's hook */
typedef struct {
  const run_config *rc;
  int M, NT, R, calls, order_ok, blocks_ok, argmax_ok, next;
  double last_sigma;
  const unsigned char *bytes; /* the generated text, to check the last step's argmax against */
} lm_trace;

static void lm_hook(void *user, int k, int step, double sigma, int block, const float *logits, int R) {
  lm_trace *t = user;
  t->calls++;
  if (R != t->R || k * t->M + step != t->next || (step > 0 && !(sigma < t->last_sigma))) t->order_ok = 0;
  t->next++;
  t->last_sigma = sigma;
  t->blocks_ok &= block == edm_block_of_sigma(t->rc->bounds, t->rc->blocks, sigma);
  if (step == t->M - 1 && t->bytes)
    for (int r = 0; r < R; r++) {
      int best = 0;
      for (int v = 1; v < LM_VOCAB; v++)
        if (logits[(size_t)r * LM_VOCAB + v] > logits[(size_t)r * LM_VOCAB + best]) best = v;
      t->argmax_ok &= best == t->bytes[(size_t)r * t->NT + k];
    }
}

static void test_lm_hook(const char *run) {
  lm_model m;
  lm_model_load(th_ctx, &m, run);
  const unsigned char prompts[2 * 6] = {'I', 'n', ' ', 't', 'h', 'e', 'A', 'n', 'd', ' ', 'G', 'o'};
  enum { NT = 20, M = 6 }; /* 6 + 20 bytes pass the context of 16: the window slides */
  unsigned char o1[2 * NT], o2[2 * NT];
  lm_sample_opts so = {M, 7, 0, 11, LM_STEPS_RHO};
  lm_generate(th_ctx, &m, prompts, 2, 6, NT, so, o1, NULL, NULL);
  lm_trace t = {&m.rc, M, NT, 2, 0, 1, 1, 1, 0, 0, o1};
  lm_generate_traced(th_ctx, &m, prompts, 2, 6, NT, so, o2, NULL, lm_hook, &t);
  th_check(!memcmp(o1, o2, sizeof o1), "traces: lm_generate_traced writes lm_generate's bytes (argmax)", "differ");
  th_check(t.calls == NT * M && t.order_ok && t.blocks_ok,
           "traces: the LM hook sees every step of every byte, σ falling, each run by the block that owns it",
           "%d calls (want %d), order %d, blocks %d", t.calls, NT * M, t.order_ok, t.blocks_ok);
  th_check(t.argmax_ok, "traces: the argmax of the last step's logits the hook saw is the byte generated", "differs");
  so.temperature = 1.0;
  lm_generate(th_ctx, &m, prompts, 2, 6, NT, so, o1, NULL, NULL);
  t.calls = 0, t.next = 0, t.bytes = NULL;
  lm_generate_traced(th_ctx, &m, prompts, 2, 6, NT, so, o2, NULL, lm_hook, &t);
  th_check(!memcmp(o1, o2, sizeof o1), "traces: lm_generate_traced writes lm_generate's bytes (temperature 1)", "differ");
  lm_model_free(&m);
}

/* ---------------------------------------------------------------- the figures, through dblocks report */
static void test_figures(const char *img, const char *lm) {
  char args[2048], path[1024];
  const char *out = th_tpath("img-report");
  snprintf(args, sizeof args, "report --run %s --out %s --inside 1", img, out);
  th_cli_expect_as("traces: dblocks report on a tiny image run", args, 0, "trajectory.png", NULL);
  snprintf(path, sizeof path, "%s/trajectory.png", out);
  size_t n = 0;
  unsigned char *png = (unsigned char *)th_slurp(path, &n);
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  int w = 0, h = 0;
  if (png && n > 24) {
    w = png[16] << 24 | png[17] << 16 | png[18] << 8 | png[19];
    h = png[20] << 24 | png[21] << 16 | png[22] << 8 | png[23];
  }
  /* 10 classes of two 84-pixel strips, 1 + 2 x 2 columns of 84 pixels */
  th_check(png && n > 5000 && !memcmp(png, sig, 8) && !memcmp(png + 12, "IHDR", 4) && w >= 5 * 84 && h >= 10 * 2 * 84,
           "traces: trajectory.png is a PNG of 10 rows x 5 columns of 84-pixel cells", "%s: %zu bytes, %dx%d", path, n, w, h);
  free(png);

  out = th_tpath("lm-report");
  snprintf(args, sizeof args, "report --run %s --out %s --prompt 'And God' --top-k 4", lm, out);
  th_cli_expect_as("traces: dblocks report on a tiny LM run", args, 0, "lm_trace.svg", NULL);
  snprintf(path, sizeof path, "%s/lm_trace.svg", out);
  char *svg = th_slurp(path, &n);
  th_check(svg && n > 5000 && !strncmp(svg, "<?xml", 5) && strstr(svg, "<svg") && strstr(svg, "</svg>"),
           "traces: lm_trace.svg is a whole SVG document", "%s: %zu bytes", path, n);
  free(svg);

  /* errors: a block file missing, an output that cannot be written */
  char f1[1100], moved[1100];
  snprintf(f1, sizeof f1, "%s/block_1.safetensors", img);
  snprintf(moved, sizeof moved, "%s/block_1.moved", img);
  rename(f1, moved);
  snprintf(args, sizeof args, "report --run %s --out %s", img, th_tpath("img-missing"));
  th_cli_expect_as("traces: the trajectory of a run with block 1 missing names the file", args, 1,
                   "block_1.safetensors is missing", NULL);
  rename(moved, f1);
  snprintf(f1, sizeof f1, "%s/block_1.safetensors", lm);
  snprintf(moved, sizeof moved, "%s/block_1.moved", lm);
  rename(f1, moved);
  snprintf(args, sizeof args, "report --run %s --out %s", lm, th_tpath("lm-missing"));
  th_cli_expect_as("traces: the generation trace of a run with block 1 missing names the file", args, 1,
                   "block_1.safetensors", NULL);
  rename(moved, f1);
  out = th_tpath("img-blocked");
  snprintf(path, sizeof path, "%s", out);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/trajectory.png", out);
  mkdir(path, 0755); /* a directory where the PNG should go */
  snprintf(args, sizeof args, "report --run %s --out %s", img, out);
  th_cli_expect_as("traces: a trajectory.png that cannot be written (a directory) is refused, naming it", args, 1,
                   "trajectory.png", NULL);
}

void tests_traces(void) {
  if (!th_tmpdir_make("traces")) return;
  char args[2048], img[1024], lm[1024]; /* th_tpath's buffers rotate: keep copies */
  snprintf(img, sizeof img, "%s", th_tpath("img"));
  snprintf(lm, sizeof lm, "%s", th_tpath("lm"));
  snprintf(args, sizeof args, TINY_IMG " --out %s", img);
  th_cli_expect_as("traces: a tiny image run (2 blocks)", args, 0, "done:", NULL);
  snprintf(args, sizeof args, TINY_LM " --out %s", lm);
  th_cli_expect_as("traces: a tiny LM run (2 blocks)", args, 0, "done:", NULL);
  test_image_hook(img);
  test_lm_hook(lm);
  test_figures(img, lm);
  th_tmpdir_remove();
}
