#include "lm_eval.h"
#include "lm_task.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lm_passages(const text_corpus *c, int n, int len, unsigned char *out) {
  size_t N = c->n_heldout;
  if (n < 1 || len < 2) db_fail("lm_passages: %d passages of %d bytes", n, len);
  if (N < (size_t)n * (size_t)len)
    db_fail("the held-out text (%zu bytes) is too short for %d passages of %d bytes", N, n, len);
  size_t stride = (N - (size_t)len) / (size_t)n;
  for (int i = 0; i < n; i++) {
    size_t s = (size_t)i * stride;
    if (s) { /* the next line start, if one comes soon enough */
      size_t t = s;
      while (t < s + stride / 2 && t + len < N && c->heldout[t - 1] != '\n') t++;
      if (c->heldout[t - 1] == '\n') s = t;
    }
    memcpy(out + (size_t)i * len, c->heldout + s, (size_t)len);
  }
}

double lm_heldout_ce(db_ctx *ctx, lm_model *m, const text_corpus *c, int n_seq, uint64_t seed, double *per_block) {
  const run_config *rc = &m->rc;
  int B = rc->blocks, T = rc->lm.context, de = rc->lm.embed_dim;
  if (c->n_heldout < (size_t)T + 1) db_fail("the held-out text (%zu bytes) is shorter than one --context %d window", c->n_heldout, T);
  if (n_seq < B) db_fail("lm_heldout_ce: %d sequences for %d blocks", n_seq, B);
  run_config no_overlap = *rc;
  no_overlap.gamma = 0;
  int per = n_seq / B; /* sequences per block: the law's mass is equal per block (equi-probability / -difficulty) */
  lm_acts a;
  db_arena *ar = db_arena_new(ctx, "held-out CE");
  int BT = per * T;
  db_tensor y = db_new(ar, 2, BT, de, 0, 0), eps = db_new(ar, 2, BT, de, 0, 0), z = db_new(ar, 2, BT, de, 0, 0);
  db_tensor E = db_new(ar, 2, LM_VOCAB, de, 0, 0), ones = db_new(ar, 1, BT, 0, 0, 0), sig = db_new(ar, 1, BT, 0, 0, 0);
  db_tensor cin = db_new(ar, 1, BT, 0, 0, 0), cno = db_new(ar, 1, per, 0, 0, 0);
  db_tensor tok = db_alloc(ar, DB_I32, 1, (int[]){BT}), tgt = db_alloc(ar, DB_I32, 1, (int[]){2 * BT});
  db_upload(ctx, E, m->E);
  db_fill(ctx, ones, 1.0f);
  float *fs = db_malloc(sizeof(float) * (size_t)BT), *fc = db_malloc(sizeof(float) * (size_t)BT),
        *fn = db_malloc(sizeof(float) * (size_t)per), *losses = db_malloc(sizeof(float) * (size_t)2 * BT);
  int *ti = db_malloc(sizeof(int) * (size_t)BT), *tt = db_malloc(sizeof(int) * (size_t)2 * BT);
  size_t span = c->n_heldout - (size_t)T + 1;
  double total = 0;
  for (int b = 0; b < B; b++) {
    lm_acts_alloc(ctx, &a, &m->blocks[b], per, 0);
    for (int i = 0; i < per; i++) {
      uint32_t w[4];
      db_philox4x32(seed, ((uint64_t)b << 32) + (uint64_t)i, w);
      size_t start = (size_t)((uint64_t)w[0] * (uint64_t)span >> 32);
      double sigma = lm_draw_sigma(&no_overlap, b, db_u01(w[1]));
      edm_precond pc = edm_preconditioning(rc->edm, sigma);
      fn[i] = (float)pc.c_noise;
      for (int k = 0; k < T; k++) {
        int x = c->heldout[start + (size_t)k];
        ti[i * T + k] = x;
        tt[i * 2 * T + k] = x;
        tt[i * 2 * T + T + k] = -1;
        fs[i * T + k] = (float)sigma;
        fc[i * T + k] = (float)pc.c_in;
      }
    }
    db_upload(ctx, tok, ti);
    db_upload(ctx, tgt, tt);
    db_upload(ctx, sig, fs);
    db_upload(ctx, cin, fc);
    db_upload(ctx, cno, fn);
    embedding_forward(ctx, y, tok, E, BT, de, LM_VOCAB);
    db_rng_normal(ctx, eps, seed ^ 0xce11ULL, (uint64_t)b << 40, 0.0f, 1.0f);
    rowscale_add_forward(ctx, z, ones, y, sig, eps, BT, de);
    lm_inputs in = {z, cin, cno, tok, tgt};
    lm_block_forward(ctx, &m->blocks[b], &a, &in);
    db_download(ctx, a.losses, losses);
    double s = 0;
    for (int r = 0; r < 2 * BT; r++) s += losses[r];
    s /= BT;
    if (per_block) per_block[b] = s;
    total += s;
    lm_acts_free(&a);
  }
  free(fs); free(fc); free(fn); free(losses); free(ti); free(tt);
  db_arena_free(ar);
  return total / B;
}
