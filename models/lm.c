#include "lm.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6f

void lm_config_check(const lm_config *c) {
  if (c->width <= 0 || c->heads <= 0 || c->width % c->heads)
    db_fail("LM: width %d must be a positive multiple of heads %d", c->width, c->heads);
  int hs = c->width / c->heads;
  if (hs % 2 || hs > 128) db_fail("LM: head size %d (width %d / heads %d) must be even and at most 128", hs, c->width, c->heads);
  if (c->depth <= 0) db_fail("LM: a block needs at least one layer, got %d", c->depth);
  if (c->context < 1) db_fail("LM: context %d must be positive", c->context);
  if (c->embed_dim <= 0) db_fail("LM: embedding width %d must be positive", c->embed_dim);
  if (c->freq_dim <= 0 || c->freq_dim % 2) db_fail("LM: freq_dim %d must be positive and even", c->freq_dim);
}

static int add2(param_set *ps, const char *name, int d0, int d1, int decay) {
  int shape[2] = {d0, d1};
  return param_add(ps, name, d1 ? 2 : 1, shape, decay);
}

void lm_block_create(db_ctx *ctx, lm_block *b, lm_config cfg, const char *name) {
  lm_config_check(&cfg);
  memset(b, 0, sizeof *b);
  b->cfg = cfg;
  int C = cfg.width;
  b->lcfg = (lm_layer_config){C, cfg.heads, lm_hidden_width(C), cfg.rope_base};
  param_set *ps = &b->ps;
  param_set_init(ps, ctx, name);
  b->i_in_w = add2(ps, "z_embedder.weight", C, cfg.embed_dim, 1);
  b->i_in_b = add2(ps, "z_embedder.bias", C, 0, 0);
  b->i_tok = add2(ps, "tok_embedder.weight", LM_VOCAB, C, 0);
  b->i_clean = add2(ps, "clean_embedding", C, 0, 0);
  b->i_t_w1 = add2(ps, "t_embedder.mlp.0.weight", C, cfg.freq_dim, 1);
  b->i_t_b1 = add2(ps, "t_embedder.mlp.0.bias", C, 0, 0);
  b->i_t_w2 = add2(ps, "t_embedder.mlp.2.weight", C, C, 1);
  b->i_t_b2 = add2(ps, "t_embedder.mlp.2.bias", C, 0, 0);
  b->i_layer = db_calloc((size_t)cfg.depth, sizeof *b->i_layer);
  for (int l = 0; l < cfg.depth; l++)
    for (int k = 0; k < LM_NPARAMS; k++) {
      int nd, shape[2];
      char pname[128];
      lm_param_shape(b->lcfg, k, &nd, shape);
      snprintf(pname, sizeof pname, "layers.%d.%s", l, lm_param_names[k]);
      int idx = param_add(ps, pname, nd, shape, nd == 2);
      if (k == 0) b->i_layer[l] = idx;
    }
  b->i_f_ada_w = add2(ps, "final_layer.adaLN.weight", 2 * C, C, 1);
  b->i_f_ada_b = add2(ps, "final_layer.adaLN.bias", 2 * C, 0, 0);
  b->i_out_w = add2(ps, "final_layer.linear.weight", LM_VOCAB, C, 1);
  b->i_out_b = add2(ps, "final_layer.linear.bias", LM_VOCAB, 0, 0);
  param_set_commit(ps);
}

void lm_block_destroy(lm_block *b) {
  param_set_free(&b->ps);
  free(b->i_layer);
  memset(b, 0, sizeof *b);
}

void lm_block_init(db_ctx *ctx, lm_block *b, uint64_t seed, uint64_t stream) {
  param_set *ps = &b->ps;
  for (int i = 0; i < ps->n; i++) {
    db_tensor t = ps->p[i];
    uint64_t off = ((stream << 12) + (uint64_t)i) << 36;
    if (t.ndim == 1 || strstr(ps->names[i], "adaLN") || i == b->i_out_w) db_zero(ctx, t);
    else if (i == b->i_tok || i == b->i_t_w1 || i == b->i_t_w2) db_rng_normal(ctx, t, seed, off, 0.0f, 0.02f);
    else {
      float bound = sqrtf(6.0f / (float)(t.shape[0] + t.shape[1]));
      db_rng_uniform(ctx, t, seed, off, -bound, bound);
    }
  }
}

