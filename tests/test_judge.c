/* The byte-level judge (models/judge.c): its forward against an independent
 * double-precision host transformer (bits per byte, sliding windows included),
 * its backward against directional finite differences of its loss for every
 * parameter tensor, a short training run that lowers the loss, determinism,
 * checkpoint round trip and load errors. */
#include "harness.h"
#include "../models/judge.h"
#include "../data/safetensors.h"
#include <stdlib.h>
#include <unistd.h>

/* ---------------------------------------------------------------- host reference */
typedef struct {
  judge_config c;
  double **p; /* every tensor, by index in the param set */
  param_set *ps;
} host_model;

static host_model host_copy(judge *j) {
  host_model m = {judge_get_config(j), NULL, judge_params(j)};
  m.p = db_calloc((size_t)m.ps->n, sizeof *m.p);
  for (int i = 0; i < m.ps->n; i++) {
    size_t n = db_numel(m.ps->p[i]);
    float *f = db_malloc(n * sizeof *f);
    db_download(th_ctx, m.ps->p[i], f);
    m.p[i] = db_malloc(n * sizeof(double));
    for (size_t k = 0; k < n; k++) m.p[i][k] = f[k];
    free(f);
  }
  return m;
}

static void host_free(host_model *m) {
  for (int i = 0; i < m->ps->n; i++) free(m->p[i]);
  free(m->p);
}

static const double *P(const host_model *m, const char *fmt, int l) {
  char name[64];
  snprintf(name, sizeof name, fmt, l);
  int i = param_find(m->ps, name);
  if (i < 0) db_fail("test_judge: no tensor %s", name);
  return m->p[i];
}

/* out = LN(x) (1 + row[C..2C]) + row[0..C] */
static void host_ln(double *out, const double *x, const double *row, int C) {
  double mu = 0, var = 0;
  for (int k = 0; k < C; k++) mu += x[k];
  mu /= C;
  for (int k = 0; k < C; k++) var += (x[k] - mu) * (x[k] - mu);
  double rs = 1 / sqrt(var / C + 1e-5);
  for (int k = 0; k < C; k++) out[k] = (x[k] - mu) * rs * (1 + row[C + k]) + row[k];
}

/* y (O) = W (O,I) x + b */
static void host_lin(double *y, const double *W, const double *b, const double *x, int O, int I) {
  for (int o = 0; o < O; o++) {
    double s = b ? b[o] : 0;
    for (int i = 0; i < I; i++) s += W[(size_t)o * I + i] * x[i];
    y[o] = s;
  }
}

