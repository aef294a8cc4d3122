/* A whole DiffusionBlocks denoiser block (models/dit.c): embeddings, layers,
 * final layer and EDM wrapping. For every parameter tensor, the directional
 * derivative of L = sum(R * D) along a random direction, by central
 * differences of the device forward, must match <grad, direction> from the
 * hand-written backward. (The layer itself is checked against a double
 * reference in test_dit_layer.c; this test proves the block wiring.) */
#include "harness.h"
#include "../models/dit.h"
#include <stdlib.h>

static double loss_of(db_ctx *ctx, dit_block *b, dit_acts *a, const dit_inputs *in, const double *R, size_t n) {
  float *d = db_malloc(n * sizeof *d);
  dit_block_forward(ctx, b, a, in);
  db_download(ctx, a->D, d);
  double L = 0;
  for (size_t i = 0; i < n; i++) L += R[i] * d[i];
  free(d);
  return L;
}

static db_tensor upload_vec(db_arena *ar, const float *v, int n) {
  db_tensor t = db_new(ar, 1, n, 0, 0, 0);
  db_upload(th_ctx, t, v);
  return t;
}

void tests_dit(void) {
  dit_config cfg = {.in_ch = 1, .img_h = 4, .img_w = 6, .patch = 2, .width = 8, .heads = 2, .depth = 2,
                    .n_classes = 3, .freq_dim = 16};
  dit_block b;
  dit_block_create(th_ctx, &b, cfg, "test block");
  param_set_alloc_training(&b.ps);
  for (int i = 0; i < b.ps.n; i++) db_rng_uniform(th_ctx, b.ps.p[i], 5, (uint64_t)i << 20, -0.4f, 0.4f);
  int B = 3, n = B * 24;
  db_arena *ar = db_arena_new(th_ctx, "inputs");
  dit_acts a;
  dit_acts_alloc(th_ctx, &a, &b, B, 1);
  float z[72], cin[3] = {0.9f, 0.5f, 1.3f}, cno[3] = {-1.0f, 0.2f, 0.7f}, csk[3] = {0.3f, 0.8f, 0.1f},
        cout[3] = {0.6f, 1.1f, 0.4f};
  int labels[3] = {0, 3, 2}; /* 3 = "no class" */
  db_rng_normal_host(z, 72, 8, 0);
  dit_inputs in = {upload_vec(ar, z, n), upload_vec(ar, cin, 3), upload_vec(ar, cno, 3), upload_vec(ar, csk, 3),
                   upload_vec(ar, cout, 3), DB_NULL};
  int lshape[1] = {3};
  in.labels = db_alloc(ar, DB_I32, 1, lshape);
  db_upload(th_ctx, in.labels, labels);

  double *R = db_malloc((size_t)n * sizeof *R);
  float *rf = db_malloc((size_t)n * sizeof *rf);
  th_rand(R, (size_t)n, 99, -1, 1);
  for (int i = 0; i < n; i++) rf[i] = (float)R[i];
  db_tensor dD = upload_vec(ar, rf, n);
  dit_block_forward(th_ctx, &b, &a, &in);
  param_set_zero_grads(&b.ps);
  dit_block_backward(th_ctx, &b, &a, &in, dD);

  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < b.ps.n; i++) {
    size_t m = db_numel(b.ps.p[i]);
    float *p0 = db_malloc(m * sizeof *p0), *v = db_malloc(m * sizeof *v), *g = db_malloc(m * sizeof *g), *pt = db_malloc(m * sizeof *pt);
    db_download(th_ctx, b.ps.p[i], p0);
    db_download(th_ctx, b.ps.g[i], g);
    db_rng_uniform_host(v, m, 1234, (uint64_t)i << 16, -1, 1);
    double an = 0;
    for (size_t j = 0; j < m; j++) an += (double)g[j] * v[j];
    /* central differences at h and h/2, Richardson-extrapolated: the O(h^2)
     * error cancels, so h can stay large against float32 rounding */
    double fdh[2];
    for (int k = 0; k < 2; k++) {
      double h = k ? 1e-2 : 2e-2;
      for (size_t j = 0; j < m; j++) pt[j] = p0[j] + (float)h * v[j];
      db_upload(th_ctx, b.ps.p[i], pt);
      double lp = loss_of(th_ctx, &b, &a, &in, R, (size_t)n);
      for (size_t j = 0; j < m; j++) pt[j] = p0[j] - (float)h * v[j];
      db_upload(th_ctx, b.ps.p[i], pt);
      double lm = loss_of(th_ctx, &b, &a, &in, R, (size_t)n);
      fdh[k] = (lp - lm) / (2 * h);
    }
    db_upload(th_ctx, b.ps.p[i], p0);
    double fd = (4 * fdh[1] - fdh[0]) / 3;
    /* float32 forwards leave ~1e-4 absolute noise: a floor of 0.1 on the scale */
    double e = fabs(fd - an) / fmax(fabs(an), 0.1);
    if (e > worst) { worst = e; worst_name = b.ps.names[i]; }
    if (getenv("DIT_TEST_VERBOSE")) printf("        %s: directional derivative %.6g, backward %.6g\n", b.ps.names[i], fd, an);
    free(p0); free(v); free(g); free(pt);
  }
  th_check(worst < 2e-3, "dit block: backward matches directional finite differences for every parameter tensor",
           "worst %s: rel err %.3e", worst_name, worst);
  printf("        %d parameter tensors, worst %s rel err %.2e\n", b.ps.n, worst_name, worst);
  th_record("dit block (composed)", "1x4x6 p=2 C=8 depth=2 (dev vs FD)", -1, -1, worst);
  TH_EXPECT_ERROR("dit block rejects a width that is not a multiple of heads", "multiple of heads", {
    dit_config bad = cfg;
    bad.width = 12;
    bad.heads = 5;
    dit_config_check(&bad);
  });
  free(R); free(rf);
  dit_acts_free(&a);
  db_arena_free(ar);
  dit_block_destroy(&b);
}