static lm_layer_params layer_view(const db_tensor *set, int first) {
  lm_layer_params lp;
  for (int k = 0; k < LM_NPARAMS; k++) lp.t[k] = set[first + k];
  return lp;
}

void lm_acts_alloc(db_ctx *ctx, lm_acts *a, const lm_block *b, int B, int training) {
  memset(a, 0, sizeof *a);
  const lm_config *c = &b->cfg;
  int C = c->width, T = c->context, L = c->depth, V = LM_VOCAB, N2 = 2 * B * T;
  a->B = B;
  a->T = T;
  a->arena = db_arena_new(ctx, "LM activations");
  db_arena *ar = a->arena;
  a->zc = db_new(ar, 2, B * T, c->embed_dim, 0, 0);
  a->hn = db_new(ar, 2, B * T, C, 0, 0);
  a->hc = db_new(ar, 2, B * T, C, 0, 0);
  a->h = db_calloc((size_t)L + 1, sizeof *a->h);
  a->layer = db_calloc((size_t)L, sizeof *a->layer);
  for (int l = 0; l <= L; l++) a->h[l] = db_new(ar, 2, N2, C, 0, 0);
  for (int l = 0; l < L; l++) lm_layer_alloc_acts(ar, b->lcfg, 2 * B, T, &a->layer[l]);
  lm_workspace_alloc(ar, b->lcfg, 2 * B, T, &a->ws);
  a->tfreq = db_new(ar, 2, B, c->freq_dim, 0, 0);
  a->th = db_new(ar, 2, B, C, 0, 0);
  a->ths = db_new(ar, 2, B, C, 0, 0);
  a->temb = db_new(ar, 2, B, C, 0, 0);
  a->c = db_new(ar, 2, 2 * B, C, 0, 0);
  a->fcs = db_new(ar, 2, 2 * B, C, 0, 0);
  a->fmod = db_new(ar, 2, 2 * B, 2 * C, 0, 0);
  a->frstd = db_new(ar, 1, N2, 0, 0, 0);
  a->logits = db_new(ar, 2, N2, V, 0, 0);
  a->probs = db_new(ar, 2, N2, V, 0, 0);
  a->losses = db_new(ar, 1, N2, 0, 0, 0);
  if (!training) return;
  a->dlosses = db_new(ar, 1, N2, 0, 0, 0);
  a->dlogits = db_new(ar, 2, N2, V, 0, 0);
  a->dh0 = db_new(ar, 2, N2, C, 0, 0);
  a->dh1 = db_new(ar, 2, N2, C, 0, 0);
  a->dc = db_new(ar, 2, 2 * B, C, 0, 0);
  a->dfcs = db_new(ar, 2, 2 * B, C, 0, 0);
  a->dfmod = db_new(ar, 2, 2 * B, 2 * C, 0, 0);
  a->dtemb = db_new(ar, 2, B, C, 0, 0);
  a->dths = db_new(ar, 2, B, C, 0, 0);
  a->dth = db_new(ar, 2, B, C, 0, 0);
  a->dhn = db_new(ar, 2, B * T, C, 0, 0);
  a->dhc = db_new(ar, 2, B * T, C, 0, 0);
}

void lm_acts_free(lm_acts *a) {
  db_arena_free(a->arena);
  free(a->h);
  free(a->layer);
  memset(a, 0, sizeof *a);
}

