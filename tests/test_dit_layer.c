/* The composed proof: one full DiT layer with AdaLN-Zero, forward and the
 * hand-written backward of models/dit_layer.c, against a self-contained
 * double-precision reference of the whole layer. Gradients of the input, the
 * conditioning and all ten parameter tensors are checked by central finite
 * differences of L = sum(R * out) end to end: local gradients compose. */
#include "harness.h"
#include "../models/dit_layer.h"
#include <stdlib.h>

typedef struct { int B, T, C, NH; } shape_t;

static void ref_linear(double *out, const double *in, const double *w, const double *b, int N, int IC, int OC) {
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) {
      double s = b[o];
      for (int i = 0; i < IC; i++) s += in[(size_t)n * IC + i] * w[(size_t)o * IC + i];
      out[(size_t)n * OC + o] = s;
    }
}
static void ref_ln_mod(double *out, const double *x, const double *mod, int shift, int scale, shape_t s) {
  int C = s.C;
  for (int r = 0; r < s.B * s.T; r++) {
    const double *v = x + (size_t)r * C, *m = mod + (size_t)(r / s.T) * 6 * C;
    double mean = 0, var = 0;
    for (int i = 0; i < C; i++) mean += v[i];
    mean /= C;
    for (int i = 0; i < C; i++) var += (v[i] - mean) * (v[i] - mean);
    double rs = 1 / sqrt(var / C + 1e-6);
    for (int i = 0; i < C; i++) out[(size_t)r * C + i] = (v[i] - mean) * rs * (1 + m[scale + i]) + m[shift + i];
  }
}

/* in: x, c, then the DIT_NPARAMS parameters; out (B,T,C) */
static void ref_layer(double **in, double *out, shape_t s) {
  int B = s.B, T = s.T, C = s.C, NH = s.NH, hs = C / NH, N = B * T;
  const double *x = in[0], *c = in[1];
  double **p = in + 2;
  double *cs = db_malloc(sizeof(double) * B * C), *mod = db_malloc(sizeof(double) * B * 6 * C);
  double *m = db_malloc(sizeof(double) * N * C), *qkv = db_malloc(sizeof(double) * N * 3 * C);
  double *y = db_malloc(sizeof(double) * N * C), *proj = db_malloc(sizeof(double) * N * C);
  double *x1 = db_malloc(sizeof(double) * N * C), *h = db_malloc(sizeof(double) * N * 4 * C);
  double *h2 = db_malloc(sizeof(double) * N * 4 * C), *f = db_malloc(sizeof(double) * N * C);
  double *att = db_malloc(sizeof(double) * T);
  for (int i = 0; i < B * C; i++) cs[i] = c[i] / (1 + exp(-c[i]));
  ref_linear(mod, cs, p[DIT_ADA_W], p[DIT_ADA_B], B, C, 6 * C);
  ref_ln_mod(m, x, mod, 0, C, s);
  ref_linear(qkv, m, p[DIT_QKV_W], p[DIT_QKV_B], N, C, 3 * C);
  for (int b = 0; b < B; b++)
    for (int hd = 0; hd < NH; hd++)
      for (int i = 0; i < T; i++) {
        const double *q = qkv + ((size_t)(b * T + i)) * 3 * C + hd * hs;
        double mx = -1e300, sum = 0;
        for (int j = 0; j < T; j++) {
          const double *k = qkv + ((size_t)(b * T + j)) * 3 * C + C + hd * hs;
          double d = 0;
          for (int e = 0; e < hs; e++) d += q[e] * k[e];
          att[j] = d / sqrt((double)hs);
          if (att[j] > mx) mx = att[j];
        }
        for (int j = 0; j < T; j++) { att[j] = exp(att[j] - mx); sum += att[j]; }
        for (int e = 0; e < hs; e++) {
          double acc = 0;
          for (int j = 0; j < T; j++) acc += att[j] / sum * qkv[((size_t)(b * T + j)) * 3 * C + 2 * C + hd * hs + e];
          y[((size_t)(b * T + i)) * C + hd * hs + e] = acc;
        }
      }
  ref_linear(proj, y, p[DIT_PROJ_W], p[DIT_PROJ_B], N, C, C);
  for (int r = 0; r < N; r++)
    for (int i = 0; i < C; i++)
      x1[(size_t)r * C + i] = x[(size_t)r * C + i] + mod[(size_t)(r / T) * 6 * C + 2 * C + i] * proj[(size_t)r * C + i];
  ref_ln_mod(m, x1, mod, 3 * C, 4 * C, s);
  ref_linear(h, m, p[DIT_FC1_W], p[DIT_FC1_B], N, C, 4 * C);
  for (size_t i = 0; i < (size_t)N * 4 * C; i++) {
    double v = h[i];
    h2[i] = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
  }
  ref_linear(f, h2, p[DIT_FC2_W], p[DIT_FC2_B], N, 4 * C, C);
  for (int r = 0; r < N; r++)
    for (int i = 0; i < C; i++)
      out[(size_t)r * C + i] = x1[(size_t)r * C + i] + mod[(size_t)(r / T) * 6 * C + 5 * C + i] * f[(size_t)r * C + i];
  free(cs); free(mod); free(m); free(qkv); free(y); free(proj); free(x1); free(h); free(h2); free(f); free(att);
}

