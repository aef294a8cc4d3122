/* The evaluation side: the Fréchet distance (models/frechet.c) against closed
 * forms and an independent 2x2 formula, and the ViT classifier
 * (models/classifier.c): backward vs directional finite differences for every
 * parameter tensor, a short training run that lowers the loss, determinism,
 * batching/padding of clf_features, checkpoint round trip and load errors.
 * Training to 90 % on Fashion-MNIST is far too slow for a test; the shipped
 * weights are produced by hand (see the report in docs). */
#include "harness.h"
#include "../models/classifier.h"
#include "../models/frechet.h"
#include "../data/safetensors.h"
#include <stdlib.h>
#include <unistd.h>

/* ---------------------------------------------------------------- Fréchet */
static double *dalloc(size_t n) { return db_calloc(n, sizeof(double)); }

/* random orthogonal d x d (columns), by modified Gram-Schmidt of a Philox matrix */
static void random_orthogonal(double *q, int d, uint64_t seed) {
  th_rand(q, (size_t)d * d, seed, -1, 1);
  for (int j = 0; j < d; j++) {
    for (int k = 0; k < j; k++) {
      double dot = 0;
      for (int i = 0; i < d; i++) dot += q[i * d + j] * q[i * d + k];
      for (int i = 0; i < d; i++) q[i * d + j] -= dot * q[i * d + k];
    }
    double nrm = 0;
    for (int i = 0; i < d; i++) nrm += q[i * d + j] * q[i * d + j];
    nrm = sqrt(nrm);
    for (int i = 0; i < d; i++) q[i * d + j] /= nrm;
  }
}

/* s = q diag(e) q^T */
static void from_eigen(double *s, const double *q, const double *e, int d) {
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double v = 0;
      for (int k = 0; k < d; k++) v += q[i * d + k] * e[k] * q[j * d + k];
      s[i * d + j] = v;
    }
}

