/* The op layer: every op a *_forward / *_backward pair on device tensors.
 * Argument order (after ctx): outputs, saved activations, inputs, parameters,
 * dimensions. Forward saves exactly what backward needs.
 * EVERY backward ACCUMULATES (+=) into all its gradient outputs, input
 * gradients included, so residual branches add up without extra kernels: the
 * caller zeroes gradient buffers once before a block's backward walk.
 * Sizes never need to be multiples of a work-group size. Shapes are checked
 * (element counts) and a mismatch fails with a message naming op and argument. */
#ifndef DB_OPS_H
#define DB_OPS_H
#include "../runtime/db.h"

/* linear.c: out = inp @ weight^T + bias, through gemm().
 * dinp += dout @ weight (LINEAR_DINP_ADD) or dinp = dout @ weight
 * (LINEAR_DINP_SET: dinp is written without being read, so a scratch buffer
 * needs no zero fill first); dweight += dout^T @ inp (one GEMM over all N
 * rows); dbias += column sums of dout (gemm_colsum_acc). */
enum { LINEAR_DINP_ADD = 1, LINEAR_DINP_SET = 2 };
void linear_forward(db_ctx *ctx, db_tensor out /* (N,OC) */, db_tensor inp /* (N,IC) */,
                    db_tensor weight /* (OC,IC) */, db_tensor bias /* (OC) or DB_NULL */, int N, int IC, int OC);
void linear_backward(db_ctx *ctx, db_tensor dinp /* (N,IC) or DB_NULL */, db_tensor dweight /* (OC,IC) */,
                     db_tensor dbias /* (OC) or DB_NULL */, db_tensor dout /* (N,OC) */, db_tensor inp,
                     db_tensor weight, int N, int IC, int OC, int dinp_mode);

/* runtime/program.c: runtime-owned device scratch `which` (0..4) of at least
 * n floats for ops that need temporary space (0: gemm's transposed B and the
 * blocked attention's transposes, 1: CLBlast's temp buffer, 2: split-K
 * partials, 3: bias-gradient column sums, 4: reduce_sum's partials), grown on
 * demand, counted in the live/peak bytes and held to the memory limit, freed at
 * db_shutdown. A later call with the same slot may return a new buffer. */
db_tensor db_workspace(db_ctx *ctx, int which, size_t n);

/* gemm.c: row-major C = alpha * op(A) op(B) + beta * C, op = transpose when
 * ta / tb is 1; explicit leading dimensions, tensors carry element offsets;
 * beta = 0 never reads C. Dispatched per shape class (gemm_shape_class) to a
 * configuration of cl/gemm.cl or CLBlast: DBLOCKS_GEMM=clblast|own:<params>
 * forces one; else the tuning cache of `dblocks tune` (DBLOCKS_TUNE=off
 * ignores it); else a fixed default per device type. Never a timing race. */
void gemm(db_ctx *ctx, int ta, int tb, int M, int N, int K, float alpha, db_tensor A, int lda, db_tensor B, int ldb,
          float beta, db_tensor C, int ldc);
/* `batch` products, operand i at element offset i * stride of each. */
void gemm_strided_batched(db_ctx *ctx, int ta, int tb, int M, int N, int K, float alpha, db_tensor A, int lda, size_t sa,
                  db_tensor B, int ldb, size_t sb, float beta, db_tensor C, int ldc, size_t sc, int batch);
/* sums (N) += column sums of X (rows, N) with leading dimension ld, rows in order. */
void gemm_colsum_acc(db_ctx *ctx, db_tensor sums, db_tensor X, int rows, int N, int ld);

/* A configuration: CLBlast, or the kernel's parameters (see cl/gemm.cl).
 * Text form "clblast" or "own:MDIMC=4,NDIMC=4,WPTM=4,WPTN=2,VW=4,KWG=16,LOCAL=0"
 * [,GROUPM=g (grouped group order)][,KPASS=kc (K in passes of kc, adding into C)]. */
