/* The block-wise diffusion classifier (models/diffusion_classifier.c,
 * models/classify_task.c, `train --task classify`, `classify-eval`): the
 * block's hand-written backward against finite differences (at the device's
 * work-group size and a GPU-style one), a short training run lowering the loss
 * and learning an easy task, block isolation, resume, deterministic block-wise
 * prediction, the learning-rate schedule, the manifest, and clear errors. */
#include "harness.h"
#include "../models/classify_task.h"
#include "../models/manifest.h"
#include <stdlib.h>

/* ---------------------------------------------------------------- the block, by finite differences */
typedef struct {
  dcls_block *b;
  dcls_acts *a;
  const dcls_inputs *in;
  const double *R;
  size_t n;
} fd_state;

static double logits_loss(void *u) { /* L = Σ R ⊙ logits */
  fd_state *s = u;
  float *l = db_malloc(s->n * sizeof *l);
  dcls_block_forward(th_ctx, s->b, s->a, s->in);
  db_download(th_ctx, s->a->logits, l);
  double L = 0;
  for (size_t i = 0; i < s->n; i++) L += s->R[i] * l[i];
  free(l);
  return L;
}

static db_tensor upload_vec(db_arena *ar, const float *v, int n) {
  db_tensor t = db_new(ar, 1, n, 0, 0, 0);
  db_upload(th_ctx, t, v);
  return t;
}

static void test_block_fd(size_t wg) {
  size_t wg0 = th_ctx->wg;
  if (wg) th_ctx->wg = wg;
  dcls_config cfg = {.img_h = 6, .img_w = 4, .patch = 2, .window = 4, .width = 8, .heads = 2, .depth = 2,
                     .n_classes = 3, .freq_dim = 16};
  dcls_block b;
  dcls_block_create(th_ctx, &b, cfg, "test classifier block");
  param_set_alloc_training(&b.ps);
  /* random everything (init would leave the zero-started tensors without a path to the loss) */
  for (int i = 0; i < b.ps.n; i++) db_rng_uniform(th_ctx, b.ps.p[i], 5, (uint64_t)i << 20, -0.4f, 0.4f);
  enum { B = 3, NIMG = 5, K = 3, C = 8 };
  db_arena *ar = db_arena_new(th_ctx, "inputs");
  dcls_acts a;
  dcls_acts_alloc(th_ctx, &a, &b, B, 1);
  float img[NIMG * 24], z[B * C], cin[B] = {0.9f, 0.5f, 1.3f}, cno[B] = {-1.0f, 0.2f, 0.7f},
        csk[B] = {0.3f, 0.8f, 0.1f}, cout[B] = {0.6f, 1.1f, 0.4f};
  int idx[B] = {4, 1, 4}; /* a repeat, and rows out of order */
  db_rng_uniform_host(img, NIMG * 24, 3, 0, -1, 1);
  db_rng_normal_host(z, B * C, 8, 0);
  dcls_inputs in = {upload_vec(ar, img, NIMG * 24), db_alloc(ar, DB_I32, 1, (int[]){B}), NIMG, upload_vec(ar, z, B * C),
                    upload_vec(ar, cin, B), upload_vec(ar, cno, B), upload_vec(ar, csk, B), upload_vec(ar, cout, B)};
  db_upload(th_ctx, in.idx, idx);
  double R[B * K];
  float rf[B * K];
  th_rand(R, B * K, 99, -1, 1);
  for (int i = 0; i < B * K; i++) rf[i] = (float)R[i];
  db_tensor dlogits = upload_vec(ar, rf, B * K);
  dcls_block_forward(th_ctx, &b, &a, &in);
  param_set_zero_grads(&b.ps);
  dcls_block_backward(th_ctx, &b, &a, &in, dlogits);
  fd_state s = {&b, &a, &in, R, B * K};
  const char *worst_name;
  double worst = th_param_fd_worst(&b.ps, logits_loss, &s, &worst_name);
  char label[64], name[160];
  th_wg_label(label, sizeof label, wg);
  snprintf(name, sizeof name, "classifier block: backward matches directional finite differences for every tensor%s", label);
  th_check(worst < 2e-3, name, "worst %s: rel err %.3e", worst_name, worst);
  printf("        %d parameter tensors, worst %s rel err %.2e\n", b.ps.n, worst_name, worst);
  snprintf(name, sizeof name, "6x4 p=2 w=4 C=8 depth=2 K=3%s (dev vs FD)", label);
  th_record("classifier block (composed)", name, -1, -1, worst);
  dcls_acts_free(&a);
  dcls_block_destroy(&b);
  db_arena_free(ar);
  th_ctx->wg = wg0;
}