static void test_frechet(void) {
  /* sym_eigen: reconstruction and orthogonality on a random symmetric matrix */
  {
    int d = 33;
    double *a = dalloc((size_t)d * d), *w = dalloc(d), *v = dalloc((size_t)d * d);
    th_rand(a, (size_t)d * d, 11, -1, 1);
    for (int i = 0; i < d; i++)
      for (int j = 0; j < i; j++) a[i * d + j] = a[j * d + i];
    sym_eigen(a, d, w, v);
    double rec = 0, orth = 0, scale = 0;
    for (int i = 0; i < d; i++)
      for (int j = 0; j < d; j++) {
        double r = 0, o = 0;
        for (int k = 0; k < d; k++) {
          r += v[i * d + k] * w[k] * v[j * d + k];
          o += v[k * d + i] * v[k * d + j];
        }
        rec = fmax(rec, fabs(r - a[i * d + j]));
        orth = fmax(orth, fabs(o - (i == j)));
        scale = fmax(scale, fabs(a[i * d + j]));
      }
    th_check(rec / scale < 1e-12 && orth < 1e-12, "sym_eigen: V diag(w) V^T = A, V^T V = I (d=33)",
             "reconstruction %.2e, orthogonality %.2e", rec / scale, orth);
    free(a); free(w); free(v);
  }
  /* identical statistics -> 0 */
  {
    int d = 16, n = 200;
    float *x = db_malloc(sizeof(float) * (size_t)n * d);
    db_rng_normal_host(x, (size_t)n * d, 21, 0);
    for (int i = 0; i < n; i++) x[i * d + 3] += 0.7f * x[i * d + 1]; /* some correlation */
    double *mu = dalloc(d), *cov = dalloc((size_t)d * d);
    feature_stats(x, n, d, mu, cov);
    double f = frechet_distance(mu, cov, mu, cov, d);
    th_check(f >= 0 && f <= 1e-9, "frechet: identical statistics give 0", "got %.3e", f);
    /* feature_stats against a direct double computation */
    double em = 0, ec = 0;
    for (int j = 0; j < d; j++) {
      double m = 0;
      for (int i = 0; i < n; i++) m += x[i * d + j];
      m /= n;
      em = fmax(em, fabs(m - mu[j]));
      for (int k = 0; k < d; k++) {
        double mk = 0, s = 0;
        for (int i = 0; i < n; i++) mk += x[i * d + k];
        mk /= n;
        for (int i = 0; i < n; i++) s += (x[i * d + j] - m) * (x[i * d + k] - mk);
        ec = fmax(ec, fabs(s / (n - 1) - cov[j * d + k]));
      }
    }
    th_check(em < 1e-12 && ec < 1e-12, "feature_stats: mean and unbiased covariance", "mean err %.2e cov err %.2e", em, ec);
    free(x); free(mu); free(cov);
  }
  /* two diagonal Gaussians: sum (mu1-mu2)^2 + sum (sqrt s1 - sqrt s2)^2 */
  {
    int d = 10;
    double *m1 = dalloc(d), *m2 = dalloc(d), *s1 = dalloc((size_t)d * d), *s2 = dalloc((size_t)d * d);
    double expect = 0;
    for (int i = 0; i < d; i++) {
      m1[i] = 0.3 * i - 1;
      m2[i] = 0.1 * i * i - 0.5;
      double a = 0.1 + 0.37 * i, b = 2.0 / (1 + i);
      s1[i * d + i] = a;
      s2[i * d + i] = b;
      expect += (m1[i] - m2[i]) * (m1[i] - m2[i]) + (sqrt(a) - sqrt(b)) * (sqrt(a) - sqrt(b));
    }
    double f = frechet_distance(m1, s1, m2, s2, d);
    th_check(fabs(f - expect) <= 1e-10 * fmax(1, expect), "frechet: diagonal Gaussians match the closed form",
             "got %.12g, expected %.12g", f, expect);
    free(m1); free(m2); free(s1); free(s2);
  }
  /* full covariances sharing an eigenbasis (commuting): the closed form holds in that basis */
  {
    int d = 24;
    double *q = dalloc((size_t)d * d), *e1 = dalloc(d), *e2 = dalloc(d), *s1 = dalloc((size_t)d * d),
           *s2 = dalloc((size_t)d * d), *m1 = dalloc(d), *m2 = dalloc(d);
    random_orthogonal(q, d, 31);
    th_rand(e1, d, 32, 0.01, 3);
    th_rand(e2, d, 33, 0.01, 3);
    e1[5] = 0; /* a singular S1 */
    th_rand(m1, d, 34, -1, 1);
    th_rand(m2, d, 35, -1, 1);
    from_eigen(s1, q, e1, d);
    from_eigen(s2, q, e2, d);
    double expect = 0;
    for (int i = 0; i < d; i++)
      expect += (m1[i] - m2[i]) * (m1[i] - m2[i]) + (sqrt(e1[i]) - sqrt(e2[i])) * (sqrt(e1[i]) - sqrt(e2[i]));
    double f = frechet_distance(m1, s1, m2, s2, d), g = frechet_distance(m2, s2, m1, s1, d);
    th_check(fabs(f - expect) <= 1e-8 * expect && fabs(g - expect) <= 1e-8 * expect,
             "frechet: commuting full covariances (random eigenbasis, one zero eigenvalue) match the closed form",
             "got %.12g and %.12g (swapped), expected %.12g", f, g, expect);
    free(q); free(e1); free(e2); free(s1); free(s2); free(m1); free(m2);
  }
  /* non-commuting 2x2: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for M ~ S1 S2 */
  {
    double s1[4] = {2.0, 0.8, 0.8, 1.0}, s2[4] = {0.5, -0.3, -0.3, 1.5}, m1[2] = {0.1, -0.2}, m2[2] = {0.4, 0.3};
    double p00 = s1[0] * s2[0] + s1[1] * s2[2], p11 = s1[2] * s2[1] + s1[3] * s2[3];
    double det = (s1[0] * s1[3] - s1[1] * s1[2]) * (s2[0] * s2[3] - s2[1] * s2[2]);
    double trsqrt = sqrt(p00 + p11 + 2 * sqrt(det));
    double expect = 0.09 + 0.25 + 3.0 + 2.0 - 2 * trsqrt;
    double f = frechet_distance(m1, s1, m2, s2, 2);
    th_check(fabs(f - expect) < 1e-12, "frechet: non-commuting 2x2 covariances match the 2x2 formula",
             "got %.15g, expected %.15g", f, expect);
  }
  /* sampled: N(0,I) vs N(0.5,I) in d=8 -> 8 * 0.25 = 2 */
  {
    int d = 8, n = 20000;
    float *x = db_malloc(sizeof(float) * (size_t)n * d), *y = db_malloc(sizeof(float) * (size_t)n * d);
    db_rng_normal_host(x, (size_t)n * d, 41, 0);
    db_rng_normal_host(y, (size_t)n * d, 42, 0);
    for (size_t i = 0; i < (size_t)n * d; i++) y[i] += 0.5f;
    double *mx = dalloc(d), *cx = dalloc((size_t)d * d), *my = dalloc(d), *cy = dalloc((size_t)d * d);
    feature_stats(x, n, d, mx, cx);
    feature_stats(y, n, d, my, cy);
    double f = frechet_distance(mx, cx, my, cy, d);
    th_check(fabs(f - 2.0) < 0.1, "frechet: 20000 samples of N(0,I) vs N(0.5,I), d=8, give about 2", "got %.4f", f);
    free(x); free(y); free(mx); free(cx); free(my); free(cy);
  }
  /* non-finite statistics give NaN, never a perfect 0 (NaN samples used to score FD 0.000) */
  {
    int d = 6, n = 50;
    float *x = db_malloc(sizeof(float) * (size_t)n * d);
    db_rng_normal_host(x, (size_t)n * d, 43, 0);
    double *m1 = dalloc(d), *c1 = dalloc((size_t)d * d), *m2 = dalloc(d), *c2 = dalloc((size_t)d * d);
    feature_stats(x, n, d, m2, c2);
    x[7] = NAN;
    feature_stats(x, n, d, m1, c1);
    double f_nan = frechet_distance(m1, c1, m2, c2, d), f_nan2 = frechet_distance(m2, c2, m1, c1, d);
    memcpy(m1, m2, sizeof(double) * d);
    memcpy(c1, c2, sizeof(double) * d * d);
    c1[3 * d + 3] = INFINITY;
    double f_inf = frechet_distance(m1, c1, m2, c2, d);
    memcpy(c1, c2, sizeof(double) * d * d);
    m1[2] = -INFINITY;
    double f_minf = frechet_distance(m1, c1, m2, c2, d);
    th_check(isnan(f_nan) && isnan(f_nan2) && isnan(f_inf) && isnan(f_minf),
             "frechet: NaN or Inf in either set of statistics gives NaN, never 0",
             "NaN sample: %g (swapped %g), Inf variance: %g, -Inf mean: %g", f_nan, f_nan2, f_inf, f_minf);
    free(x); free(m1); free(c1); free(m2); free(c2);
  }
}

