/* One block of the block-wise diffusion classifier (METHOD.md §8, docs/classify.md):
 * a ViT that denoises the LABEL. The label lives in a fixed class-embedding
 * space E (K orthonormal rows of width C, models/class_table.h) shared by
 * every block; a noisy label vector z = E[y] + σ ε enters, scaled by c_in,
 * as an extra token in place of ViT's CLS token, and the block predicts the
 * class through the EDM mix taken in that hidden space:
 *
 *   tokens  = [c_in z ; Linear(window patches) + sin-cos positions]   (B, 1+T, C)
 *   c       = MLP(sinusoid(c_noise))                                   (B, C)
 *   h       = depth DiT layers (models/dit_layer.h) conditioned on c
 *   F       = Linear(AdaLN(LN(h[:, 0]), c))                            (B, C)  the label token's output
 *   D       = c_skip z + c_out F                                       (B, C)  the denoised label vector
 *   logits  = Linear(D)                                                (B, K)
 *
 * Training: loss = w(σ)·CE(logits, y) per sample (models/classify_task.c).
 * Inference: D = softmax(logits)·E is the denoised estimate of one Euler step
 * per block (classify_task.h: classify_predict).
 *
 * Initialisation as the evaluation classifier (classifier.h): each layer's
 * gate biases start at 1 and its modulation weights at 0 (a plain residual
 * ViT that learns how σ modulates it), F's linear at 0 (D = c_skip z at first),
 * the noise MLP N(0, 0.02²), other linears Xavier-uniform. Nothing is shared
 * between blocks but E, which is not a parameter. */
#ifndef DB_DIFFUSION_CLASSIFIER_H
#define DB_DIFFUSION_CLASSIFIER_H
#include "dit_layer.h"
#include "params.h"

typedef struct {
  int img_h, img_w;   /* single-channel images in [-1, 1] */
  int patch, window;  /* tokens: the window x window pixels centred on each patch x patch cell (window = patch: plain patches) */
  int width, heads, depth;
  int n_classes, freq_dim;
} dcls_config;

typedef struct {
  dcls_config cfg;
  dit_layer_config lcfg;
  int T, P;            /* image tokens, values per token (window^2); the sequence is 1 + T */
  param_set ps;
  int i_x_w, i_x_b, i_t_w1, i_t_b1, i_t_w2, i_t_b2, i_f_ada_w, i_f_ada_b, i_f_w, i_f_b, i_h_w, i_h_b;
  int *i_layer;
  db_arena *fixed;
  db_tensor pos;       /* (T, C) fixed 2-D sin-cos */
} dcls_block;

/* One call's inputs (device tensors). */
typedef struct {
  db_tensor images;    /* (n_images, H, W) */
  db_tensor idx;       /* (B) int32 rows of images, or DB_NULL: rows 0..B-1 */
  int n_images;
  db_tensor z;         /* (B, C) noisy label vectors */
  db_tensor c_in, c_noise, c_skip, c_out; /* (B) EDM coefficients of each sample's σ */
} dcls_inputs;

typedef struct {
  int B;
  db_arena *arena;
  db_tensor tokens, ptok;         /* (B,T,P) window pixels, (B,T,C) their embedding */
  db_tensor zin;                  /* (B,C) c_in z: the label token */
  db_tensor *h;                   /* depth + 1 streams (B,1+T,C) */
  dit_layer_acts *layer;
  dit_workspace ws;
  db_tensor tfreq, th, ths, c;    /* (B,freq), (B,C) x3 */
  db_tensor idx0;                 /* (B) int32: row b(1+T), the label token of sample b */
  db_tensor x0, fcs, fmod, fmean, frstd, fm, F, D, logits; /* the head */
  /* backward */
  db_tensor dD, dF, dfm, dx0, dfmod, dfcs, dc, dh0, dh1, dptok, dths, dth;
} dcls_acts;

void dcls_config_check(const dcls_config *cfg); /* db_fail naming the bad field */
void dcls_block_create(db_ctx *ctx, dcls_block *blk, dcls_config cfg, const char *name);
void dcls_block_init(db_ctx *ctx, dcls_block *blk, uint64_t seed, uint64_t stream);
void dcls_block_destroy(dcls_block *blk);
void dcls_acts_alloc(db_ctx *ctx, dcls_acts *a, const dcls_block *blk, int B, int training);
void dcls_acts_free(dcls_acts *a);

/* logits (B, K) into a->logits (and D, the denoised label vector, into a->D). */
void dcls_block_forward(db_ctx *ctx, dcls_block *blk, dcls_acts *a, const dcls_inputs *in);
/* Accumulates the parameter gradients of dL/dlogits into blk->ps.g (z and the images are data). */
void dcls_block_backward(db_ctx *ctx, dcls_block *blk, dcls_acts *a, const dcls_inputs *in, db_tensor dlogits);
#endif