static void check_inputs(const lm_block *b, const lm_acts *a, const lm_inputs *in, const char *op) {
  size_t BT = (size_t)a->B * a->T;
  db_check_numel(in->z, BT * b->cfg.embed_dim, op, "z");
  db_check_numel(in->c_in, BT, op, "c_in");
  db_check_numel(in->c_noise, (size_t)a->B, op, "c_noise");
  db_check_numel(in->tokens, BT, op, "tokens");
  db_check_numel(in->targets, 2 * BT, op, "targets");
}

/* h, rows of the (2B,T,C) stream -> final AdaLN -> logits (recomputed in the backward) */
static void final_norm_modulate(db_ctx *ctx, lm_acts *a, db_tensor hL, int C) {
  int S = 2 * a->B, T = a->T;
  rmsnorm_forward(ctx, a->ws.n, a->frstd, hL, S * T, C, EPS);
  modulate_forward(ctx, a->ws.m, a->ws.n, a->fmod, 0, C, S, T, C, 2 * C);
}

void lm_block_forward(db_ctx *ctx, lm_block *b, lm_acts *a, const lm_inputs *in) {
  check_inputs(b, a, in, "lm_block_forward");
  const lm_config *c = &b->cfg;
  db_tensor *p = b->ps.p;
  int B = a->B, T = a->T, C = c->width, L = c->depth, BT = B * T, V = LM_VOCAB;
  /* [noisy | clean] tokens */
  rowscale_add_forward(ctx, a->zc, DB_NULL, DB_NULL, in->c_in, in->z, BT, c->embed_dim);
  linear_forward(ctx, a->hn, a->zc, p[b->i_in_w], p[b->i_in_b], BT, c->embed_dim, C);
  embedding_forward(ctx, a->hc, in->tokens, p[b->i_tok], BT, C, V);
  concat_rows_forward(ctx, a->h[0], a->hn, a->hc, B, T, T, C, 0, 0);
  /* conditioning rows [σ embedding | clean embedding] per sequence */
  timestep_embedding_forward(ctx, a->tfreq, in->c_noise, B, c->freq_dim, 10000.0f);
  linear_forward(ctx, a->th, a->tfreq, p[b->i_t_w1], p[b->i_t_b1], B, c->freq_dim, C);
  silu_forward(ctx, a->ths, a->th, (size_t)B * C);
  linear_forward(ctx, a->temb, a->ths, p[b->i_t_w2], p[b->i_t_b2], B, C, C);
  concat_rows_forward(ctx, a->c, a->temb, p[b->i_clean], B, 1, 1, C, 0, 1);
  for (int l = 0; l < L; l++) {
    lm_layer_params lp = layer_view(p, b->i_layer[l]);
    lm_layer_forward(ctx, a->h[l + 1], &a->layer[l], a->h[l], a->c, &lp, &a->ws, b->lcfg);
  }
  /* final AdaLN layer and logits on every row; the clean rows' targets are -1 */
  silu_forward(ctx, a->fcs, a->c, (size_t)2 * B * C);
  linear_forward(ctx, a->fmod, a->fcs, p[b->i_f_ada_w], p[b->i_f_ada_b], 2 * B, C, 2 * C);
  final_norm_modulate(ctx, a, a->h[L], C);
  linear_forward(ctx, a->logits, a->ws.m, p[b->i_out_w], p[b->i_out_b], 2 * BT, C, V);
  crossentropy_forward(ctx, a->losses, a->probs, a->logits, in->targets, 2 * BT, V);
}