/* ---------------------------------------------------------------- classifier */
/* Synthetic images: class k is a bright square in one of four places, on noise. */
static void synth(float *img, uint8_t *lab, int n, int h, int w, uint64_t seed) {
  db_rng_uniform_host(img, (size_t)n * h * w, seed, 0, -1.0f, -0.4f);
  for (int i = 0; i < n; i++) {
    int k = i % 4;
    lab[i] = (uint8_t)k;
    int y0 = (k / 2) * h / 2 + 1, x0 = (k % 2) * w / 2 + 1;
    for (int y = y0; y < y0 + h / 2 - 2; y++)
      for (int x = x0; x < x0 + w / 2 - 2; x++) img[((size_t)i * h + y) * w + x] += 1.2f;
  }
}

static void grad_check(clf_config cfg, const char *label) {
  classifier *c = clf_create(th_ctx, cfg, 3);
  param_set *ps = clf_params(c);
  /* random values everywhere (not the init's zeros and ones) so every path is live */
  for (int i = 0; i < ps->n; i++) db_rng_uniform(th_ctx, ps->p[i], 5, (uint64_t)i << 20, -0.5f, 0.5f);
  int B = 5, npx = B * 48;
  float *img = db_malloc(sizeof(float) * (size_t)npx);
  db_rng_uniform_host(img, (size_t)npx, 6, 0, -1, 1);
  uint8_t lab[5] = {0, 4, 2, 2, 1};
  clf_loss(th_ctx, c, img, lab, B, 1);
  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < ps->n; i++) {
    size_t m = db_numel(ps->p[i]);
    float *p0 = db_malloc(m * sizeof *p0), *v = db_malloc(m * sizeof *v), *g = db_malloc(m * sizeof *g), *pt = db_malloc(m * sizeof *pt);
    db_download(th_ctx, ps->p[i], p0);
    db_download(th_ctx, ps->g[i], g);
    db_rng_uniform_host(v, m, 1234, (uint64_t)i << 16, -1, 1);
    double an = 0;
    for (size_t j = 0; j < m; j++) an += (double)g[j] * v[j];
    double fdh[2]; /* central differences at h and h/2, Richardson-extrapolated */
    for (int k = 0; k < 2; k++) {
      double h = k ? 1e-2 : 2e-2, l[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        for (size_t j = 0; j < m; j++) pt[j] = p0[j] + (float)(sgn ? -h : h) * v[j];
        db_upload(th_ctx, ps->p[i], pt);
        l[sgn] = clf_loss(th_ctx, c, img, lab, B, 0);
      }
      fdh[k] = (l[0] - l[1]) / (2 * h);
    }
    db_upload(th_ctx, ps->p[i], p0);
    double fd = (4 * fdh[1] - fdh[0]) / 3;
    /* the loss is a float32 mean of order 1: a floor of 0.02 on the scale */
    double e = fabs(fd - an) / fmax(fabs(an), 0.02);
    if (e > worst) { worst = e; worst_name = ps->names[i]; }
    if (getenv("CLF_TEST_VERBOSE")) printf("        %s: directional derivative %.6g, backward %.6g\n", ps->names[i], fd, an);
    free(p0); free(v); free(g); free(pt);
  }
  char name[160];
  snprintf(name, sizeof name, "classifier (%s): backward matches directional finite differences for every parameter tensor", label);
  th_check(worst < 3e-3, name, "worst %s: rel err %.3e", worst_name, worst);
  printf("        %d parameter tensors, worst %s rel err %.2e\n", ps->n, worst_name, worst);
  th_record("classifier (composed)", label, 0, 0, worst);
  free(img);
  clf_free(c);
}

