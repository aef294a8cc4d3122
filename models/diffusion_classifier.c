/* The block-wise diffusion classifier's block (diffusion_classifier.h). */
#include "diffusion_classifier.h"
#include "dit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dcls_config_check(const dcls_config *c) {
  if (c->img_h <= 0 || c->img_w <= 0) db_fail("diffusion classifier: image size %dx%d is not positive", c->img_h, c->img_w);
  if (c->patch <= 0 || c->img_h % c->patch || c->img_w % c->patch)
    db_fail("diffusion classifier: patch %d must divide the image size %dx%d", c->patch, c->img_h, c->img_w);
  if (c->window < c->patch || (c->window - c->patch) % 2 || c->window > 64)
    db_fail("diffusion classifier: window %d must be patch %d plus an even number, at most 64", c->window, c->patch);
  if (c->width <= 0 || c->width % 4) db_fail("diffusion classifier: width %d must be a positive multiple of 4", c->width);
  if (c->heads <= 0 || c->width % c->heads)
    db_fail("diffusion classifier: width %d must be a multiple of heads %d", c->width, c->heads);
  if (c->depth <= 0) db_fail("diffusion classifier: a block needs at least one layer, got %d", c->depth);
  if (c->n_classes <= 0 || c->n_classes > c->width)
    db_fail("diffusion classifier: %d classes need 1..width (%d) orthonormal class vectors", c->n_classes, c->width);
  if (c->freq_dim <= 0 || c->freq_dim % 2) db_fail("diffusion classifier: freq_dim %d must be positive and even", c->freq_dim);
}

static int add2(param_set *ps, const char *name, int d0, int d1, int decay) {
  int shape[2] = {d0, d1};
  return param_add(ps, name, d1 ? 2 : 1, shape, decay);
}

void dcls_block_create(db_ctx *ctx, dcls_block *b, dcls_config cfg, const char *name) {
  dcls_config_check(&cfg);
  memset(b, 0, sizeof *b);
  b->cfg = cfg;
  b->lcfg = (dit_layer_config){cfg.width, cfg.heads};
  int C = cfg.width, p = cfg.patch, K = cfg.n_classes;
  b->T = (cfg.img_h / p) * (cfg.img_w / p);
  b->P = cfg.window * cfg.window;
  param_set *ps = &b->ps;
  param_set_init(ps, ctx, name);
  b->i_x_w = add2(ps, "x_embedder.proj.weight", C, b->P, 1);
  b->i_x_b = add2(ps, "x_embedder.proj.bias", C, 0, 0);
  b->i_t_w1 = add2(ps, "t_embedder.mlp.0.weight", C, cfg.freq_dim, 1);
  b->i_t_b1 = add2(ps, "t_embedder.mlp.0.bias", C, 0, 0);
  b->i_t_w2 = add2(ps, "t_embedder.mlp.2.weight", C, C, 1);
  b->i_t_b2 = add2(ps, "t_embedder.mlp.2.bias", C, 0, 0);
  b->i_layer = db_calloc((size_t)cfg.depth, sizeof *b->i_layer);
  for (int l = 0; l < cfg.depth; l++)
    for (int k = 0; k < DIT_NPARAMS; k++) {
      int nd, shape[2];
      char pname[128];
      dit_param_shape(b->lcfg, k, &nd, shape);
      snprintf(pname, sizeof pname, "blocks.%d.%s", l, dit_param_names[k]);
      int idx = param_add(ps, pname, nd, shape, nd == 2);
      if (k == 0) b->i_layer[l] = idx;
    }
  b->i_f_ada_w = add2(ps, "final_layer.adaLN_modulation.1.weight", 2 * C, C, 1);
  b->i_f_ada_b = add2(ps, "final_layer.adaLN_modulation.1.bias", 2 * C, 0, 0);
  b->i_f_w = add2(ps, "final_layer.linear.weight", C, C, 1);
  b->i_f_b = add2(ps, "final_layer.linear.bias", C, 0, 0);
  b->i_h_w = add2(ps, "head.weight", K, C, 1);
  b->i_h_b = add2(ps, "head.bias", K, 0, 0);
  param_set_commit(ps);
  b->fixed = db_arena_new(ctx, "classifier positions");
  b->pos = db_new(b->fixed, 2, b->T, C, 0, 0);
  float *pos = db_malloc(sizeof(float) * (size_t)b->T * C);
  dit_sincos_2d(pos, cfg.img_h / p, cfg.img_w / p, C);
  db_upload(ctx, b->pos, pos);
  free(pos);
}