typedef struct { int clblast, mdimc, ndimc, wptm, wptn, vw, kwg, local, fault, groupm, kpass; } gemm_config;
int gemm_config_parse(const char *s, gemm_config *c); /* 1 if valid */
void gemm_config_format(const gemm_config *c, char *out, size_t n);
int gemm_config_fits(db_ctx *ctx, const gemm_config *c); /* work-group size, local memory */
/* The tuner's candidate list: which 0 = for this device, 1 = CPU list, 2 = GPU list. */
int gemm_candidates(db_ctx *ctx, int which, const char *const **list);
void gemm_shape_class(int ta, int tb, int M, int N, int K, int batch, char *out, size_t n);
gemm_config gemm_choose(db_ctx *ctx, int ta, int tb, int M, int N, int K, int batch);
void gemm_with(db_ctx *ctx, const gemm_config *c, int ta, int tb, int M, int N, int K, float alpha, db_tensor A,
               int lda, size_t sa, db_tensor B, int ldb, size_t sb, float beta, db_tensor C, int ldc, size_t sc,
               int batch);
/* Relative error of configuration c on an M x N x K product with offsets,
 * padded leading dimensions, alpha and beta, against a host double GEMM
 * (INFINITY if it wrote outside C). */
double gemm_validate(db_ctx *ctx, const gemm_config *c, int ta, int tb, int M, int N, int K);
typedef struct { int ta, tb, M, N, K; } gemm_shape;
/* Validates then times every candidate (+ CLBlast) per shape class, writes the
 * winners to the cache; returns the classes written. */
int gemm_tune(db_ctx *ctx, const gemm_shape *shapes, int n_shapes, const char *const *cands, int n_cands,
              double seconds, int verbose);
void gemm_cache_path(db_ctx *ctx, char *out, size_t n); /* "" when the cache is off */
void gemm_cache_put(db_ctx *ctx, const char *cls, const char *config); /* merge one entry */
void gemm_reset_choices(void); /* forget what was read from the cache */
/* CLBlast's own Xgemm parameters (tuned by CLBlast's tuner, imported by
 * `dblocks tune --clblast-params`) live in the same cache and are applied
 * through CLBlastOverrideParameters before a device's first CLBlast product.
 * gemm_clblast_defaults(1) keeps CLBlast on its defaults instead (returns 0
 * when an override is already in force: CLBlast cannot undo it);
 * gemm_clblast_tuned says whether the cache has parameters (desc: "K=V,..."). */
int gemm_clblast_defaults(int on);
int gemm_clblast_tuned(db_ctx *ctx, char *desc, size_t n);
void gemm_cache_put_clblast(db_ctx *ctx, const char *names[], const size_t *values, int n, const char *source);

/* layernorm.c: no affine. out = (x - mean) * rstd, rstd = 1/sqrt(var + eps). */
void layernorm_forward(db_ctx *ctx, db_tensor out /* (N,C) */, db_tensor mean /* (N) */, db_tensor rstd /* (N) */,
                       db_tensor inp /* (N,C) */, int N, int C, float eps);
void layernorm_backward(db_ctx *ctx, db_tensor dinp /* (N,C) */, db_tensor dout /* (N,C) */, db_tensor inp,
                        db_tensor mean, db_tensor rstd, int N, int C);

/* modulate.c: AdaLN modulation out = x * (1 + scale[b]) + shift[b], broadcast over
 * the T tokens of sample b. shift and scale are C-wide column ranges of the
 * packed per-sample modulation tensor mod (B, ld) produced by adaLN's linear:
 * shift = mod[b, shift_col : shift_col+C], scale = mod[b, scale_col : scale_col+C]. */
void modulate_forward(db_ctx *ctx, db_tensor out /* (B,T,C) */, db_tensor inp /* (B,T,C) */,
                      db_tensor mod /* (B,ld) */, int shift_col, int scale_col, int B, int T, int C, int ld);