/* Overlapping windows: a window-4 classifier whose patch-embedding weights
 * vanish outside the central 2x2 of each window computes exactly what the
 * window-0 (patchify) classifier computes with those central weights. */
static void window_check(void) {
  clf_config c0 = {.width = 8, .depth = 1, .heads = 2, .patch = 2, .window = 0, .n_classes = 3, .img_h = 6, .img_w = 8};
  clf_config cw = c0;
  cw.window = 4;
  classifier *a = clf_create(th_ctx, c0, 4), *b = clf_create(th_ctx, cw, 4);
  param_set *pa = clf_params(a), *pb = clf_params(b);
  for (int i = 0; i < pa->n; i++) db_rng_uniform(th_ctx, pa->p[i], 8, (uint64_t)i << 20, -0.5f, 0.5f);
  for (int i = 0; i < pa->n; i++) {
    size_t m = db_numel(pa->p[i]);
    float *x = db_malloc(m * sizeof *x);
    db_download(th_ctx, pa->p[i], x);
    if (!strcmp(pa->names[i], "x_embedder.proj.weight")) {
      float *y = db_calloc(8 * 16, sizeof *y);
      for (int o = 0; o < 8; o++)
        for (int k = 0; k < 4; k++) y[o * 16 + (1 + k / 2) * 4 + 1 + k % 2] = x[o * 4 + k];
      db_upload(th_ctx, pb->p[i], y);
      free(y);
    } else db_upload(th_ctx, pb->p[i], x);
    free(x);
  }
  int n = 7, d = clf_feature_dim(a);
  float *img = db_malloc(sizeof(float) * 48 * n), *fa = db_malloc(sizeof(float) * n * d), *fb = db_malloc(sizeof(float) * n * d);
  db_rng_uniform_host(img, 48 * (size_t)n, 9, 0, -1, 1);
  clf_features(th_ctx, a, img, n, 6, 8, fa, NULL);
  clf_features(th_ctx, b, img, n, 6, 8, fb, NULL);
  double e = 0;
  for (int i = 0; i < n * d; i++) e = fmax(e, fabs(fa[i] - fb[i]));
  th_check(e < 1e-5, "classifier: overlapping-window tokens hold each patch at their centre", "max diff %.2e", e);
  free(img); free(fa); free(fb);
  clf_free(a);
  clf_free(b);
}

static int same_params(classifier *a, classifier *b) {
  param_set *pa = clf_params(a), *pb = clf_params(b);
  if (pa->n != pb->n) return 0;
  int same = 1;
  for (int i = 0; i < pa->n && same; i++) {
    size_t m = db_numel(pa->p[i]);
    float *x = db_malloc(m * sizeof *x), *y = db_malloc(m * sizeof *y);
    db_download(th_ctx, pa->p[i], x);
    db_download(th_ctx, pb->p[i], y);
    same = !memcmp(x, y, m * sizeof *x);
    free(x); free(y);
  }
  return same;
}

