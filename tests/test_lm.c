/* The block-diffusion language model (models/lm.c, models/lm_layer.c,
 * models/lm_task.c): the block's hand-written backward against directional
 * finite differences for every parameter tensor; the K/V-cached decoder
 * against the training forward (same logits for every position); training. */
#include "harness.h"
#include "../models/lm.h"
#include <stdlib.h>

typedef struct {
  lm_block b;
  lm_acts a;
  db_arena *ar;
  lm_inputs in;
  int B, T, de;
  float *z, *cin, *cno;
  int *tok, *tgt;
} lm_fixture;

static db_tensor upload_f(db_arena *ar, const float *v, int n) {
  db_tensor t = db_new(ar, 1, n, 0, 0, 0);
  db_upload(th_ctx, t, v);
  return t;
}
static db_tensor upload_i(db_arena *ar, const int *v, int n) {
  db_tensor t = db_alloc(ar, DB_I32, 1, (int[]){n});
  db_upload(th_ctx, t, v);
  return t;
}

/* B sequences of T bytes, random parameters (so every path carries gradient) */
static void fixture_make(lm_fixture *f, lm_config cfg, int B, int training) {
  memset(f, 0, sizeof *f);
  f->B = B;
  f->T = cfg.context;
  f->de = cfg.embed_dim;
  int T = f->T, BT = B * T;
  lm_block_create(th_ctx, &f->b, cfg, "test LM block");
  if (training) param_set_alloc_training(&f->b.ps);
  for (int i = 0; i < f->b.ps.n; i++) db_rng_uniform(th_ctx, f->b.ps.p[i], 5, (uint64_t)i << 20, -0.4f, 0.4f);
  lm_acts_alloc(th_ctx, &f->a, &f->b, B, training);
  f->ar = db_arena_new(th_ctx, "LM test inputs");
  f->z = db_malloc(sizeof(float) * (size_t)BT * f->de);
  f->cin = db_malloc(sizeof(float) * (size_t)BT);
  f->cno = db_malloc(sizeof(float) * (size_t)B);
  f->tok = db_malloc(sizeof(int) * (size_t)BT);
  f->tgt = db_malloc(sizeof(int) * (size_t)2 * BT);
  db_rng_normal_host(f->z, (size_t)BT * f->de, 8, 0);
  for (int b = 0; b < B; b++) {
    f->cno[b] = -0.8f + 0.7f * (float)b;
    for (int t = 0; t < T; t++) {
      f->cin[b * T + t] = 0.6f + 0.2f * (float)b;
      f->tok[b * T + t] = (b * 37 + t * 11 + 3) % LM_VOCAB;
      f->tgt[b * 2 * T + t] = f->tok[b * T + t];
      f->tgt[b * 2 * T + T + t] = -1;
    }
  }
  f->in = (lm_inputs){upload_f(f->ar, f->z, BT * f->de), upload_f(f->ar, f->cin, BT), upload_f(f->ar, f->cno, B),
                      upload_i(f->ar, f->tok, BT), upload_i(f->ar, f->tgt, 2 * BT)};
}

static void fixture_free(lm_fixture *f) {
  lm_acts_free(&f->a);
  db_arena_free(f->ar);
  lm_block_destroy(&f->b);
  free(f->z); free(f->cin); free(f->cno); free(f->tok); free(f->tgt);
}

static double weighted_loss(lm_fixture *f, const double *R) {
  size_t n = (size_t)2 * f->B * f->T;
  float *l = db_malloc(n * sizeof *l);
  lm_block_forward(th_ctx, &f->b, &f->a, &f->in);
  db_download(th_ctx, f->a.losses, l);
  double L = 0;
  for (size_t i = 0; i < n; i++) L += R[i] * l[i];
  free(l);
  return L;
}