void modulate_backward(db_ctx *ctx, db_tensor dinp /* (B,T,C) */, db_tensor dmod /* (B,ld) */,
                       db_tensor dout /* (B,T,C) */, db_tensor inp, db_tensor mod, int shift_col,
                       int scale_col, int B, int T, int C, int ld);

/* rmsnorm.c: no affine. out = x * rstd, rstd = 1/sqrt(mean(x^2) + eps);
 * dinp += rstd (dy - xhat mean(dy xhat)), xhat = x rstd. */
void rmsnorm_forward(db_ctx *ctx, db_tensor out /* (N,C) */, db_tensor rstd /* (N) saved */, db_tensor inp /* (N,C) */,
                     int N, int C, float eps);
void rmsnorm_backward(db_ctx *ctx, db_tensor dinp /* (N,C) += */, db_tensor dout /* (N,C) */, db_tensor inp,
                      db_tensor rstd, int N, int C);

/* layernorm_modulate.c: LayerNorm (no affine, as layernorm.c) then AdaLN
 * modulation (as modulate.c) in one op, as every DiT branch runs them:
 * out = (x - mean) * rstd * (1 + scale[b]) + shift[b]; saves mean, rstd.
 * backward: dinp += LayerNorm backward of dout * (1 + scale); dmod += the
 * shift and scale sums over tokens (xhat recomputed from inp, mean, rstd). */
void layernorm_modulate_forward(db_ctx *ctx, db_tensor out /* (B,T,C) */, db_tensor mean /* (B*T) */,
                                db_tensor rstd /* (B*T) */, db_tensor inp /* (B,T,C) */, db_tensor mod /* (B,ld) */,
                                int shift_col, int scale_col, int B, int T, int C, int ld, float eps);
void layernorm_modulate_backward(db_ctx *ctx, db_tensor dinp /* (B,T,C) */, db_tensor dmod /* (B,ld) */,
                                 db_tensor dout /* (B,T,C) */, db_tensor inp, db_tensor mean, db_tensor rstd,
                                 db_tensor mod, int shift_col, int scale_col, int B, int T, int C, int ld);

/* gated_residual.c: out = x + gate[b] ⊙ y, gate = mod[b, gate_col : gate_col+C].
 * out may alias x (in-place residual update). In the backward dx may be DB_NULL
 * (when the caller already holds dout as dx, as the DiT layer does). */
void gated_residual_forward(db_ctx *ctx, db_tensor out /* (B,T,C) */, db_tensor x /* (B,T,C) */,
                            db_tensor y /* (B,T,C) */, db_tensor mod /* (B,ld) */, int gate_col, int B,
                            int T, int C, int ld);
void gated_residual_backward(db_ctx *ctx, db_tensor dx /* (B,T,C) */, db_tensor dy /* (B,T,C) */,
                             db_tensor dmod /* (B,ld) */, db_tensor dout /* (B,T,C) */, db_tensor y,
                             db_tensor mod, int gate_col, int B, int T, int C, int ld);

/* elementwise.c: W floats per work-item (vloadW, scalar tail) in the
 * elementwise kernels below: 16 on CPUs, 4 elsewhere; kernels are named
 * NAME_w4 / NAME_w16. elem_force_width(4 or 16) overrides it (tests run both
 * widths on any device), 0 restores the automatic choice. */
void elem_force_width(int w);
int elem_width(db_ctx *ctx);
/* Handles (db_kernel_ref) to both widths of one elementwise kernel, declared
 * at file scope: static elem_ref K_FORWARD = ELEM_REF("gelu", "gelu_forward");
 * (base must be a string literal). elem_args launches the width elem_width
 * picks now, so elem_force_width still switches kernels between calls. */
typedef struct { db_kernel_ref w4, w16; } elem_ref;
#define ELEM_REF(file, base) {DB_KERNEL_REF(file, base "_w4"), DB_KERNEL_REF(file, base "_w16")}
db_args elem_args(db_ctx *ctx, elem_ref *r);
void elem_launch(db_args *a, size_t n);                /* ceil(n/W) work-items */
void elem_launch_rows(db_args *a, int C, size_t rows); /* (ceil(C/W), rows) */