void dcls_block_destroy(dcls_block *b) {
  param_set_free(&b->ps);
  db_arena_free(b->fixed);
  free(b->i_layer);
  memset(b, 0, sizeof *b);
}

void dcls_block_init(db_ctx *ctx, dcls_block *b, uint64_t seed, uint64_t stream) {
  param_set *ps = &b->ps;
  int C = b->cfg.width;
  for (int i = 0; i < ps->n; i++) {
    db_tensor t = ps->p[i];
    uint64_t off = ((stream << 12) + (uint64_t)i) << 36; /* one Philox stream per tensor and block */
    if (t.ndim == 1 || strstr(ps->names[i], "adaLN") || i == b->i_f_w) db_zero(ctx, t);
    else if (i == b->i_t_w1 || i == b->i_t_w2) db_rng_normal(ctx, t, seed, off, 0.0f, 0.02f);
    else {
      float bound = sqrtf(6.0f / (float)(t.shape[0] + t.shape[1]));
      db_rng_uniform(ctx, t, seed, off, -bound, bound);
    }
  }
  /* gates (columns 2C..3C and 5C..6C of each layer's modulation bias) start at 1: an ordinary residual ViT */
  float *g = db_calloc((size_t)6 * C, sizeof *g);
  for (int k = 0; k < C; k++) g[2 * C + k] = g[5 * C + k] = 1.0f;
  for (int l = 0; l < b->cfg.depth; l++) db_upload(ctx, ps->p[b->i_layer[l] + DIT_ADA_B], g);
  free(g);
}

static dit_layer_params layer_view(const db_tensor *set, int first) {
  dit_layer_params lp;
  for (int k = 0; k < DIT_NPARAMS; k++) lp.t[k] = set[first + k];
  return lp;
}

void dcls_acts_alloc(db_ctx *ctx, dcls_acts *a, const dcls_block *b, int B, int training) {
  memset(a, 0, sizeof *a);
  const dcls_config *c = &b->cfg;
  int C = c->width, T = b->T, T1 = T + 1, L = c->depth, K = c->n_classes;
  a->B = B;
  a->arena = db_arena_new(ctx, "classifier activations");
  db_arena *ar = a->arena;
  a->tokens = db_new(ar, 3, B, T, b->P, 0);
  a->ptok = db_new(ar, 3, B, T, C, 0);
  a->zin = db_new(ar, 2, B, C, 0, 0);
  a->h = db_calloc((size_t)L + 1, sizeof *a->h);
  a->layer = db_calloc((size_t)L, sizeof *a->layer);
  for (int l = 0; l <= L; l++) a->h[l] = db_new(ar, 3, B, T1, C, 0);
  for (int l = 0; l < L; l++) dit_layer_alloc_acts(ar, b->lcfg, B, T1, &a->layer[l]);
  dit_workspace_alloc(ar, b->lcfg, B, T1, &a->ws);
  a->tfreq = db_new(ar, 2, B, c->freq_dim, 0, 0);
  a->th = db_new(ar, 2, B, C, 0, 0);
  a->ths = db_new(ar, 2, B, C, 0, 0);
  a->c = db_new(ar, 2, B, C, 0, 0);
  a->idx0 = db_alloc(ar, DB_I32, 1, (int[]){B});
  int *i0 = db_malloc(sizeof(int) * (size_t)B);
  for (int i = 0; i < B; i++) i0[i] = i * T1;
  db_upload(ctx, a->idx0, i0);
  free(i0);
  a->x0 = db_new(ar, 2, B, C, 0, 0);
  a->fcs = db_new(ar, 2, B, C, 0, 0);
  a->fmod = db_new(ar, 2, B, 2 * C, 0, 0);
  a->fmean = db_new(ar, 1, B, 0, 0, 0);
  a->frstd = db_new(ar, 1, B, 0, 0, 0);
  a->fm = db_new(ar, 2, B, C, 0, 0);
  a->F = db_new(ar, 2, B, C, 0, 0);
  a->D = db_new(ar, 2, B, C, 0, 0);
  a->logits = db_new(ar, 2, B, K, 0, 0);
  if (!training) return;
  a->dD = db_new(ar, 2, B, C, 0, 0);
  a->dF = db_new(ar, 2, B, C, 0, 0);
  a->dfm = db_new(ar, 2, B, C, 0, 0);
  a->dx0 = db_new(ar, 2, B, C, 0, 0);
  a->dfmod = db_new(ar, 2, B, 2 * C, 0, 0);
  a->dfcs = db_new(ar, 2, B, C, 0, 0);
  a->dc = db_new(ar, 2, B, C, 0, 0);
  a->dh0 = db_new(ar, 3, B, T1, C, 0);
  a->dh1 = db_new(ar, 3, B, T1, C, 0);
  a->dptok = db_new(ar, 3, B, T, C, 0);
  a->dths = db_new(ar, 2, B, C, 0, 0);
  a->dth = db_new(ar, 2, B, C, 0, 0);
}