static void test_block_gradients(void) {
  lm_config cfg = {.width = 16, .heads = 2, .depth = 2, .context = 5, .embed_dim = 6, .freq_dim = 16, .rope_base = 10000};
  lm_fixture f;
  fixture_make(&f, cfg, 3, 1);
  int n = 2 * f.B * f.T;
  double *R = db_malloc((size_t)n * sizeof *R);
  float *rf = db_malloc((size_t)n * sizeof *rf);
  th_rand(R, (size_t)n, 99, 0.2, 1);
  for (int i = 0; i < n; i++) rf[i] = (float)R[i];
  db_upload(th_ctx, f.a.dlosses, rf);
  lm_block_forward(th_ctx, &f.b, &f.a, &f.in);
  param_set_zero_grads(&f.b.ps);
  lm_block_backward(th_ctx, &f.b, &f.a, &f.in);
  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < f.b.ps.n; i++) {
    size_t m = db_numel(f.b.ps.p[i]);
    float *p0 = db_malloc(m * sizeof *p0), *v = db_malloc(m * sizeof *v), *g = db_malloc(m * sizeof *g),
          *pt = db_malloc(m * sizeof *pt);
    db_download(th_ctx, f.b.ps.p[i], p0);
    db_download(th_ctx, f.b.ps.g[i], g);
    db_rng_uniform_host(v, m, 1234, (uint64_t)i << 16, -1, 1);
    double an = 0;
    for (size_t j = 0; j < m; j++) an += (double)g[j] * v[j];
    double fdh[2]; /* Richardson-extrapolated central differences, as tests/test_dit.c */
    for (int k = 0; k < 2; k++) {
      double h = k ? 1e-2 : 2e-2;
      for (size_t j = 0; j < m; j++) pt[j] = p0[j] + (float)h * v[j];
      db_upload(th_ctx, f.b.ps.p[i], pt);
      double lp = weighted_loss(&f, R);
      for (size_t j = 0; j < m; j++) pt[j] = p0[j] - (float)h * v[j];
      db_upload(th_ctx, f.b.ps.p[i], pt);
      double lm = weighted_loss(&f, R);
      fdh[k] = (lp - lm) / (2 * h);
    }
    db_upload(th_ctx, f.b.ps.p[i], p0);
    double fd = (4 * fdh[1] - fdh[0]) / 3;
    double e = fabs(fd - an) / fmax(fabs(an), 0.1);
    if (e > worst) { worst = e; worst_name = f.b.ps.names[i]; }
    if (getenv("LM_TEST_VERBOSE")) printf("        %s: directional derivative %.6g, backward %.6g\n", f.b.ps.names[i], fd, an);
    free(p0); free(v); free(g); free(pt);
  }
  th_check(worst < 2e-3, "LM block: backward matches directional finite differences for every parameter tensor",
           "worst %s: rel err %.3e", worst_name, worst);
  printf("        %d parameter tensors, worst %s rel err %.2e\n", f.b.ps.n, worst_name, worst);
  th_record("LM block (composed)", "B=3 T=5 C=16 depth=2 (dev vs FD)", -1, -1, worst);
  free(R); free(rf);
  fixture_free(&f);
}

/* Token by token with K/V caches: clean tokens 0..t-1 appended, then the noisy
 * token t: its logits must equal the training forward's noisy row t. */
static void test_decode_matches_forward(int width, int heads, int depth, int T) {
  lm_config cfg = {.width = width, .heads = heads, .depth = depth, .context = T, .embed_dim = 6, .freq_dim = 16,
                   .rope_base = 10000};
  lm_fixture f;
  int B = 2;
  fixture_make(&f, cfg, B, 0);
  lm_block_forward(th_ctx, &f.b, &f.a, &f.in);
  size_t V = LM_VOCAB;
  float *want = db_malloc(sizeof(float) * (size_t)2 * B * T * V), *got = db_malloc(sizeof(float) * B * V);
  db_download(th_ctx, f.a.logits, want);
  lm_decoder d;
  lm_decoder_alloc(th_ctx, &d, &f.b, B, T + 2);
  db_arena *ar = db_arena_new(th_ctx, "decode inputs");
  db_tensor zt = db_new(ar, 2, B, cfg.embed_dim, 0, 0), cin = db_new(ar, 1, B, 0, 0, 0), cno = upload_f(ar, f.cno, B);
  db_tensor tok = db_alloc(ar, DB_I32, 1, (int[]){B});
  double worst = 0, scale = 0;
  float *zh = db_malloc(sizeof(float) * B * cfg.embed_dim), ch[8];
  int th[8];
  for (int t = 0; t < T; t++) {
    for (int b = 0; b < B; b++) {
      memcpy(zh + b * cfg.embed_dim, f.z + ((size_t)b * T + t) * cfg.embed_dim, sizeof(float) * cfg.embed_dim);
      ch[b] = f.cin[b * T + t];
    }
    db_upload(th_ctx, zt, zh);
    db_upload(th_ctx, cin, ch);
    lm_decode_noisy(th_ctx, &f.b, &d, zt, cin, cno, t);
    db_download(th_ctx, d.logits, got);
    for (int b = 0; b < B; b++)
      for (size_t v = 0; v < V; v++) {
        double w = want[((size_t)b * 2 * T + t) * V + v];
        worst = fmax(worst, fabs(got[b * V + v] - w));
        scale = fmax(scale, fabs(w));
      }
    for (int b = 0; b < B; b++) th[b] = f.tok[b * T + t];
    db_upload(th_ctx, tok, th);
    lm_decode_clean(th_ctx, &f.b, &d, tok, t);
  }
  char name[160];
  snprintf(name, sizeof name, "LM decoder (K/V cache) equals the training forward, C=%d NH=%d depth=%d T=%d", width,
           heads, depth, T);
  th_check(worst <= 1e-4 * fmax(scale, 1), name, "max |diff| %.3e (logit scale %.3g)", worst, scale);
  free(want); free(got); free(zh);
  db_arena_free(ar);
  lm_decoder_free(&d);
  fixture_free(&f);
}

void tests_lm_task(void) __attribute__((weak));

void tests_lm(void) {
  test_block_gradients();
  test_decode_matches_forward(16, 2, 2, 7);
  test_decode_matches_forward(32, 4, 1, 12);
  TH_EXPECT_ERROR("LM block rejects an odd head size", "head size", {
    lm_config bad = {.width = 12, .heads = 4, .depth = 1, .context = 4, .embed_dim = 4, .freq_dim = 16};
    lm_config_check(&bad);
  });
  if (tests_lm_task) tests_lm_task();
}