/* ---------------------------------------------------------------- a tiny task */
enum { IMG = 8, NCLS = 3, STEPS = 200 };

/* An easy labelled set: class k lights rows 2k..2k+1 of a dark 8x8 image, plus
 * noise; put on the byte grid (idx_pixels_from_images), as the task keeps bytes. */
static idx_dataset easy_dataset(int n, uint64_t seed) {
  idx_dataset d = {0};
  d.n = n;
  d.rows = d.cols = IMG;
  d.n_classes = NCLS;
  d.images = db_malloc(sizeof(float) * (size_t)n * IMG * IMG);
  d.labels = db_malloc((size_t)n);
  db_rng_uniform_host(d.images, (size_t)n * IMG * IMG, seed, 0, -0.3f, 0.3f);
  for (int i = 0; i < n; i++) {
    int k = (int)((i * 7 + 3) % NCLS);
    d.labels[i] = (uint8_t)k;
    for (int p = 0; p < IMG * IMG; p++) d.images[(size_t)i * IMG * IMG + p] += (p / IMG) / 2 == k ? 0.7f : -0.7f;
  }
  idx_pixels_from_images(&d);
  return d;
}

static train_opts tiny_opts(const char *out, int blocks, int steps) {
  train_opts o = {0};
  run_config_defaults_task(&o.rc, TASK_CLASSIFY);
  o.rc.model.img_h = o.rc.model.img_w = IMG;
  o.rc.model.n_classes = NCLS;
  o.rc.model.patch = 2;
  o.rc.cls.window = 4;
  o.rc.model.width = 16;
  o.rc.model.heads = 2;
  o.rc.model.freq_dim = 32;
  o.rc.layers = 2;
  o.rc.blocks = blocks;
  o.rc.batch = 16;
  o.rc.steps = steps;
  o.rc.lr = 3e-3;
  run_config_finish(&o.rc);
  o.out_dir = out;
  o.only_block = -1;
  o.log_every = 4;
  return o;
}

static train_result train(train_opts *o, const idx_dataset *d) {
  train_task *t = classify_task_create(th_ctx, &o->rc, d, "easy set");
  train_result r = train_run(th_ctx, o, t);
  classify_task_destroy(t);
  return r;
}