void dcls_acts_free(dcls_acts *a) {
  db_arena_free(a->arena);
  free(a->h);
  free(a->layer);
  memset(a, 0, sizeof *a);
}

static void check_inputs(const dcls_block *b, const dcls_acts *a, const dcls_inputs *in) {
  const char *op = "dcls_block_forward";
  int B = a->B;
  if (in->n_images <= 0 || (!in->idx.mem && in->n_images < B))
    db_fail("%s: %d images for a batch of %d", op, in->n_images, B);
  db_check_numel(in->images, (size_t)in->n_images * b->cfg.img_h * b->cfg.img_w, op, "images");
  if (in->idx.mem) db_check_numel(in->idx, (size_t)B, op, "idx");
  db_check_numel(in->z, (size_t)B * b->cfg.width, op, "z");
  db_check_numel(in->c_in, (size_t)B, op, "c_in");
  db_check_numel(in->c_noise, (size_t)B, op, "c_noise");
  db_check_numel(in->c_skip, (size_t)B, op, "c_skip");
  db_check_numel(in->c_out, (size_t)B, op, "c_out");
}

void dcls_block_forward(db_ctx *ctx, dcls_block *b, dcls_acts *a, const dcls_inputs *in) {
  check_inputs(b, a, in);
  const dcls_config *c = &b->cfg;
  db_tensor *p = b->ps.p;
  int B = a->B, C = c->width, T = b->T, T1 = T + 1, L = c->depth, K = c->n_classes;
  /* image tokens: the windows of the batch's images (background -1 outside) -> linear -> + positions */
  window_patches_forward(ctx, a->tokens, in->images, in->idx, B, in->n_images, c->img_h, c->img_w, c->patch, c->window,
                         -1.0f);
  linear_forward(ctx, a->ptok, a->tokens, p[b->i_x_w], p[b->i_x_b], B * T, b->P, C);
  add_broadcast_forward(ctx, a->ptok, a->ptok, b->pos, (size_t)B * T * C, (size_t)T * C);
  /* the label token c_in z in front, where ViT has its CLS token */
  rowscale_add_forward(ctx, a->zin, DB_NULL, DB_NULL, in->c_in, in->z, B, C);
  concat_rows_forward(ctx, a->h[0], a->zin, a->ptok, B, 1, T, C, 0, 0);
  /* conditioning c = MLP(sinusoid(c_noise)) */
  timestep_embedding_forward(ctx, a->tfreq, in->c_noise, B, c->freq_dim, 10000.0f);
  linear_forward(ctx, a->th, a->tfreq, p[b->i_t_w1], p[b->i_t_b1], B, c->freq_dim, C);
  silu_forward(ctx, a->ths, a->th, (size_t)B * C);
  linear_forward(ctx, a->c, a->ths, p[b->i_t_w2], p[b->i_t_b2], B, C, C);
  for (int l = 0; l < L; l++) {
    dit_layer_params lp = layer_view(p, b->i_layer[l]);
    dit_layer_forward(ctx, a->h[l + 1], &a->layer[l], a->h[l], a->c, &lp, &a->ws, b->lcfg);
  }
  /* the label token's output: AdaLN final layer -> F; D = c_skip z + c_out F; logits = head(D) */
  embedding_forward(ctx, a->x0, a->idx0, a->h[L], B, C, B * T1);
  silu_forward(ctx, a->fcs, a->c, (size_t)B * C);
  linear_forward(ctx, a->fmod, a->fcs, p[b->i_f_ada_w], p[b->i_f_ada_b], B, C, 2 * C);
  layernorm_modulate_forward(ctx, a->fm, a->fmean, a->frstd, a->x0, a->fmod, 0, C, B, 1, C, 2 * C, 1e-6f);
  linear_forward(ctx, a->F, a->fm, p[b->i_f_w], p[b->i_f_b], B, C, C);
  rowscale_add_forward(ctx, a->D, in->c_skip, in->z, in->c_out, a->F, B, C);
  linear_forward(ctx, a->logits, a->D, p[b->i_h_w], p[b->i_h_b], B, C, K);
}