/* silu.c: out = x * sigmoid(x). gelu.c: tanh approximation of GELU. */
void silu_forward(db_ctx *ctx, db_tensor out /* (n) */, db_tensor inp /* (n) */, size_t n);
void silu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, size_t n);
void gelu_forward(db_ctx *ctx, db_tensor out /* (n) */, db_tensor inp /* (n) */, size_t n);
void gelu_backward(db_ctx *ctx, db_tensor dinp, db_tensor dout, db_tensor inp, size_t n);
/* The one exception to +=: d = d * gelu'(inp) in place, saving a buffer where
 * the gradient of the GELU input is not accumulated anywhere else. */
void gelu_backward_inplace(db_ctx *ctx, db_tensor d, db_tensor inp, size_t n);

/* bias_gelu.c: out = gelu(inp + bias) over rows of C: the DiT MLP's fc1 bias
 * and GELU in one pass (its linear runs without bias). backward: dinp +=
 * dout * gelu'(inp + bias), dbias += its column sums (dbias may be DB_NULL,
 * e.g. when linear_backward's dbias already sums the same gradient).
 * _inplace: d = d * gelu'(inp + bias), the gradient of the pre-bias GEMM
 * output, which is also the bias gradient's summand. */
void bias_gelu_forward(db_ctx *ctx, db_tensor out /* (N,C) */, db_tensor inp /* (N,C) */, db_tensor bias /* (C) */,
                       int N, int C);
void bias_gelu_backward(db_ctx *ctx, db_tensor dinp /* (N,C) */, db_tensor dbias /* (C) or DB_NULL */,
                        db_tensor dout /* (N,C) */, db_tensor inp, db_tensor bias, int N, int C);
void bias_gelu_backward_inplace(db_ctx *ctx, db_tensor d /* (N,C) */, db_tensor inp, db_tensor bias, int N, int C);

/* attention.c: fused multi-head self-attention (FlashAttention-2 style) on
 * packed qkv (B,T,3C) laid out [q | k | v], head h using columns
 * h*hs..(h+1)*hs of each, hs = C/NH <= 128. Scores are scaled by 1/sqrt(hs).
 * mode ATTN_BIDIRECTIONAL, ATTN_CAUSAL (query i sees keys j <= i) or
 * ATTN_MASK (query i of sample b sees key j where mask[i*T+j] != 0 for a
 * (T,T) mask, mask[(b*T+i)*T+j] for a (B,T,T) one) or ATTN_BLOCKDIFF (the
 * language model's block diffusion without a mask tensor: T = 2n tokens
 * [noisy 0..n-1 | clean 0..n-1]; noisy query i sees key i (itself) and clean
 * keys n+j, j < i; clean query n+i sees clean keys n+j, j <= i; T must be
 * even; fully masked key tiles are skipped). A query that sees no key
 * outputs zeros. Saved: lse (B,NH,T), the log-sum-exp of each query's scaled
 * scores (0 for a query that sees no key); the backward also reads out, qkv
 * and the same mask. No (T,T) matrix is stored: memory is O(B*T*C). */
enum { ATTN_BIDIRECTIONAL = 0, ATTN_CAUSAL = 1, ATTN_MASK = 2, ATTN_BLOCKDIFF = 3 };
void attention_forward(db_ctx *ctx, db_tensor out /* (B,T,C) */, db_tensor lse /* (B,NH,T) saved */,
                       db_tensor qkv /* (B,T,3C) */, db_tensor mask /* (T,T), (B,T,T) or DB_NULL */, int mode,
                       int B, int T, int C, int NH);
void attention_backward(db_ctx *ctx, db_tensor dqkv /* (B,T,3C) += */, db_tensor dsum /* (B,NH,T) scratch */,
                        db_tensor dout /* (B,T,C) */, db_tensor out, db_tensor lse, db_tensor qkv, db_tensor mask,
                        int mode, int B, int T, int C, int NH);