static void test_training(const idx_dataset *d, const idx_dataset *test) {
  /* one block: the logged loss is comparable from first to last interval (B > 1 would switch w(σ)'s range) */
  train_opts o1 = tiny_opts(th_tpath("one"), 1, 60);
  o1.rc.edm.sigma_min = 0.5; /* w(σ) <= 8: the weighted mean is a steady measure (at σ = 0.002 one sample weighs 250 000) */
  run_config_finish(&o1.rc);
  train_result r = train(&o1, d);
  th_check(r.last_loss < 0.5 * r.first_loss, "classify train: 60 steps of B = 1 (sigma in [0.5, 80]) lower the w(sigma)-weighted loss",
           "first interval %.4f, last %.4f", r.first_loss, r.last_loss);
  printf("        loss %.4f -> %.4f over %ld steps\n", r.first_loss, r.last_loss, r.steps_run);
  const char *a = th_tpath("straight");
  train_opts o = tiny_opts(a, 2, STEPS);
  train(&o, d);
  classify_result e1 = classify_evaluate(th_ctx, a, test, 3, NULL);
  int *p1 = db_malloc(sizeof(int) * (size_t)test->n), *p2 = db_malloc(sizeof(int) * (size_t)test->n);
  classify_evaluate(th_ctx, a, test, 3, p1);
  classify_evaluate(th_ctx, a, test, 3, p2);
  th_check(!memcmp(p1, p2, sizeof(int) * (size_t)test->n), "classify-eval: the same seed gives the same predictions",
           "predictions differ");
  th_check(e1.accuracy >= 0.9, "classify: two blocks, one Euler step each, learn the easy task (held-out images)",
           "accuracy %.3f (chance 0.33); after block 0: %.3f", e1.accuracy, e1.block_accuracy[0]);
  printf("        held-out accuracy %.3f (after block 0: %.3f), peak %.2f MiB\n", e1.accuracy, e1.block_accuracy[0],
         e1.peak_bytes / 1048576.0);
  free(p1);
  free(p2);

  /* resume: bit-identical to the uninterrupted run */
  const char *b = th_tpath("resumed");
  train_opts p = tiny_opts(b, 2, STEPS);
  p.max_steps_this_run = 50; /* stops inside block 0 */
  train(&p, d);
  p.max_steps_this_run = 0;
  p.resume = 1;
  train(&p, d);
  int same = 1;
  for (int i = 0; i < 2; i++) {
    char fa[1024], fb[1024];
    snprintf(fa, sizeof fa, "%s/block_%d.safetensors", a, i);
    snprintf(fb, sizeof fb, "%s/block_%d.safetensors", b, i);
    same &= th_same_file(fa, fb);
  }
  th_check(same, "classify train: resume gives bit-identical checkpoints", "files differ");

  /* isolation: block 1 trained alone, in another directory, is the same bytes */
  const char *c = th_tpath("alone");
  train_opts q = tiny_opts(c, 2, STEPS);
  q.only_block = 1;
  train(&q, d);
  char fa[1024], fc[1024];
  snprintf(fa, sizeof fa, "%s/block_1.safetensors", a);
  snprintf(fc, sizeof fc, "%s/block_1.safetensors", c);
  th_check(th_same_file(fa, fc), "classify train: block 1 trained alone is bit-identical (no block depends on another)",
           "differ");
  TH_EXPECT_ERROR("classify-eval names a missing block", "block_0.safetensors: missing",
                  { classify_evaluate(th_ctx, c, test, 0, NULL); });
}

