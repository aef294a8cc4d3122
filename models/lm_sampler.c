#include "lm_sampler.h"
#include "checkpoint.h"
#include "lm_task.h"
#include "manifest.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lm_model_load(db_ctx *ctx, lm_model *m, const char *dir) {
  memset(m, 0, sizeof *m);
  manifest_read(dir, &m->rc);
  if (m->rc.task != TASK_LM)
    db_fail("%s/manifest.json: a%s %s run, not a language model (use dblocks %s)", dir, m->rc.task == TASK_IMAGE ? "n" : "",
            task_name(m->rc.task), m->rc.task == TASK_IMAGE ? "sample" : "classify-eval");
  lm_config cfg = lm_config_of(&m->rc);
  m->blocks = db_calloc((size_t)m->rc.blocks, sizeof *m->blocks);
  for (int b = 0; b < m->rc.blocks; b++) {
    char name[32];
    snprintf(name, sizeof name, "block %d", b);
    lm_block_create(ctx, &m->blocks[b], cfg, name);
    if (block_load(ctx, dir, b, &m->blocks[b].ps) < 0) {
      char file[1024];
      block_file(file, sizeof file, dir, b);
      db_fail("%s: missing (block %d of %d has not been trained)", file, b, m->rc.blocks);
    }
  }
  m->E = lm_embedding_host(&m->rc);
}

void lm_model_free(lm_model *m) {
  for (int b = 0; b < m->rc.blocks; b++) lm_block_destroy(&m->blocks[b]);
  free(m->blocks);
  free(m->E);
  memset(m, 0, sizeof *m);
}

/* Per step j: c_in, c_noise, and the Euler update z' = a z + b D with
 * a = σ_{j+1}/σ_j, b = 1 - a, each as an (R) row (the ops take per-row scalars). */
static void step_coefficients(const run_config *rc, const double *sig, int M, int R, float *coef) {
  for (int j = 0; j < M; j++) {
    edm_precond pc = edm_preconditioning(rc->edm, sig[j]);
    double a = sig[j + 1] / sig[j];
    float v[4] = {(float)pc.c_in, (float)pc.c_noise, (float)a, (float)(1 - a)};
    for (int k = 0; k < 4; k++)
      for (int r = 0; r < R; r++) coef[((size_t)j * 4 + k) * R + r] = v[k];
  }
}

int lm_spacing_parse(const char *name, const char *where) {
  if (!strcmp(name, "rho")) return LM_STEPS_RHO;
  if (!strcmp(name, "law")) return LM_STEPS_LAW;
  db_fail("%s: --spacing %s: expected rho or law", where, name);
}

void lm_sigma_steps(const run_config *rc, lm_sample_opts o, double *sig) {
  int B = rc->blocks, M = o.steps;
  double lo = rc->bounds[0], hi = rc->bounds[B];
  if (o.spacing == LM_STEPS_RHO) {
    edm_config e = rc->edm;
    e.sigma_min = lo;
    e.sigma_max = hi;
    edm_sigma_schedule(e, M, o.rho, sig);
    return;
  }
  for (int j = 0; j < M; j++) { /* quantile q from the top of the law's mass down to its bottom */
    double q = 1.0 - (double)j / (M - 1);
    if (rc->lm.noise == LM_NOISE_EQUIDIFF)
      sig[j] = j == 0 ? hi : j == M - 1 ? lo : lm_curve_sigma_at(&rc->curve, LM_FRAC_LO + q * (LM_FRAC_HI - LM_FRAC_LO));
    else {
      double a = edm_norm_cdf((log(lo) - rc->edm.p_mean) / rc->edm.p_std), b = edm_norm_cdf((log(hi) - rc->edm.p_mean) / rc->edm.p_std);
      sig[j] = j == 0 ? hi : j == M - 1 ? lo : exp(rc->edm.p_mean + rc->edm.p_std * edm_norm_ppf(a + q * (b - a)));
    }
  }
  sig[M] = 0;
}

static int choose(const float *logits, double temperature, uint64_t seed, uint64_t counter) {
  int best = 0;
  for (int v = 1; v < LM_VOCAB; v++)
    if (logits[v] > logits[best]) best = v;
  if (temperature <= 0) return best;
  double p[LM_VOCAB], s = 0;
  for (int v = 0; v < LM_VOCAB; v++) s += p[v] = exp((logits[v] - logits[best]) / temperature);
  uint32_t w[4];
  db_philox4x32(seed, counter, w);
  double u = db_u01(w[0]) * s;
  for (int v = 0; v < LM_VOCAB; v++)
    if ((u -= p[v]) <= 0) return v;
  return best;
}

/* Caches bytes [from, to) of every sequence's history at positions 0.. in every
 * block (the clean pass); returns the next free position. */
static int cache_window(db_ctx *ctx, lm_model *m, lm_decoder *dec, db_tensor tok, int *ti, const unsigned char *hist,
                        int R, int total, int from, int to) {
  for (int i = from; i < to; i++) {
    for (int r = 0; r < R; r++) ti[r] = hist[(size_t)r * total + i];
    db_upload(ctx, tok, ti);
    for (int b = 0; b < m->rc.blocks; b++) lm_decode_clean(ctx, &m->blocks[b], &dec[b], tok, i - from);
  }
  return to - from;
}

double lm_generate(db_ctx *ctx, lm_model *m, const unsigned char *prompts, int R, int P, int n_tokens,
                   lm_sample_opts o, unsigned char *out, lm_token_fn fn, void *user) {
  return lm_generate_traced(ctx, m, prompts, R, P, n_tokens, o, out, fn, NULL, user);
}

