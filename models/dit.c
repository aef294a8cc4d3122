#include "dit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dit_config_check(const dit_config *c) {
  if (c->in_ch <= 0 || c->img_h <= 0 || c->img_w <= 0) db_fail("DiT: image size %dx%dx%d is not positive", c->in_ch, c->img_h, c->img_w);
  if (c->patch <= 0 || c->img_h % c->patch || c->img_w % c->patch)
    db_fail("DiT: patch %d must divide the image size %dx%d", c->patch, c->img_h, c->img_w);
  if (c->width <= 0 || c->width % 4) db_fail("DiT: width %d must be a positive multiple of 4 (2-D sin-cos positions)", c->width);
  if (c->heads <= 0 || c->width % c->heads) db_fail("DiT: width %d must be a multiple of heads %d", c->width, c->heads);
  if (c->depth <= 0) db_fail("DiT: a block needs at least one layer, got %d", c->depth);
  if (c->n_classes <= 0) db_fail("DiT: n_classes must be positive, got %d", c->n_classes);
  if (c->freq_dim <= 0 || c->freq_dim % 2) db_fail("DiT: freq_dim %d must be positive and even", c->freq_dim);
}

static int add2(param_set *ps, const char *name, int d0, int d1, int decay) {
  int shape[2] = {d0, d1};
  return param_add(ps, name, d1 ? 2 : 1, shape, decay);
}

/* DiT's get_2d_sincos_pos_embed: half the channels encode the column, half the
 * row, each as [sin(pos w_k), cos(pos w_k)], w_k = 10000^(-k/(C/4)). */
void dit_sincos_2d(float *out, int gh, int gw, int C) {
  int q = C / 4;
  for (int i = 0; i < gh; i++)
    for (int j = 0; j < gw; j++) {
      float *e = out + ((size_t)i * gw + j) * C;
      for (int k = 0; k < q; k++) {
        double w = pow(10000.0, -(double)k / q);
        e[k] = (float)sin(j * w);
        e[q + k] = (float)cos(j * w);
        e[2 * q + k] = (float)sin(i * w);
        e[3 * q + k] = (float)cos(i * w);
      }
    }
}

void dit_block_create(db_ctx *ctx, dit_block *b, dit_config cfg, const char *name) {
  dit_config_check(&cfg);
  memset(b, 0, sizeof *b);
  b->cfg = cfg;
  b->lcfg = (dit_layer_config){cfg.width, cfg.heads};
  int C = cfg.width, p = cfg.patch;
  b->T = (cfg.img_h / p) * (cfg.img_w / p);
  b->P = p * p * cfg.in_ch;
  param_set *ps = &b->ps;
  param_set_init(ps, ctx, name);
  b->i_x_w = add2(ps, "x_embedder.proj.weight", C, b->P, 1);
  b->i_x_b = add2(ps, "x_embedder.proj.bias", C, 0, 0);
  b->i_t_w1 = add2(ps, "t_embedder.mlp.0.weight", C, cfg.freq_dim, 1);
  b->i_t_b1 = add2(ps, "t_embedder.mlp.0.bias", C, 0, 0);
  b->i_t_w2 = add2(ps, "t_embedder.mlp.2.weight", C, C, 1);
  b->i_t_b2 = add2(ps, "t_embedder.mlp.2.bias", C, 0, 0);
  b->i_y = add2(ps, "y_embedder.embedding_table.weight", cfg.n_classes + 1, C, 0);
  b->i_layer = db_calloc((size_t)cfg.depth, sizeof *b->i_layer);
  for (int l = 0; l < cfg.depth; l++) {
    for (int k = 0; k < DIT_NPARAMS; k++) {
      int nd, shape[2];
      char pname[128];
      dit_param_shape(b->lcfg, k, &nd, shape);
      snprintf(pname, sizeof pname, "blocks.%d.%s", l, dit_param_names[k]);
      int idx = param_add(ps, pname, nd, shape, nd == 2);
      if (k == 0) b->i_layer[l] = idx;
    }
  }
  b->i_f_ada_w = add2(ps, "final_layer.adaLN_modulation.1.weight", 2 * C, C, 1);
  b->i_f_ada_b = add2(ps, "final_layer.adaLN_modulation.1.bias", 2 * C, 0, 0);
  b->i_f_w = add2(ps, "final_layer.linear.weight", b->P, C, 1);
  b->i_f_b = add2(ps, "final_layer.linear.bias", b->P, 0, 0);
  param_set_commit(ps);
  b->fixed = db_arena_new(ctx, "pos_embed");
  b->pos = db_new(b->fixed, 2, b->T, C, 0, 0);
  float *pos = db_malloc(sizeof(float) * (size_t)b->T * C);
  dit_sincos_2d(pos, cfg.img_h / p, cfg.img_w / p, C);
  db_upload(ctx, b->pos, pos);
  free(pos);
}