static void training_and_files(void) {
  clf_config cfg = {.width = 16, .depth = 1, .heads = 2, .patch = 4, .window = 0, .n_classes = 4, .img_h = 16, .img_w = 16};
  int n = 512, nt = 300, px = 16 * 16;
  idx_dataset tr = {.n = n, .rows = 16, .cols = 16, .n_classes = 4}, te = {.n = nt, .rows = 16, .cols = 16, .n_classes = 4};
  tr.images = db_malloc(sizeof(float) * (size_t)n * px);
  tr.labels = db_malloc((size_t)n);
  te.images = db_malloc(sizeof(float) * (size_t)nt * px);
  te.labels = db_malloc((size_t)nt);
  synth(tr.images, tr.labels, n, 16, 16, 51);
  synth(te.images, te.labels, nt, 16, 16, 52);

  classifier *c = clf_create(th_ctx, cfg, 9), *c2 = clf_create(th_ctx, cfg, 9);
  th_check(same_params(c, c2), "classifier: initialisation is deterministic for a seed", "parameters differ");
  double before = clf_loss(th_ctx, c, tr.images, tr.labels, 256, 0);
  /* 512 images, batch 64: 8 steps an epoch, 4 epochs = 32 AdamW steps */
  double acc = clf_train(th_ctx, c, &tr, &te, 4, 64, 1e-2f, 77);
  double after = clf_loss(th_ctx, c, tr.images, tr.labels, 256, 0);
  th_check(after < 0.5 * before && acc > 0.9, "classifier: 32 training steps on 512 synthetic images lower the loss",
           "loss %.4f -> %.4f, held-out accuracy %.3f", before, after, acc);
  printf("        loss %.4f -> %.4f, held-out accuracy %.3f\n", before, after, acc);
  double acc2 = clf_train(th_ctx, c2, &tr, &te, 4, 64, 1e-2f, 77);
  th_check(acc2 == acc && same_params(c, c2), "classifier: training is deterministic for a seed",
           "accuracy %.4f vs %.4f", acc, acc2);
  th_check(fabs(clf_accuracy(th_ctx, c, te.images, te.labels, nt) - acc) < 1e-12 && clf_test_accuracy(c) == acc,
           "classifier: clf_accuracy agrees with what clf_train reported", "%.4f vs %.4f",
           clf_accuracy(th_ctx, c, te.images, te.labels, nt), acc);

  /* features: batched with a padded tail (300 = 64 + ... + 44) equal one-by-one calls */
  int C = clf_feature_dim(c);
  float *f_all = db_malloc(sizeof(float) * (size_t)nt * C), *f_one = db_malloc(sizeof(float) * (size_t)C);
  int *pred = db_malloc(sizeof(int) * (size_t)nt), p1;
  clf_features(th_ctx, c, te.images, nt, 16, 16, f_all, pred);
  double fe = 0, norm = 0;
  int pe = 0, probe[3] = {0, 131, nt - 1};
  for (int k = 0; k < 3; k++) {
    int i = probe[k];
    clf_features(th_ctx, c, te.images + (size_t)i * px, 1, 16, 16, f_one, &p1);
    for (int j = 0; j < C; j++) fe = fmax(fe, fabs(f_one[j] - f_all[(size_t)i * C + j]));
    pe += p1 != pred[i];
  }
  for (int j = 0; j < C; j++) norm += f_all[j] * f_all[j];
  th_check(fe < 1e-5 && pe == 0 && fabs(norm / C - 1) < 1e-3,
           "classifier: features of padded batches equal single-image calls; features are layer-normed",
           "max diff %.2e, %d predictions differ, mean square %.4f", fe, pe, norm / C);

  /* checkpoint round trip */
  char path[256], bad[256];
  snprintf(path, sizeof path, "/tmp/dblocks-clf-test-%d.safetensors", (int)getpid());
  snprintf(bad, sizeof bad, "/tmp/dblocks-clf-test-%d-bad.safetensors", (int)getpid());
  clf_save(c, path);
  classifier *l = clf_load(th_ctx, path);
  clf_config lc = clf_get_config(l);
  float *f_l = db_malloc(sizeof(float) * (size_t)nt * C);
  clf_features(th_ctx, l, te.images, nt, 16, 16, f_l, NULL);
  th_check(!memcmp(&lc, &cfg, sizeof cfg) && same_params(c, l) && !memcmp(f_l, f_all, sizeof(float) * (size_t)nt * C) &&
               fabs(clf_test_accuracy(l) - acc) < 1e-6,
           "classifier: save + load reproduces config, parameters, features and recorded accuracy", "mismatch");
  clf_config rc = clf_read_config(path);
  th_check(!memcmp(&rc, &cfg, sizeof cfg), "classifier: clf_read_config reads a checkpoint's configuration without a device",
           "mismatch");
  TH_EXPECT_ERROR("classifier: clf_features refuses images of another size than the classifier's",
                  "clf_features: images are 14x14, the classifier expects 16x16",
                  clf_features(th_ctx, c, te.images, 2, 14, 14, f_one, NULL));
  st_file f = st_read(path);
  th_check(f.n == clf_params(c)->n - cfg.depth && !st_find(&f, "blocks.0.adaLN.weight") && st_find(&f, "head.weight"),
           "classifier checkpoint: every tensor but the (always zero) adaLN weights", "%d tensors", f.n);
  /* the same tensors under another format, then without one tensor */
  st_tensor_in *ti = db_calloc((size_t)f.n, sizeof *ti);
  for (int i = 0; i < f.n; i++) {
    ti[i].name = f.tensors[i].name;
    ti[i].ndim = f.tensors[i].ndim;
    memcpy(ti[i].shape, f.tensors[i].shape, sizeof ti[i].shape);
    ti[i].data = f.tensors[i].data;
  }
  const char *meta_other[2] = {"format", "something-else"};
  st_write(bad, ti, f.n, meta_other, 1);
  TH_EXPECT_ERROR("clf_load rejects a checkpoint of another format", "not a classifier checkpoint", clf_load(th_ctx, bad));
  /* as many (key, value) pointers as the file has: the checkpoint writes 11 pairs */
  const char **meta = db_calloc(2 * (size_t)f.n_meta, sizeof *meta);
  for (int i = 0; i < f.n_meta; i++) {
    meta[2 * i] = f.meta_kv[2 * i];
    meta[2 * i + 1] = f.meta_kv[2 * i + 1];
  }
  st_write(bad, ti + 1, f.n - 1, meta, f.n_meta);
  TH_EXPECT_ERROR("clf_load names a missing tensor", "is missing", clf_load(th_ctx, bad));
  int sv = ti[0].shape[0];
  ti[0].shape[0] = 1; /* numel changes too: data is only read for numel floats */
  st_write(bad, ti, f.n, meta, f.n_meta);
  ti[0].shape[0] = sv;
  TH_EXPECT_ERROR("clf_load names a tensor of the wrong shape", "has shape", clf_load(th_ctx, bad));
  TH_EXPECT_ERROR("clf_load fails clearly on a missing file", "/nonexistent/clf.safetensors",
                  clf_load(th_ctx, "/nonexistent/clf.safetensors"));
  TH_EXPECT_ERROR("classifier rejects a patch that does not divide the image", "patch 5", {
    clf_config b = cfg;
    b.patch = 5;
    clf_config_check(&b);
  });
  TH_EXPECT_ERROR("classifier rejects a window smaller than the patch", "window 2", {
    clf_config b = cfg;
    b.window = 2;
    clf_config_check(&b);
  });
  free(ti);
  free(meta);
  st_free(&f);
  unlink(path);
  unlink(bad);
  free(f_l);
  clf_free(l);
  free(f_all); free(f_one); free(pred);
  clf_free(c);
  clf_free(c2);
  idx_free(&tr);
  idx_free(&te);
}

void tests_classifier(void) {
  test_frechet();
  clf_config g1 = {.width = 8, .depth = 2, .heads = 2, .patch = 2, .window = 4, .n_classes = 5, .img_h = 6, .img_w = 8};
  grad_check(g1, "6x8 p=2 w=4 C=8 depth=2 B=5");
  clf_config g2 = {.width = 8, .depth = 1, .heads = 2, .patch = 2, .pool = 1, .n_classes = 5, .img_h = 6, .img_w = 8};
  grad_check(g2, "6x8 p=2 C=8 depth=1 flatten-pool");
  window_check();
  training_and_files();
}
