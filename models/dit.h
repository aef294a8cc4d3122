/* One DiffusionBlocks block: a complete, independent DiT denoiser (docs/method.md §4)
 * with its own patch embedding, fixed 2-D sin-cos position embedding, noise-level
 * and class embedders, `depth` DiT layers with AdaLN-Zero and a final AdaLN layer,
 * wrapped in EDM preconditioning:
 *   D(z, σ, y) = c_skip z + c_out F(c_in z, c_noise, y).
 * Nothing is shared between blocks. Parameter names follow facebookresearch/DiT
 * (docs/checkpoints.md lists them with shapes). */
#ifndef DB_DIT_H
#define DB_DIT_H
#include "dit_layer.h"
#include "params.h"

typedef struct {
  int in_ch, img_h, img_w; /* 1, 28, 28 for Fashion-MNIST */
  int patch;               /* p: tokens are p x p patches */
  int width, heads;        /* C (a multiple of 4 and of heads), NH */
  int depth;               /* DiT layers in this block: L / B */
  int n_classes;           /* the class table has n_classes + 1 rows: the last is "no class" */
  int freq_dim;            /* sinusoid size of the noise embedding (256) */
} dit_config;

typedef struct {
  dit_config cfg;
  dit_layer_config lcfg;
  int T, P;                /* tokens, values per token (p*p*in_ch) */
  param_set ps;
  int i_x_w, i_x_b, i_t_w1, i_t_b1, i_t_w2, i_t_b2, i_y, i_f_ada_w, i_f_ada_b, i_f_w, i_f_b;
  int *i_layer;            /* index of each layer's first tensor (DIT_NPARAMS consecutive) */
  db_arena *fixed;         /* the position embedding: not trained */
  db_tensor pos;           /* (T, C) */
} dit_block;

/* Per-sample inputs of one denoiser call (device tensors of B elements). */
typedef struct {
  db_tensor z;             /* (B, in_ch, H, W) noisy input */
  db_tensor c_in, c_noise, c_skip, c_out; /* (B) EDM coefficients of each sample's sigma */
  db_tensor labels;        /* (B) int32, n_classes = "no class" */
} dit_inputs;

/* Activations of one forward for a batch of B, plus backward scratch. */
typedef struct {
  int B;
  db_arena *arena;
  db_tensor zin, tokens;               /* (B,in,H,W), (B,T,P) */
  db_tensor *h;                        /* depth + 1 residual streams (B,T,C) */
  dit_layer_acts *layer;
  dit_workspace ws;
  db_tensor tfreq, th, ths, temb, yemb, c; /* (B,256), (B,C) x5 */
  db_tensor fcs, fmod, fmean, frstd, ftok, F, D; /* the final layer's LN and modulated input live in scratch */
  /* backward scratch */
  db_tensor dF, dftok, dh0, dh1, dc, dfcs, dfmod, dths, dth;
} dit_acts;

void dit_config_check(const dit_config *cfg);
/* DiT's fixed 2-D sin-cos position table (gh*gw, C), C a multiple of 4. */
void dit_sincos_2d(float *out, int gh, int gw, int C);
void dit_block_create(db_ctx *ctx, dit_block *blk, dit_config cfg, const char *name);
void dit_block_init(db_ctx *ctx, dit_block *blk, uint64_t seed, uint64_t stream);
void dit_block_destroy(dit_block *blk);
void dit_acts_alloc(db_ctx *ctx, dit_acts *a, const dit_block *blk, int B, int training);
void dit_acts_free(dit_acts *a);

/* D = the denoised estimate, written to a->D (B, in_ch, H, W). */
void dit_block_forward(db_ctx *ctx, dit_block *blk, dit_acts *a, const dit_inputs *in);
/* Accumulates the parameter gradients of dL/dD (in a->D's layout) into blk->ps.g. */
void dit_block_backward(db_ctx *ctx, dit_block *blk, dit_acts *a, const dit_inputs *in, db_tensor dD);

#endif