void dit_block_destroy(dit_block *b) {
  param_set_free(&b->ps);
  db_arena_free(b->fixed);
  free(b->i_layer);
  memset(b, 0, sizeof *b);
}

/* docs/method.md §4: Xavier-uniform linears, N(0, 0.02²) for the noise MLP and the
 * class table (as DiT), zero biases, zero modulation and final linear. Each
 * tensor draws from its own Philox stream, so init does not depend on order. */
void dit_block_init(db_ctx *ctx, dit_block *b, uint64_t seed, uint64_t stream) {
  param_set *ps = &b->ps;
  for (int i = 0; i < ps->n; i++) {
    db_tensor t = ps->p[i];
    const char *nm = ps->names[i];
    uint64_t off = ((stream << 12) + (uint64_t)i) << 36;
    int zero = t.ndim == 1 || strstr(nm, "adaLN") || i == b->i_f_w;
    if (zero) db_zero(ctx, t);
    else if (i == b->i_t_w1 || i == b->i_t_w2 || i == b->i_y) db_rng_normal(ctx, t, seed, off, 0.0f, 0.02f);
    else {
      float bound = sqrtf(6.0f / (float)(t.shape[0] + t.shape[1]));
      db_rng_uniform(ctx, t, seed, off, -bound, bound);
    }
  }
}

static dit_layer_params layer_view(const db_tensor *set, int first) {
  dit_layer_params lp;
  for (int k = 0; k < DIT_NPARAMS; k++) lp.t[k] = set[first + k];
  return lp;
}

void dit_acts_alloc(db_ctx *ctx, dit_acts *a, const dit_block *b, int B, int training) {
  memset(a, 0, sizeof *a);
  const dit_config *c = &b->cfg;
  int C = c->width, T = b->T, P = b->P, L = c->depth;
  a->B = B;
  a->arena = db_arena_new(ctx, "activations");
  db_arena *ar = a->arena;
  a->zin = db_new(ar, 4, B, c->in_ch, c->img_h, c->img_w);
  a->tokens = db_new(ar, 3, B, T, P, 0);
  a->h = db_calloc((size_t)L + 1, sizeof *a->h);
  a->layer = db_calloc((size_t)L, sizeof *a->layer);
  for (int l = 0; l <= L; l++) a->h[l] = db_new(ar, 3, B, T, C, 0);
  for (int l = 0; l < L; l++) dit_layer_alloc_acts(ar, b->lcfg, B, T, &a->layer[l]);
  dit_workspace_alloc(ar, b->lcfg, B, T, &a->ws);
  a->tfreq = db_new(ar, 2, B, c->freq_dim, 0, 0);
  a->th = db_new(ar, 2, B, C, 0, 0);
  a->ths = db_new(ar, 2, B, C, 0, 0);
  a->temb = db_new(ar, 2, B, C, 0, 0);
  a->yemb = db_new(ar, 2, B, C, 0, 0);
  a->c = db_new(ar, 2, B, C, 0, 0);
  a->fcs = db_new(ar, 2, B, C, 0, 0);
  a->fmod = db_new(ar, 2, B, 2 * C, 0, 0);
  a->fmean = db_new(ar, 1, B * T, 0, 0, 0);
  a->frstd = db_new(ar, 1, B * T, 0, 0, 0);
  a->ftok = db_new(ar, 3, B, T, P, 0);
  a->F = db_new(ar, 4, B, c->in_ch, c->img_h, c->img_w);
  a->D = db_new(ar, 4, B, c->in_ch, c->img_h, c->img_w);
  if (!training) return;
  a->dF = db_new(ar, 4, B, c->in_ch, c->img_h, c->img_w);
  a->dftok = db_new(ar, 3, B, T, P, 0);
  a->dh0 = db_new(ar, 3, B, T, C, 0);
  a->dh1 = db_new(ar, 3, B, T, C, 0);
  a->dc = db_new(ar, 2, B, C, 0, 0);
  a->dfcs = db_new(ar, 2, B, C, 0, 0);
  a->dfmod = db_new(ar, 2, B, 2 * C, 0, 0);
  a->dths = db_new(ar, 2, B, C, 0, 0);
  a->dth = db_new(ar, 2, B, C, 0, 0);
}