static double host_gelu(double x) { return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

/* -log2 p(x[n] | x[0..n-1]) for a prefix of n <= context bytes (positions 0..n-1) */
static double host_bits(const host_model *m, const unsigned char *x, int n) {
  int C = m->c.width, NH = m->c.heads, hs = C / NH, L = m->c.layers;
  double *h = db_calloc((size_t)n * C, sizeof *h), *a = db_malloc(sizeof(double) * C),
         *qkv = db_malloc(sizeof(double) * (size_t)n * 3 * C), *att = db_malloc(sizeof(double) * C),
         *t = db_malloc(sizeof(double) * 4 * C), *u = db_malloc(sizeof(double) * C), *sc = db_malloc(sizeof(double) * n);
  const double *wte = P(m, "wte", 0), *wpe = P(m, "wpe", 0);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < C; k++) h[i * C + k] = wte[x[i] * C + k] + wpe[i * C + k];
  for (int l = 0; l < L; l++) {
    for (int i = 0; i < n; i++) {
      host_ln(a, h + i * C, P(m, "h.%d.ln1", l), C);
      host_lin(qkv + (size_t)i * 3 * C, P(m, "h.%d.qkv.weight", l), P(m, "h.%d.qkv.bias", l), a, 3 * C, C);
    }
    double *nh = db_malloc(sizeof(double) * (size_t)n * C);
    for (int i = 0; i < n; i++) {
      for (int hd = 0; hd < NH; hd++) {
        double mx = -1e300, z = 0;
        for (int j = 0; j <= i; j++) {
          double s = 0;
          for (int d = 0; d < hs; d++) s += qkv[(size_t)i * 3 * C + hd * hs + d] * qkv[(size_t)j * 3 * C + C + hd * hs + d];
          sc[j] = s / sqrt(hs);
          mx = fmax(mx, sc[j]);
        }
        for (int j = 0; j <= i; j++) z += (sc[j] = exp(sc[j] - mx));
        for (int d = 0; d < hs; d++) {
          double v = 0;
          for (int j = 0; j <= i; j++) v += sc[j] / z * qkv[(size_t)j * 3 * C + 2 * C + hd * hs + d];
          att[hd * hs + d] = v;
        }
      }
      host_lin(u, P(m, "h.%d.proj.weight", l), P(m, "h.%d.proj.bias", l), att, C, C);
      for (int k = 0; k < C; k++) nh[i * C + k] = h[i * C + k] + u[k];
      host_ln(a, nh + i * C, P(m, "h.%d.ln2", l), C);
      host_lin(t, P(m, "h.%d.fc1.weight", l), P(m, "h.%d.fc1.bias", l), a, 4 * C, C);
      for (int k = 0; k < 4 * C; k++) t[k] = host_gelu(t[k]);
      host_lin(u, P(m, "h.%d.fc2.weight", l), P(m, "h.%d.fc2.bias", l), t, C, 4 * C);
      for (int k = 0; k < C; k++) nh[i * C + k] += u[k];
    }
    memcpy(h, nh, sizeof(double) * (size_t)n * C);
    free(nh);
  }
  double logits[256], mx = -1e300, z = 0;
  host_ln(a, h + (n - 1) * C, P(m, "ln_f", 0), C);
  host_lin(logits, P(m, "head.weight", 0), P(m, "head.bias", 0), a, 256, C);
  for (int v = 0; v < 256; v++) mx = fmax(mx, logits[v]);
  for (int v = 0; v < 256; v++) z += exp(logits[v] - mx);
  double bits = (mx + log(z) - logits[x[n]]) / M_LN2;
  free(h); free(a); free(qkv); free(att); free(t); free(u); free(sc);
  return bits;
}

/* the documented protocol: target i <= T sees bytes 0..i-1; a later one the
 * window starting at the first multiple s of T/2 with i <= s + T */
static double host_bpb(const host_model *m, const unsigned char *const *texts, const size_t *lens, int n, int from,
                       size_t *count) {
  int T = m->c.context, stride = T / 2;
  double s = 0;
  size_t c = 0;
  for (int k = 0; k < n; k++)
    for (size_t i = from > 1 ? (size_t)from : 1; i < lens[k]; i++) {
      size_t st = i <= (size_t)T ? 0 : (i - T + stride - 1) / stride * stride;
      s += host_bits(m, texts[k] + st, (int)(i - st));
      c++;
    }
  *count = c;
  return s / c;
}

static void randomize(judge *j, uint64_t seed, float r) {
  param_set *ps = judge_params(j);
  for (int i = 0; i < ps->n; i++) db_rng_uniform(th_ctx, ps->p[i], seed, (uint64_t)i << 20, -r, r);
}

static unsigned char *random_bytes(size_t n, uint64_t seed, int alphabet) {
  unsigned char *b = db_malloc(n ? n : 1);
  float *u = db_malloc(sizeof(float) * (n ? n : 1));
  db_rng_uniform_host(u, n, seed, 0, 0, 1);
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)((int)(u[i] * alphabet) % alphabet + (alphabet < 256 ? 'a' : 0));
  free(u);
  return b;
}