void lm_block_backward(db_ctx *ctx, lm_block *b, lm_acts *a, const lm_inputs *in) {
  if (!a->dlogits.mem) db_fail("lm_block_backward: activations were allocated without training buffers");
  check_inputs(b, a, in, "lm_block_backward");
  const lm_config *c = &b->cfg;
  db_tensor *p = b->ps.p, *g = b->ps.g;
  int B = a->B, T = a->T, C = c->width, L = c->depth, BT = B * T, V = LM_VOCAB;
  db_zero(ctx, a->dlogits);
  crossentropy_backward(ctx, a->dlogits, a->dlosses, a->probs, in->targets, 2 * BT, V);
  final_norm_modulate(ctx, a, a->h[L], C);
  linear_backward(ctx, a->ws.dm, g[b->i_out_w], g[b->i_out_b], a->dlogits, a->ws.m, p[b->i_out_w], 2 * BT, C, V,
                  LINEAR_DINP_SET);
  db_zero(ctx, a->dfmod);
  db_tensor dn = a->ws.dbranch;
  db_zero(ctx, dn);
  modulate_backward(ctx, dn, a->dfmod, a->ws.dm, a->ws.n, a->fmod, 0, C, 2 * B, T, C, 2 * C);
  db_tensor dh = a->dh0, dprev = a->dh1;
  db_zero(ctx, dh);
  rmsnorm_backward(ctx, dh, dn, a->h[L], a->frstd, 2 * BT, C);
  db_zero(ctx, a->dc);
  linear_backward(ctx, a->dfcs, g[b->i_f_ada_w], g[b->i_f_ada_b], a->dfmod, a->fcs, p[b->i_f_ada_w], 2 * B, C, 2 * C,
                  LINEAR_DINP_SET);
  silu_backward(ctx, a->dc, a->dfcs, a->c, (size_t)2 * B * C);
  for (int l = L - 1; l >= 0; l--) {
    lm_layer_params lp = layer_view(p, b->i_layer[l]), lg = layer_view(g, b->i_layer[l]);
    db_zero(ctx, dprev);
    lm_layer_backward(ctx, dprev, a->dc, &lg, dh, &a->layer[l], a->h[l], a->c, &lp, &a->ws, b->lcfg);
    db_tensor t = dh;
    dh = dprev;
    dprev = t;
  }
  /* inputs: the noisy projection and the token embedding (z and x are data) */
  db_zero(ctx, a->dhn);
  db_zero(ctx, a->dhc);
  concat_rows_backward(ctx, a->dhn, a->dhc, dh, B, T, T, C, 0, 0);
  linear_backward(ctx, DB_NULL, g[b->i_in_w], g[b->i_in_b], a->dhn, a->zc, p[b->i_in_w], BT, c->embed_dim, C,
                  LINEAR_DINP_SET);
  embedding_backward(ctx, g[b->i_tok], a->dhc, in->tokens, BT, C, V);
  /* conditioning: the σ rows go back through the noise MLP, the clean rows to the clean embedding */
  db_zero(ctx, a->dtemb);
  concat_rows_backward(ctx, a->dtemb, g[b->i_clean], a->dc, B, 1, 1, C, 0, 1);
  linear_backward(ctx, a->dths, g[b->i_t_w2], g[b->i_t_b2], a->dtemb, a->ths, p[b->i_t_w2], B, C, C, LINEAR_DINP_SET);
  db_zero(ctx, a->dth);
  silu_backward(ctx, a->dth, a->dths, a->th, (size_t)B * C);
  linear_backward(ctx, DB_NULL, g[b->i_t_w1], g[b->i_t_b1], a->dth, a->tfreq, p[b->i_t_w1], B, c->freq_dim, C,
                  LINEAR_DINP_SET);
}

/* ---------------------------------------------------------------- generation */
void lm_decoder_alloc(db_ctx *ctx, lm_decoder *d, const lm_block *b, int R, int Tcap) {
  memset(d, 0, sizeof *d);
  const lm_config *c = &b->cfg;
  int C = c->width;
  d->R = R;
  d->Tcap = Tcap;
  d->arena = db_arena_new(ctx, "LM decoder");
  db_arena *ar = d->arena;
  d->cache = db_calloc((size_t)c->depth, sizeof *d->cache);
  for (int l = 0; l < c->depth; l++) d->cache[l] = db_new(ar, 3, R, Tcap, 3 * C, 0);
  lm_decode_ws_alloc(ar, b->lcfg, R, &d->ws);
  d->x0 = db_new(ar, 2, R, C, 0, 0);
  d->x1 = db_new(ar, 2, R, C, 0, 0);
  d->zc = db_new(ar, 2, R, c->embed_dim, 0, 0);
  d->tfreq = db_new(ar, 2, R, c->freq_dim, 0, 0);
  d->th = db_new(ar, 2, R, C, 0, 0);
  d->ths = db_new(ar, 2, R, C, 0, 0);
  d->temb = db_new(ar, 2, R, C, 0, 0);
  d->fcs = db_new(ar, 2, R, C, 0, 0);
  d->fmod = db_new(ar, 2, R, 2 * C, 0, 0);
  d->fn = db_new(ar, 2, R, C, 0, 0);
  d->fm = db_new(ar, 2, R, C, 0, 0);
  d->logits = db_new(ar, 2, R, LM_VOCAB, 0, 0);
}