void dit_acts_free(dit_acts *a) {
  db_arena_free(a->arena);
  free(a->h);
  free(a->layer);
  memset(a, 0, sizeof *a);
}

static void check_inputs(const dit_block *b, const dit_acts *a, const dit_inputs *in) {
  int B = a->B;
  db_check_numel(in->z, (size_t)B * b->cfg.in_ch * b->cfg.img_h * b->cfg.img_w, "dit_block_forward", "z");
  db_check_numel(in->labels, (size_t)B, "dit_block_forward", "labels");
}

void dit_block_forward(db_ctx *ctx, dit_block *b, dit_acts *a, const dit_inputs *in) {
  check_inputs(b, a, in);
  const dit_config *c = &b->cfg;
  db_tensor *p = b->ps.p;
  int B = a->B, C = c->width, T = b->T, P = b->P, N = B * T, L = c->depth;
  size_t img = (size_t)c->in_ch * c->img_h * c->img_w;
  /* input: c_in z -> patches -> linear -> + positions */
  rowscale_add_forward(ctx, a->zin, DB_NULL, DB_NULL, in->c_in, in->z, B, (int)img);
  patchify_forward(ctx, a->tokens, a->zin, B, c->in_ch, c->img_h, c->img_w, c->patch);
  linear_forward(ctx, a->h[0], a->tokens, p[b->i_x_w], p[b->i_x_b], N, P, C);
  add_broadcast_forward(ctx, a->h[0], a->h[0], b->pos, (size_t)N * C, (size_t)T * C);
  /* conditioning c = MLP(sinusoid(c_noise)) + class embedding */
  timestep_embedding_forward(ctx, a->tfreq, in->c_noise, B, c->freq_dim, 10000.0f);
  linear_forward(ctx, a->th, a->tfreq, p[b->i_t_w1], p[b->i_t_b1], B, c->freq_dim, C);
  silu_forward(ctx, a->ths, a->th, (size_t)B * C);
  linear_forward(ctx, a->temb, a->ths, p[b->i_t_w2], p[b->i_t_b2], B, C, C);
  embedding_forward(ctx, a->yemb, in->labels, p[b->i_y], B, C, c->n_classes + 1);
  add_broadcast_forward(ctx, a->c, a->temb, a->yemb, (size_t)B * C, (size_t)B * C);
  /* the DiT layers */
  for (int l = 0; l < L; l++) {
    dit_layer_params lp = layer_view(p, b->i_layer[l]);
    dit_layer_forward(ctx, a->h[l + 1], &a->layer[l], a->h[l], a->c, &lp, &a->ws, b->lcfg);
  }
  /* final AdaLN layer -> tokens -> image; LN + modulation in scratch (recomputed in backward) */
  db_tensor fm = dit_ws_slice(a->ws.big1, 1, 1, B, T, C);
  silu_forward(ctx, a->fcs, a->c, (size_t)B * C);
  linear_forward(ctx, a->fmod, a->fcs, p[b->i_f_ada_w], p[b->i_f_ada_b], B, C, 2 * C);
  layernorm_modulate_forward(ctx, fm, a->fmean, a->frstd, a->h[L], a->fmod, 0, C, B, T, C, 2 * C, 1e-6f);
  linear_forward(ctx, a->ftok, fm, p[b->i_f_w], p[b->i_f_b], N, C, P);
  unpatchify_forward(ctx, a->F, a->ftok, B, c->in_ch, c->img_h, c->img_w, c->patch);
  /* EDM: D = c_skip z + c_out F */
  rowscale_add_forward(ctx, a->D, in->c_skip, in->z, in->c_out, a->F, B, (int)img);
}