static void forward_check(void) {
  judge_config cfg = {.width = 8, .heads = 2, .layers = 2, .context = 6};
  judge *j = judge_create(th_ctx, cfg, 1);
  randomize(j, 2, 0.4f);
  host_model m = host_copy(j);
  /* lengths: shorter than, equal to and several times the context (sliding windows), 0 and 1 */
  size_t lens[6] = {5, 7, 23, 0, 1, 16};
  unsigned char *buf[6];
  const unsigned char *texts[6];
  for (int k = 0; k < 6; k++) texts[k] = buf[k] = random_bytes(lens[k], 10 + k, 256);
  int froms[2] = {0, 4};
  for (int f = 0; f < 2; f++) {
    size_t n_dev = 0, n_host = 0;
    double dev = judge_bits_per_byte_n(j, texts, lens, 6, froms[f], &n_dev);
    double ref = host_bpb(&m, texts, lens, 6, froms[f], &n_host);
    double again = judge_bits_per_byte(j, texts, lens, 6, froms[f]);
    char name[200];
    snprintf(name, sizeof name,
             "judge: bits per byte = mean -log2 p of a double host transformer, sliding windows (from = %d, T = 6)", froms[f]);
    th_check(fabs(dev - ref) < 1e-5 * ref && n_dev == n_host && again == dev, name,
             "device %.8f (%zu bytes) vs host %.8f (%zu bytes), repeat %.8f", dev, n_dev, ref, n_host, again);
    printf("        from %d: %.6f bits/byte over %zu bytes (host %.6f)\n", froms[f], dev, n_dev, ref);
  }
  /* a batch of one text gives what it gives among others (padding, batching) */
  double one = judge_bits_per_byte(j, texts + 2, lens + 2, 1, 0);
  size_t c1;
  double one_ref = host_bpb(&m, texts + 2, lens + 2, 1, 0, &c1);
  th_check(fabs(one - one_ref) < 1e-5 * one_ref, "judge: one long text alone (3 windows in a padded batch)",
           "%.8f vs %.8f", one, one_ref);
  TH_EXPECT_ERROR("judge: bits per byte fails clearly with no byte to score", "no byte to score",
                  judge_bits_per_byte(j, texts, lens, 6, 100));
  /* the untrained init predicts about uniformly: ~8 bits per byte */
  judge *u = judge_create(th_ctx, cfg, 3);
  double b = judge_bits_per_byte(u, texts, lens, 6, 0);
  th_check(fabs(b - 8) < 0.1, "judge: a fresh judge predicts bytes about uniformly (8 bits)", "%.4f", b);
  judge_destroy(u);
  for (int k = 0; k < 6; k++) free(buf[k]);
  host_free(&m);
  judge_destroy(j);
}

static void grad_check(void) {
  judge_config cfg = {.width = 8, .heads = 2, .layers = 2, .context = 5};
  judge *j = judge_create(th_ctx, cfg, 3);
  randomize(j, 5, 0.5f);
  param_set *ps = judge_params(j);
  int B = 3;
  unsigned char *w = random_bytes((size_t)B * (cfg.context + 1), 7, 12);
  judge_loss(j, w, B, 1);
  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < ps->n; i++) {
    size_t m = db_numel(ps->p[i]);
    float *p0 = db_malloc(m * sizeof *p0), *v = db_malloc(m * sizeof *v), *g = db_malloc(m * sizeof *g),
          *pt = db_malloc(m * sizeof *pt);
    db_download(th_ctx, ps->p[i], p0);
    db_download(th_ctx, ps->g[i], g);
    db_rng_uniform_host(v, m, 1234, (uint64_t)i << 16, -1, 1);
    double an = 0;
    for (size_t k = 0; k < m; k++) an += (double)g[k] * v[k];
    double fdh[2];
    for (int k = 0; k < 2; k++) {
      double h = k ? 1e-2 : 2e-2, l[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        for (size_t q = 0; q < m; q++) pt[q] = p0[q] + (float)(sgn ? -h : h) * v[q];
        db_upload(th_ctx, ps->p[i], pt);
        l[sgn] = judge_loss(j, w, B, 0);
      }
      fdh[k] = (l[0] - l[1]) / (2 * h);
    }
    db_upload(th_ctx, ps->p[i], p0);
    double fd = (4 * fdh[1] - fdh[0]) / 3, e = fabs(fd - an) / fmax(fabs(an), 0.02);
    if (e > worst) { worst = e; worst_name = ps->names[i]; }
    if (getenv("JUDGE_TEST_VERBOSE")) printf("        %s: directional derivative %.6g, backward %.6g\n", ps->names[i], fd, an);
    free(p0); free(v); free(g); free(pt);
  }
  th_check(worst < 3e-3, "judge: backward matches directional finite differences for every parameter tensor",
           "worst %s: rel err %.3e", worst_name, worst);
  printf("        %d parameter tensors, worst %s rel err %.2e\n", ps->n, worst_name, worst);
  th_record("judge (composed)", "C=8 NH=2 L=2 T=5 B=3", 0, 0, worst);
  free(w);
  judge_destroy(j);
}