void lm_decoder_free(lm_decoder *d) {
  db_arena_free(d->arena);
  free(d->cache);
  memset(d, 0, sizeof *d);
}

/* the layers on x0 with conditioning c (Rc rows); returns the stream holding the output */
static db_tensor decode_layers(db_ctx *ctx, lm_block *b, lm_decoder *d, db_tensor c, int Rc, int pos) {
  db_tensor x = d->x0, y = d->x1;
  for (int l = 0; l < b->cfg.depth; l++) {
    lm_layer_params lp = layer_view(b->ps.p, b->i_layer[l]);
    lm_layer_decode(ctx, y, x, c, Rc, d->cache[l], d->Tcap, pos, &lp, &d->ws, b->lcfg);
    db_tensor t = x;
    x = y;
    y = t;
  }
  return x;
}

void lm_decode_clean(db_ctx *ctx, lm_block *b, lm_decoder *d, db_tensor tokens, int pos) {
  db_check_numel(tokens, (size_t)d->R, "lm_decode_clean", "tokens");
  embedding_forward(ctx, d->x0, tokens, b->ps.p[b->i_tok], d->R, b->cfg.width, LM_VOCAB);
  int one[2] = {1, b->cfg.width};
  decode_layers(ctx, b, d, db_view(b->ps.p[b->i_clean], 0, 2, one), 1, pos);
}

void lm_decode_noisy(db_ctx *ctx, lm_block *b, lm_decoder *d, db_tensor z, db_tensor c_in, db_tensor c_noise,
                     int pos) {
  const lm_config *c = &b->cfg;
  db_tensor *p = b->ps.p;
  int R = d->R, C = c->width;
  db_check_numel(z, (size_t)R * c->embed_dim, "lm_decode_noisy", "z");
  rowscale_add_forward(ctx, d->zc, DB_NULL, DB_NULL, c_in, z, R, c->embed_dim);
  linear_forward(ctx, d->x0, d->zc, p[b->i_in_w], p[b->i_in_b], R, c->embed_dim, C);
  timestep_embedding_forward(ctx, d->tfreq, c_noise, R, c->freq_dim, 10000.0f);
  linear_forward(ctx, d->th, d->tfreq, p[b->i_t_w1], p[b->i_t_b1], R, c->freq_dim, C);
  silu_forward(ctx, d->ths, d->th, (size_t)R * C);
  linear_forward(ctx, d->temb, d->ths, p[b->i_t_w2], p[b->i_t_b2], R, C, C);
  db_tensor h = decode_layers(ctx, b, d, d->temb, R, pos);
  silu_forward(ctx, d->fcs, d->temb, (size_t)R * C);
  linear_forward(ctx, d->fmod, d->fcs, p[b->i_f_ada_w], p[b->i_f_ada_b], R, C, 2 * C);
  rmsnorm_forward(ctx, d->fn, d->ws.rstd, h, R, C, EPS);
  modulate_forward(ctx, d->fm, d->fn, d->fmod, 0, C, R, 1, C, 2 * C);
  linear_forward(ctx, d->logits, d->fm, p[b->i_out_w], p[b->i_out_b], R, C, LM_VOCAB);
}