void dit_block_backward(db_ctx *ctx, dit_block *b, dit_acts *a, const dit_inputs *in, db_tensor dD) {
  if (!a->dF.mem) db_fail("dit_block_backward: activations were allocated without training buffers");
  const dit_config *c = &b->cfg;
  db_tensor *p = b->ps.p, *g = b->ps.g;
  int B = a->B, C = c->width, T = b->T, P = b->P, N = B * T, L = c->depth;
  int img = c->in_ch * c->img_h * c->img_w;
  db_tensor fm = dit_ws_slice(a->ws.big1, 1, 1, B, T, C), dfm = dit_ws_slice(a->ws.big1, 2, 1, B, T, C);
  /* D = c_skip z + c_out F (z is data: no gradient) */
  db_zero(ctx, a->dF);
  rowscale_add_backward(ctx, DB_NULL, a->dF, dD, in->c_skip, in->c_out, B, img);
  db_zero(ctx, a->dftok);
  unpatchify_backward(ctx, a->dftok, a->dF, B, c->in_ch, c->img_h, c->img_w, c->patch);
  /* final layer, its LN and modulation recomputed */
  layernorm_modulate_forward(ctx, fm, a->fmean, a->frstd, a->h[L], a->fmod, 0, C, B, T, C, 2 * C, 1e-6f);
  linear_backward(ctx, dfm, g[b->i_f_w], g[b->i_f_b], a->dftok, fm, p[b->i_f_w], N, C, P, LINEAR_DINP_SET);
  db_zero(ctx, a->dfmod);
  db_tensor dh = a->dh0, dprev = a->dh1;
  db_zero(ctx, dh);
  layernorm_modulate_backward(ctx, dh, a->dfmod, dfm, a->h[L], a->fmean, a->frstd, a->fmod, 0, C, B, T, C, 2 * C);
  db_zero(ctx, a->dc);
  linear_backward(ctx, a->dfcs, g[b->i_f_ada_w], g[b->i_f_ada_b], a->dfmod, a->fcs, p[b->i_f_ada_w], B, C, 2 * C,
                  LINEAR_DINP_SET);
  silu_backward(ctx, a->dc, a->dfcs, a->c, (size_t)B * C);
  /* the layers, in reverse; dc accumulates every layer's conditioning gradient */
  for (int l = L - 1; l >= 0; l--) {
    dit_layer_params lp = layer_view(p, b->i_layer[l]), lg = layer_view(g, b->i_layer[l]);
    db_zero(ctx, dprev);
    dit_layer_backward(ctx, dprev, a->dc, &lg, dh, &a->layer[l], a->h[l], a->c, &lp, &a->ws, b->lcfg); /* consumes dh */
    db_tensor t = dh;
    dh = dprev;
    dprev = t;
  }
  /* patch embedding (positions are fixed, the input is data) */
  linear_backward(ctx, DB_NULL, g[b->i_x_w], g[b->i_x_b], dh, a->tokens, p[b->i_x_w], N, P, C, LINEAR_DINP_SET);
  /* c = temb + yemb: both receive dc */
  embedding_backward(ctx, g[b->i_y], a->dc, in->labels, B, C, c->n_classes + 1);
  linear_backward(ctx, a->dths, g[b->i_t_w2], g[b->i_t_b2], a->dc, a->ths, p[b->i_t_w2], B, C, C, LINEAR_DINP_SET);
  db_zero(ctx, a->dth);
  silu_backward(ctx, a->dth, a->dths, a->th, (size_t)B * C);
  linear_backward(ctx, DB_NULL, g[b->i_t_w1], g[b->i_t_b1], a->dth, a->tfreq, p[b->i_t_w1], B, c->freq_dim, C,
                  LINEAR_DINP_SET);
}