static int same_params(judge *a, judge *b) {
  param_set *pa = judge_params(a), *pb = judge_params(b);
  if (pa->n != pb->n) return 0;
  int same = 1;
  for (int i = 0; i < pa->n && same; i++) {
    size_t m = db_numel(pa->p[i]);
    if (m != db_numel(pb->p[i])) return 0;
    float *x = db_malloc(m * sizeof *x), *y = db_malloc(m * sizeof *y);
    db_download(th_ctx, pa->p[i], x);
    db_download(th_ctx, pb->p[i], y);
    same = !memcmp(x, y, m * sizeof *x);
    free(x); free(y);
  }
  return same;
}

static void training_and_files(void) {
  judge_config cfg = {.width = 32, .heads = 2, .layers = 1, .context = 16};
  const char *s = "in the beginning god created the heaven and the earth. ";
  size_t n = 2000, sl = strlen(s);
  unsigned char *text = db_malloc(n);
  for (size_t i = 0; i < n; i++) text[i] = (unsigned char)s[i % sl];
  judge *j = judge_create(th_ctx, cfg, 9), *j2 = judge_create(th_ctx, cfg, 9);
  th_check(same_params(j, j2), "judge: initialisation is deterministic for a seed", "parameters differ");
  const unsigned char *t[1] = {text};
  size_t l[1] = {600};
  double before = judge_bits_per_byte(j, t, l, 1, 0);
  double tail = judge_train(j, text, n, 60, 8, 3e-3, 5);
  double after = judge_bits_per_byte(j, t, l, 1, 0);
  th_check(after < 0.5 * before && tail / M_LN2 < 0.6 * before,
           "judge: 60 training steps on a repetitive text lower its bits per byte", "%.3f -> %.3f bits/byte (train %.3f)",
           before, after, tail / M_LN2);
  printf("        %.3f -> %.3f bits/byte after 60 steps\n", before, after);
  double tail2 = judge_train(j2, text, n, 60, 8, 3e-3, 5);
  th_check(tail2 == tail && same_params(j, j2), "judge: training is deterministic for a seed", "%.6f vs %.6f", tail,
           tail2);

  char path[256], bad[256];
  snprintf(path, sizeof path, "/tmp/dblocks-judge-test-%d.safetensors", (int)getpid());
  snprintf(bad, sizeof bad, "/tmp/dblocks-judge-test-%d-bad.safetensors", (int)getpid());
  judge_note(j, "heldout_bits_per_byte", "1.234");
  judge_note(j, "heldout_bits_per_byte", "1.5");
  judge_save(j, path);
  judge *r = judge_load(th_ctx, path);
  judge_config rc = judge_get_config(r);
  double after_r = judge_bits_per_byte(r, t, l, 1, 0);
  const char *note = judge_get_note(r, "heldout_bits_per_byte");
  th_check(!memcmp(&rc, &cfg, sizeof cfg) && same_params(j, r) && after_r == after && note && !strcmp(note, "1.5"),
           "judge: save + load reproduces config, parameters, notes and bits per byte", "bpb %.6f vs %.6f, note %s",
           after_r, after, note ? note : "(none)");
  judge_destroy(r);

  TH_EXPECT_ERROR("judge_load fails clearly on a missing file", "/nonexistent/judge.safetensors",
                  judge_load(th_ctx, "/nonexistent/judge.safetensors"));
  FILE *fp = fopen(bad, "wb");
  fputs("this is not a safetensors file at all", fp);
  fclose(fp);
  TH_EXPECT_ERROR("judge_load fails clearly on a corrupt file", bad, judge_load(th_ctx, bad));
  st_file f = st_read(path);
  st_tensor_in *ti = db_calloc((size_t)f.n, sizeof *ti);
  for (int i = 0; i < f.n; i++) {
    ti[i].name = f.tensors[i].name;
    ti[i].ndim = f.tensors[i].ndim;
    memcpy(ti[i].shape, f.tensors[i].shape, sizeof ti[i].shape);
    ti[i].data = f.tensors[i].data;
  }
  const char **meta = db_calloc(2 * (size_t)f.n_meta, sizeof *meta);
  for (int i = 0; i < 2 * f.n_meta; i++) meta[i] = f.meta_kv[i];
  const char *other[2] = {"format", "dblocks-classifier"};
  st_write(bad, ti, f.n, other, 1);
  TH_EXPECT_ERROR("judge_load rejects a checkpoint of another format", "not a judge checkpoint", judge_load(th_ctx, bad));
  st_write(bad, ti + 1, f.n - 1, meta, f.n_meta);
  TH_EXPECT_ERROR("judge_load names a missing tensor", "tensor \"wte\" is missing", judge_load(th_ctx, bad));
  int sv = ti[1].shape[0];
  ti[1].shape[0] = 8; /* wpe (16, 32) -> (8, 32): only the first numel floats are read */
  st_write(bad, ti, f.n, meta, f.n_meta);
  ti[1].shape[0] = sv;
  TH_EXPECT_ERROR("judge_load names a tensor of the wrong shape", "tensor \"wpe\" has shape [8,32] (rank 2), expected [16,32]",
                  judge_load(th_ctx, bad));
  for (int i = 0; i < f.n_meta; i++)
    if (!strcmp(meta[2 * i], "heads")) meta[2 * i + 1] = "5";
  st_write(bad, ti, f.n, meta, f.n_meta);
  TH_EXPECT_ERROR("judge_load rejects a configuration whose heads do not divide the width",
                  "width 32 must be a positive multiple of heads 5", judge_load(th_ctx, bad));
  for (int i = 0; i < f.n_meta; i++)
    if (!strcmp(meta[2 * i], "heads")) meta[2 * i + 1] = "two";
  st_write(bad, ti, f.n, meta, f.n_meta);
  TH_EXPECT_ERROR("judge_load rejects a non-integer configuration field", "\"heads\" is missing or not an integer",
                  judge_load(th_ctx, bad));
  TH_EXPECT_ERROR("judge rejects a head size above 128", "head size 256", {
    judge_config b = {.width = 256, .heads = 1, .layers = 1, .context = 8};
    judge_config_check(&b);
  });
  TH_EXPECT_ERROR("judge_train refuses a text shorter than a window", "fewer than context + 1 = 17",
                  judge_train(j, text, 16, 1, 1, 1e-3, 0));
  free(ti);
  free(meta);
  st_free(&f);
  unlink(path);
  unlink(bad);
  free(text);
  judge_destroy(j);
  judge_destroy(j2);
}

void tests_judge(void) {
  forward_check();
  grad_check();
  training_and_files();
}