static void test_config(void) {
  run_config rc;
  run_config_defaults_task(&rc, TASK_CLASSIFY);
  run_config_finish(&rc);
  th_check(rc.model.patch == 7 && rc.cls.window == 15 && rc.blocks == 3 && rc.layers == 12 && fabs(classify_table_scale(&rc) - 4) < 1e-12 &&
               rc.cls.sigma_law == SIGMA_LAW_LOGUNIFORM,
           "classify defaults: patch 7, window 15, L = 12, B = 3, table rows of norm 0.5 sqrt(64), log-uniform sigma", "patch %d window %d L %d B %d",
           rc.model.patch, rc.cls.window, rc.layers, rc.blocks);
  rc.steps = 100;
  double l0 = run_lr_at(&rc, 0), l4 = run_lr_at(&rc, 4), l6 = run_lr_at(&rc, 6), l52 = run_lr_at(&rc, 52),
         l99 = run_lr_at(&rc, 99);
  th_check(fabs(l0 - rc.lr / 5) < 1e-12 && fabs(l4 - rc.lr) < 1e-12 && l6 < rc.lr && fabs(l52 - rc.lr / 2) < 0.01 * rc.lr &&
               l99 < 1e-3 * rc.lr && l99 > 0,
           "classify lr: 5 % linear warm-up, then cosine to ~0", "%g %g %g %g %g", l0, l4, l6, l52, l99);
  rc.cls.lr_schedule = LR_CONSTANT;
  th_check(run_lr_at(&rc, 99) == rc.lr, "classify lr: --lr-schedule constant", "%g", run_lr_at(&rc, 99));
  run_config img;
  run_config_defaults_task(&img, TASK_IMAGE);
  img.steps = 100;
  th_check(run_lr_at(&img, 99) == img.lr, "image runs keep a constant lr", "%g", run_lr_at(&img, 99));

  const char *dir = th_tpath("manifest");
  run_config w;
  run_config_defaults_task(&w, TASK_CLASSIFY);
  w.cls.window = 9;
  w.cls.label_scale = 2.5;
  run_config_finish(&w);
  manifest_write(dir, &w);
  run_config r;
  manifest_read(dir, &r);
  th_check(r.task == TASK_CLASSIFY && r.cls.window == 9 && r.cls.label_scale == 2.5 && r.cls.lr_schedule == LR_COSINE,
           "classify manifest: task, window, label scale and lr schedule round-trip", "task %d window %d", r.task,
           r.cls.window);
  TH_EXPECT_ERROR("classify config: a window that is not centred on its patch", "--window 8 must be 0 or --patch 7", {
    run_config bad;
    run_config_defaults_task(&bad, TASK_CLASSIFY);
    bad.cls.window = 8;
    run_config_finish(&bad);
  });
  TH_EXPECT_ERROR("classify block: more classes than width", "orthonormal class vectors", {
    dcls_config c = {28, 28, 7, 15, 8, 2, 1, 10, 16};
    dcls_config_check(&c);
  });
}

static void test_cli(const char *run) {
  char args[1200];
  th_cli_expect("train --task bogus", 1, "--task bogus: expected image or classify");
  th_cli_expect("train --task lm", 1, "lm-train");
  th_cli_expect("train --task classify --window 8", 1, "--window 8 must be 0 or --patch 7");
  th_cli_expect("train --window 15", 1, "window");  /* an image run has no --window */
  th_cli_expect("classify-eval", 1, "--run DIR is required");
  th_cli_expect("classify-eval --run /nonexistent/run", 1, "/nonexistent/run/manifest.json");
  snprintf(args, sizeof args, "classify-eval --run %s --split validation", run);
  th_cli_expect(args, 1, "--split validation: expected test or train");
  th_cli_expect("classify-backprop --epochs 0", 1, "must be positive");
  /* a classifier's run directory given to the other tasks' commands */
  snprintf(args, sizeof args, "sample --run %s", run);
  th_cli_expect(args, 1, "a classify run, not an image generator (use dblocks classify-eval)");
  snprintf(args, sizeof args, "lm-sample --run %s --prompt x", run);
  th_cli_expect(args, 1, "a classify run, not a language model");
  snprintf(args, sizeof args, "train --resume --out %s", run);
  th_cli_expect(args, 1, "is a classify run, this is --task image");
  snprintf(args, sizeof args, "lm-train --resume --out %s", run);
  th_cli_expect(args, 1, "is a classify run (use dblocks train --task classify)");
  /* an image run's directory is not a classifier */
  const char *img = th_tpath("imagerun");
  run_config rc;
  run_config_defaults_task(&rc, TASK_IMAGE);
  run_config_finish(&rc);
  manifest_write(img, &rc);
  snprintf(args, sizeof args, "classify-eval --run %s", img);
  th_cli_expect(args, 1, "an image run, not a classifier");
}

void tests_classify(void) {
  th_tmpdir_make("classify");
  test_block_fd(0);
  test_block_fd(256);
  test_config();
  idx_dataset d = easy_dataset(96, 1), test = easy_dataset(60, 2);
  test_training(&d, &test);
  test_cli(th_tpath("straight"));
  idx_free(&d);
  idx_free(&test);
  th_tmpdir_remove();
}