void dcls_block_backward(db_ctx *ctx, dcls_block *b, dcls_acts *a, const dcls_inputs *in, db_tensor dlogits) {
  if (!a->dD.mem) db_fail("dcls_block_backward: activations were allocated without training buffers");
  db_check_numel(dlogits, (size_t)a->B * b->cfg.n_classes, "dcls_block_backward", "dlogits");
  const dcls_config *c = &b->cfg;
  db_tensor *p = b->ps.p, *g = b->ps.g;
  int B = a->B, C = c->width, T = b->T, T1 = T + 1, L = c->depth, K = c->n_classes;
  /* head, EDM mix (z is data), final linear */
  linear_backward(ctx, a->dD, g[b->i_h_w], g[b->i_h_b], dlogits, a->D, p[b->i_h_w], B, C, K, LINEAR_DINP_SET);
  db_zero(ctx, a->dF);
  rowscale_add_backward(ctx, DB_NULL, a->dF, a->dD, in->c_skip, in->c_out, B, C);
  linear_backward(ctx, a->dfm, g[b->i_f_w], g[b->i_f_b], a->dF, a->fm, p[b->i_f_w], B, C, C, LINEAR_DINP_SET);
  /* final AdaLN of the label token */
  db_zero(ctx, a->dx0);
  db_zero(ctx, a->dfmod);
  layernorm_modulate_backward(ctx, a->dx0, a->dfmod, a->dfm, a->x0, a->fmean, a->frstd, a->fmod, 0, C, B, 1, C, 2 * C);
  linear_backward(ctx, a->dfcs, g[b->i_f_ada_w], g[b->i_f_ada_b], a->dfmod, a->fcs, p[b->i_f_ada_w], B, C, 2 * C,
                  LINEAR_DINP_SET);
  db_zero(ctx, a->dc);
  silu_backward(ctx, a->dc, a->dfcs, a->c, (size_t)B * C);
  /* only the label token's row of the last stream has a gradient */
  db_tensor dh = a->dh0, dprev = a->dh1;
  db_zero(ctx, dh);
  embedding_backward(ctx, dh, a->dx0, a->idx0, B, C, B * T1);
  for (int l = L - 1; l >= 0; l--) {
    dit_layer_params lp = layer_view(p, b->i_layer[l]), lg = layer_view(g, b->i_layer[l]);
    db_zero(ctx, dprev);
    dit_layer_backward(ctx, dprev, a->dc, &lg, dh, &a->layer[l], a->h[l], a->c, &lp, &a->ws, b->lcfg); /* consumes dh */
    db_tensor t = dh;
    dh = dprev;
    dprev = t;
  }
  /* the image tokens' rows (the label token is data: its row is dropped) */
  db_zero(ctx, a->dptok);
  concat_rows_backward(ctx, DB_NULL, a->dptok, dh, B, 1, T, C, 0, 0);
  linear_backward(ctx, DB_NULL, g[b->i_x_w], g[b->i_x_b], a->dptok, a->tokens, p[b->i_x_w], B * T, b->P, C,
                  LINEAR_DINP_SET);
  /* noise MLP */
  linear_backward(ctx, a->dths, g[b->i_t_w2], g[b->i_t_b2], a->dc, a->ths, p[b->i_t_w2], B, C, C, LINEAR_DINP_SET);
  db_zero(ctx, a->dth);
  silu_backward(ctx, a->dth, a->dths, a->th, (size_t)B * C);
  linear_backward(ctx, DB_NULL, g[b->i_t_w1], g[b->i_t_b1], a->dth, a->tfreq, p[b->i_t_w1], B, c->freq_dim, C,
                  LINEAR_DINP_SET);
}