/* Tests: forces the kernels' launch shape. ATTN_BLOCKED_PATH: the blocked
 * kernels of cl/attention_blocked.cl, several rows per work-item against 16
 * keys per vector (what a CPU device gets when the head size is a multiple of
 * 4); n = 1: one work-item per row, no local memory (a CPU device's choice
 * for other head sizes); n > 1: work-groups of exactly n rows with
 * local-memory tiles and barriers (what a GPU gets); n = 0: the device's
 * choice again. Returns the previous value. A size above the kernel's
 * CL_KERNEL_WORK_GROUP_SIZE fails clearly at the launch. */
size_t attention_force_group_size(size_t n);
#define ATTN_BLOCKED_PATH ((size_t)-1) /* attention_force_group_size: the blocked CPU kernels (rows if hs % 4) */

/* crossentropy.c: losses[n] = -log softmax(logits[n])[targets[n]]; a target
 * of -1 is ignored (loss 0, no gradient). targets is an int32 tensor. */
void crossentropy_forward(db_ctx *ctx, db_tensor losses /* (N) */, db_tensor probs /* (N,V) saved */,
                          db_tensor logits /* (N,V) */, db_tensor targets /* (N) i32 */, int N, int V);
void crossentropy_backward(db_ctx *ctx, db_tensor dlogits /* (N,V) */, db_tensor dlosses /* (N) */,
                           db_tensor probs, db_tensor targets, int N, int V);

/* edm_mse.c: per-sample weighted MSE, losses[n] = w[n] * sum_d (pred - target)^2 / D. */
void weighted_mse_forward(db_ctx *ctx, db_tensor losses /* (N) */, db_tensor pred /* (N,D) */,
                          db_tensor target /* (N,D) */, db_tensor weight /* (N) */, int N, int D);
void weighted_mse_backward(db_ctx *ctx, db_tensor dpred /* (N,D) */, db_tensor dlosses /* (N) */,
                           db_tensor pred, db_tensor target, db_tensor weight, int N, int D);

/* embedding.c: out[n] = table[idx[n]]; backward scatter-adds rows into dtable
 * (deterministic: no float atomics, same result every run). idx is int32. */
void embedding_forward(db_ctx *ctx, db_tensor out /* (N,C) */, db_tensor idx /* (N) i32 */,
                       db_tensor table /* (V,C) */, int N, int C, int V);
void embedding_backward(db_ctx *ctx, db_tensor dtable /* (V,C) */, db_tensor dout /* (N,C) */, db_tensor idx,
                        int N, int C, int V);

/* timestep_embedding.c: sinusoidal embedding of a scalar per sample,
 * out[n] = [cos(t f_0..f_{D/2-1}), sin(t f_0..)], f_k = exp(-ln(max_period) k/(D/2)). D even. */
void timestep_embedding_forward(db_ctx *ctx, db_tensor out /* (N,D) */, db_tensor t /* (N) */, int N, int D,
                                float max_period);
void timestep_embedding_backward(db_ctx *ctx, db_tensor dt /* (N) */, db_tensor dout /* (N,D) */, db_tensor t,
                                 int N, int D, float max_period);

/* patchify.c: images (N,Cin,H,W) <-> tokens (N, T=(H/p)(W/p), p*p*Cin), token
 * order row-major over the patch grid, patch vector order (py, px, c). */
void patchify_forward(db_ctx *ctx, db_tensor out /* (N,T,p*p*Cin) */, db_tensor img /* (N,Cin,H,W) */, int N,
                      int Cin, int H, int W, int p);
void patchify_backward(db_ctx *ctx, db_tensor dimg, db_tensor dout, int N, int Cin, int H, int W, int p);
void unpatchify_forward(db_ctx *ctx, db_tensor img /* (N,Cin,H,W) */, db_tensor inp /* (N,T,p*p*Cin) */, int N,
                        int Cin, int H, int W, int p);