double lm_generate_traced(db_ctx *ctx, lm_model *m, const unsigned char *prompts, int R, int P, int n_tokens,
                          lm_sample_opts o, unsigned char *out, lm_token_fn fn, lm_step_fn step_fn, void *user) {
  const run_config *rc = &m->rc;
  /* The caches hold the model's context T: positions past T-1 were never trained. When a
   * sequence reaches T, the window slides: the last T/2 bytes are cached again at positions
   * 0..T/2-1 (a re-prefill every T/2 bytes, the price of a fixed context). */
  int B = rc->blocks, M = o.steps, de = rc->lm.embed_dim, V = LM_VOCAB, Tcap = rc->lm.context;
  int keep = Tcap / 2 > 0 ? Tcap / 2 : 1;
  if (R < 1 || P < 1 || n_tokens < 1) db_fail("lm_generate: %d prompts of %d bytes, %d tokens: all must be positive", R, P, n_tokens);
  if (M < 2) db_fail("lm_generate: --steps %d must be at least 2", M);
  lm_decoder *dec = db_calloc((size_t)B, sizeof *dec);
  for (int b = 0; b < B; b++) lm_decoder_alloc(ctx, &dec[b], &m->blocks[b], R, Tcap);
  db_arena *ar = db_arena_new(ctx, "LM sampling");
  db_tensor E = db_new(ar, 2, V, de, 0, 0), z = db_new(ar, 2, R, de, 0, 0), z2 = db_new(ar, 2, R, de, 0, 0);
  db_tensor D = db_new(ar, 2, R, de, 0, 0), probs = db_new(ar, 2, R, V, 0, 0), losses = db_new(ar, 1, R, 0, 0, 0);
  db_tensor coef = db_new(ar, 3, M, 4, R, 0), tok = db_alloc(ar, DB_I32, 1, (int[]){R});
  db_tensor none = db_alloc(ar, DB_I32, 1, (int[]){R});
  db_upload(ctx, E, m->E);
  int *ti = db_malloc(sizeof(int) * (size_t)R);
  for (int r = 0; r < R; r++) ti[r] = -1;
  db_upload(ctx, none, ti);
  double *sig = db_malloc(sizeof(double) * (size_t)(M + 1));
  lm_sigma_steps(rc, o, sig);
  int *owner = db_malloc(sizeof(int) * (size_t)M);
  for (int j = 0; j < M; j++) owner[j] = edm_block_of_sigma(rc->bounds, B, sig[j]);
  float *cf = db_malloc(sizeof(float) * (size_t)M * 4 * R);
  step_coefficients(rc, sig, M, R, cf);
  db_upload(ctx, coef, cf);
#define COEF(j, k) db_view(coef, ((size_t)(j) * 4 + (k)) * R, 1, (int[]){R})
  /* every sequence's bytes so far: the prompt, then what is generated */
  int total = P + n_tokens;
  unsigned char *hist = db_malloc((size_t)R * total);
  for (int r = 0; r < R; r++) memcpy(hist + (size_t)r * total, prompts + (size_t)r * P, (size_t)P);
  /* the prompts (their last T/2 bytes if they do not fit), clean, into every block's caches */
  int pos = cache_window(ctx, m, dec, tok, ti, hist, R, total, P >= Tcap ? P - keep : 0, P);
  db_finish(ctx);
  double t0 = db_now();
  float *logits = db_malloc(sizeof(float) * (size_t)R * V);
  unsigned char *row = db_malloc((size_t)R);
  for (int k = 0; k < n_tokens; k++) {
    if (pos == Tcap) pos = cache_window(ctx, m, dec, tok, ti, hist, R, total, P + k - keep, P + k);
    db_rng_normal(ctx, z, o.seed, (uint64_t)k * (((uint64_t)R * de + 3) / 4), 0.0f, (float)sig[0]);
    for (int j = 0; j < M; j++) {
      lm_block *blk = &m->blocks[owner[j]];
      lm_decode_noisy(ctx, blk, &dec[owner[j]], z, COEF(j, 0), COEF(j, 1), pos);
      if (step_fn) {
        db_download(ctx, dec[owner[j]].logits, logits);
        step_fn(user, k, j, sig[j], owner[j], logits, R);
      }
      if (j == M - 1) break;
      /* D = softmax(logits) E, then the Euler step z <- a z + b D */
      crossentropy_forward(ctx, losses, probs, dec[owner[j]].logits, none, R, V);
      gemm(ctx, 0, 0, R, de, V, 1.0f, probs, V, E, de, 0.0f, D, de);
      rowscale_add_forward(ctx, z2, COEF(j, 2), z, COEF(j, 3), D, R, de);
      db_tensor t = z;
      z = z2;
      z2 = t;
    }
    db_download(ctx, dec[owner[M - 1]].logits, logits);
    for (int r = 0; r < R; r++) {
      int c = choose(logits + (size_t)r * V, o.temperature, o.seed ^ 0x7e3a11ULL, (uint64_t)k * R + r);
      ti[r] = c;
      row[r] = (unsigned char)c;
      out[(size_t)r * n_tokens + k] = (unsigned char)c;
      hist[(size_t)r * total + P + k] = (unsigned char)c;
    }
    if (fn) fn(user, k, row, R);
    if (k + 1 == n_tokens) break;
    db_upload(ctx, tok, ti);
    for (int b = 0; b < B; b++) lm_decode_clean(ctx, &m->blocks[b], &dec[b], tok, pos);
    pos++;
  }
#undef COEF
  db_finish(ctx);
  double secs = db_now() - t0;
  free(logits); free(row); free(ti); free(hist); free(sig); free(owner); free(cf);
  db_arena_free(ar);
  for (int b = 0; b < B; b++) lm_decoder_free(&dec[b]);
  free(dec);
  return secs;
}