static double ref_loss(double **in, const double *R, shape_t s) {
  size_t n = (size_t)s.B * s.T * s.C;
  double *out = db_malloc(n * sizeof *out), L = 0;
  ref_layer(in, out, s);
  for (size_t i = 0; i < n; i++) L += R[i] * out[i];
  free(out);
  return L;
}

static void run(shape_t s) {
  char label[96];
  snprintf(label, sizeof label, "dit_layer B=%d T=%d C=%d NH=%d", s.B, s.T, s.C, s.NH);
  dit_layer_config cfg = {s.C, s.NH};
  int B = s.B, T = s.T, C = s.C;
  size_t nx = (size_t)B * T * C;
  db_arena *a = db_arena_new(th_ctx, label);
  dit_layer_params p, g;
  dit_layer_alloc_params(a, cfg, &p);
  dit_layer_alloc_params(a, cfg, &g);
  int n_in = 2 + DIT_NPARAMS;
  double *in[2 + DIT_NPARAMS];
  size_t len[2 + DIT_NPARAMS];
  db_tensor dev[2 + DIT_NPARAMS], grad[2 + DIT_NPARAMS];
  len[0] = nx;
  len[1] = (size_t)B * C;
  dev[0] = db_new(a, 3, B, T, C, 0);
  dev[1] = db_new(a, 2, B, C, 0, 0);
  grad[0] = db_new(a, 3, B, T, C, 0);
  grad[1] = db_new(a, 2, B, C, 0, 0);
  for (int i = 0; i < DIT_NPARAMS; i++) {
    len[2 + i] = db_numel(p.t[i]);
    dev[2 + i] = p.t[i];
    grad[2 + i] = g.t[i];
  }
  for (int i = 0; i < n_in; i++) {
    in[i] = db_malloc(len[i] * sizeof(double));
    double r = i < 2 ? 1.0 : (i - 2) % 2 ? 0.2 : 0.5; /* gates must be non-zero for a real test */
    th_rand(in[i], len[i], 77 + (uint64_t)i, -r, r);
    float *f = db_malloc(len[i] * sizeof *f);
    for (size_t j = 0; j < len[i]; j++) f[j] = (float)in[i][j];
    db_upload(th_ctx, dev[i], f);
    free(f);
    db_zero(th_ctx, grad[i]);
  }
  dit_layer_acts acts;
  dit_workspace ws;
  dit_layer_alloc_acts(a, cfg, B, T, &acts);
  dit_workspace_alloc(a, cfg, B, T, &ws);
  db_tensor out = db_new(a, 3, B, T, C, 0), dout = db_new(a, 3, B, T, C, 0);
  dit_layer_forward(th_ctx, out, &acts, dev[0], dev[1], &p, &ws, cfg);

  double *ref = db_malloc(nx * sizeof *ref), *R = db_malloc(nx * sizeof *R);
  float *got = db_malloc(nx * sizeof *got), *rf = db_malloc(nx * sizeof *rf);
  ref_layer(in, ref, s);
  db_download(th_ctx, out, got);
  char name[200];
  double fe = th_rel_err(got, ref, nx);
  snprintf(name, sizeof name, "%s forward vs double reference", label);
  th_check(fe < 1e-4, name, "max rel err %.3e", fe);

  th_rand(R, nx, 4242, -1, 1);
  for (size_t i = 0; i < nx; i++) rf[i] = (float)R[i];
  db_upload(th_ctx, dout, rf);
  dit_layer_backward(th_ctx, grad[0], grad[1], &g, dout, &acts, dev[0], dev[1], &p, &ws, cfg);

  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < n_in; i++) {
    float *gd = db_malloc(len[i] * sizeof *gd);
    db_download(th_ctx, grad[i], gd);
    int ns = len[i] < 12 ? (int)len[i] : 12;
    double fd[12], an[12], pick[12];
    th_rand(pick, (size_t)ns, 900 + (uint64_t)i, 0, (double)len[i]);
    for (int k = 0; k < ns; k++) {
      size_t j = ns == (int)len[i] ? (size_t)k : (size_t)pick[k] % len[i];
      double x0 = in[i][j], h = 1e-5;
      in[i][j] = x0 + h;
      double lp = ref_loss(in, R, s);
      in[i][j] = x0 - h;
      double lm = ref_loss(in, R, s);
      in[i][j] = x0;
      fd[k] = (lp - lm) / (2 * h);
      an[k] = gd[j];
    }
    double e = th_rel_err_d(an, fd, (size_t)ns);
    if (e > worst) { worst = e; worst_name = i == 0 ? "x" : i == 1 ? "c" : dit_param_names[i - 2]; }
    free(gd);
  }
  snprintf(name, sizeof name, "%s backward (x, c, 10 params) vs finite differences", label);
  th_check(worst < 2e-3, name, "max rel err %.3e in %s", worst, worst_name);
  printf("        worst gradient: %s, rel err %.2e\n", worst_name, worst);
  th_record("dit_layer (composed)", label + 10, fe, -1, worst);
  for (int i = 0; i < n_in; i++) free(in[i]);
  free(ref); free(R); free(got); free(rf);
  db_arena_free(a);
}

void tests_dit_layer(void) {
  run((shape_t){1, 5, 8, 2});
  run((shape_t){2, 7, 12, 3});
}