void unpatchify_backward(db_ctx *ctx, db_tensor dinp, db_tensor dimg, int N, int Cin, int H, int W, int p);

/* window_patches.c: overlapping windows as tokens, fused with a batch gather:
 * out[b, t, y*w + x] = images[idx[b]][i*p - m + y][j*p - m + x] for token t = i*(W/p) + j of the (H/p)x(W/p)
 * patch grid, m = (w-p)/2, and `pad` outside the image; idx (B) int32 rows of images (N_all, H, W), or DB_NULL
 * for b itself (then N_all >= B). w = p is plain single-channel patchify. Forward only (data). Kernels cannot
 * fail: an idx outside [0, N_all) reads as a token of all `pad` (never out of bounds). H, W divisible by p,
 * w >= p, w - p even, w <= 64 (clear errors otherwise). */
void window_patches_forward(db_ctx *ctx, db_tensor out /* (B, T, w*w) */, db_tensor images /* (N_all, H, W) */,
                            db_tensor idx /* (B) i32 or DB_NULL */, int B, int N_all, int H, int W, int p, int w,
                            float pad);

/* gather_bytes.c: a batch of float rows gathered from a (V, D) uint8 table:
 * out[b, d] = (float)table[idx[b], d] / div + shift, the very float the host
 * expression gives (images: div 127.5, shift -1, data/idx.h's mapping, bit for
 * bit); idx (B) int32; an idx outside [0, V) gives a row of `shift` (never a
 * read out of bounds). table must be DB_U8; 1/div and 255/div normal floats,
 * shift finite (clear errors otherwise). Forward only (data). */
void gather_bytes_forward(db_ctx *ctx, db_tensor out /* (B, D) */, db_tensor idx /* (B) i32 */,
                          db_tensor table /* (V, D) u8 */, int B, int D, int V, float div, float shift);

/* reduce.c: device-side scalar reductions (two passes, deterministic order). */
void reduce_sum(db_ctx *ctx, db_tensor out /* (1) */, db_tensor inp /* (n) */, size_t n);          /* out = sum */
void reduce_sumsq_add(db_ctx *ctx, db_tensor out /* (1) */, db_tensor inp /* (n) */, size_t n);    /* out += sum x^2 */

/* adamw.c: AdamW with bias correction, decoupled weight decay and global-norm
 * clipping over a set of tensors, all on the device: the norm never comes back
 * to the host. step is 1-based. decay[i] = 0 exempts tensor i from weight decay. */
typedef struct {
  float lr, beta1, beta2, eps, weight_decay;
  float clip; /* max global grad norm; <= 0 disables clipping */
} adamw_config;
void global_norm_squared(db_ctx *ctx, db_tensor normsq /* (1) */, const db_tensor *grads, int n_tensors);
void adamw_update(db_ctx *ctx, const db_tensor *params, const db_tensor *grads, const db_tensor *m,
                  const db_tensor *v, const int *decay, int n_tensors, db_tensor normsq /* (1) scratch */,
                  adamw_config cfg, int step);

/* Small glue ops of the denoiser, one file each.
 * rowscale_add.c: out[n,:] = a[n] x[n,:] + b[n] y[n,:] with per-row scalars (EDM's
 * c_in z and c_skip z + c_out F). x may be DB_NULL (then out = b y). The scalars
 * are data (functions of sigma), so only dx, dy are produced (either may be DB_NULL). */
void rowscale_add_forward(db_ctx *ctx, db_tensor out /* (N,D) */, db_tensor a /* (N) */, db_tensor x /* (N,D) */,
                          db_tensor b /* (N) */, db_tensor y /* (N,D) */, int N, int D);
void rowscale_add_backward(db_ctx *ctx, db_tensor dx, db_tensor dy, db_tensor dout, db_tensor a, db_tensor b, int N,
                           int D);
/* add_broadcast.c: out[i] = x[i] + y[i % m] for i < n (m divides n): a position
 * embedding added to every sample, or two equal-sized tensors. backward:
 * dx += dout; dy += sum of dout over the repeats (dy may be DB_NULL). out may alias x. */
void add_broadcast_forward(db_ctx *ctx, db_tensor out /* (n) */, db_tensor x /* (n) */, db_tensor y /* (m) */,
                           size_t n, size_t m);
void add_broadcast_backward(db_ctx *ctx, db_tensor dx, db_tensor dy, db_tensor dout, size_t n, size_t m);
/* concat_rows.c: out (B, Ra+Rc, D) = [a[b] ; c[b]] joined along rows per sample:
 * a (B,Ra,D), c (B,Rc,D); with a_bcast / c_bcast = 1 that source is ONE (Ra,D) /
 * (Rc,D) block shared by every sample. Either side may have 0 rows. backward:
 * da, dc += their rows of dout, summed over samples when broadcast (either may be DB_NULL). */
void concat_rows_forward(db_ctx *ctx, db_tensor out /* (B,Ra+Rc,D) */, db_tensor a, db_tensor c, int B, int Ra,
                         int Rc, int D, int a_bcast, int c_bcast);
void concat_rows_backward(db_ctx *ctx, db_tensor da, db_tensor dc, db_tensor dout, int B, int Ra, int Rc, int D,
                          int a_bcast, int c_bcast);
/* mean_tokens.c: out[b,c] = mean over t of x[b,t,c]; backward dx += dout / T. */
void mean_tokens_forward(db_ctx *ctx, db_tensor out /* (B,C) */, db_tensor x /* (B,T,C) */, int B, int T, int C);
void mean_tokens_backward(db_ctx *ctx, db_tensor dx, db_tensor dout, int B, int T, int C);

/* rope.c: rotary position embedding (GPT-NeoX "rotate half") IN PLACE on the
 * first ncols columns of each row of x (N, ld), in consecutive heads of hs
 * columns (hs even, ncols a multiple of hs, ncols <= ld; the model: the q and
 * k parts, ncols = 2C, of a packed qkv row). Within a head, columns i and
 * i + hs/2 (i < hs/2) rotate by theta = pos * base^(-2i/hs):
 * x'_i = x_i cos - x_{i+hs/2} sin, x'_{i+hs/2} = x_{i+hs/2} cos + x_i sin,
 * with pos = pos0 + (row % period) (training on (B, 2T) [noisy | clean] rows:
 * period T, pos0 0; decoding one token per sequence: period 1, pos0 = t).
 * rope_backward is an in-place exception to +=, like gelu_backward_inplace:
 * dx = R(-theta) dx, the transpose of the rotation, over the same columns. */
void rope_forward(db_ctx *ctx, db_tensor x /* (N,ld) in place */, int N, int ncols, int ld, int hs, int pos0,
                  int period, float base);
void rope_backward(db_ctx *ctx, db_tensor dx /* (N,ld) in place */, int N, int ncols, int ld, int hs, int pos0,
                   int period, float base);

/* swiglu.c: inp (N, 2H) laid out [a | b] per row (one fused linear's output),
 * out = silu(a) * b; backward: da += dout * b * silu'(a), db += dout * silu(a). */
void swiglu_forward(db_ctx *ctx, db_tensor out /* (N,H) */, db_tensor inp /* (N,2H) */, int N, int H);
void swiglu_backward(db_ctx *ctx, db_tensor dinp /* (N,2H) += */, db_tensor dout /* (N,H) */, db_tensor inp, int N,
                     int H);

/* attention.c, decoding with a K/V cache (forward only): for each sequence b
 * and head h, the query of row n-1 of qkv against the keys and values of rows
 * 0..n-1 (1 <= n <= Tcap), scale 1/sqrt(hs): exactly the last row of
 * ATTN_CAUSAL attention over the first n rows. Rows n..Tcap-1 are not read. */
void attention_decode_forward(db_ctx *ctx, db_tensor out /* (B,C) */, db_tensor qkv /* (B,Tcap,3C) */, int n, int B,
                              int Tcap, int C, int NH);

#endif
