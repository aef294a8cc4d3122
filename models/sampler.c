/* The DiffusionBlocks sampler (docs/method.md §6, Algorithm 2): the
 * probability-flow ODE from σ_max to 0, each step evaluated by the block
 * that owns its σ. */
#include "sampler.h"
#include <stdlib.h>
#include <string.h>

static db_tensor fill_vec(db_ctx *ctx, db_tensor t, int n, float v) {
  db_tensor view = db_view(t, 0, 1, (int[]){n});
  db_fill(ctx, view, v);
  return view;
}

/* D for n samples at one σ by block b, with classifier-free guidance when s != 1:
 * the batch holds [conditional | unconditional] copies. */
static void denoise(db_ctx *ctx, dit_block *b, dit_acts *a, db_tensor zdev, db_tensor ldev, db_tensor coef,
                    const run_config *rc, const float *z, const int *labels, int n, double sigma, double s,
                    float *D) {
  int guided = s != 1.0, nb = guided ? 2 * n : n;
  if (a->B != nb) db_fail("denoise: activations for %d samples, asked for %d", a->B, nb);
  size_t img = (size_t)rc->model.in_ch * rc->model.img_h * rc->model.img_w;
  edm_precond pc = edm_preconditioning(rc->edm, sigma);
  db_tensor zt = db_view(zdev, 0, 1, (int[]){(int)(nb * img)});
  db_upload_async(ctx, db_view(zdev, 0, 1, (int[]){(int)(n * img)}), z);
  if (guided) db_upload_async(ctx, db_view(zdev, n * img, 1, (int[]){(int)(n * img)}), z); /* the unconditional copy */
  int *lab = db_malloc((size_t)nb * sizeof *lab);
  for (int i = 0; i < nb; i++) lab[i] = i < n ? labels[i] : rc->model.n_classes;
  db_tensor lt = db_view(ldev, 0, 1, (int[]){nb});
  db_upload(ctx, lt, lab);
  free(lab);
  dit_inputs in = {zt, fill_vec(ctx, db_view(coef, 0, 1, (int[]){nb}), nb, (float)pc.c_in),
                   fill_vec(ctx, db_view(coef, (size_t)a->B, 1, (int[]){nb}), nb, (float)pc.c_noise),
                   fill_vec(ctx, db_view(coef, 2 * (size_t)a->B, 1, (int[]){nb}), nb, (float)pc.c_skip),
                   fill_vec(ctx, db_view(coef, 3 * (size_t)a->B, 1, (int[]){nb}), nb, (float)pc.c_out), lt};
  dit_block_forward(ctx, b, a, &in);
  float *out = db_malloc(nb * img * sizeof *out);
  db_download(ctx, db_view(a->D, 0, 1, (int[]){(int)(nb * img)}), out);
  for (size_t i = 0; i < n * img; i++) D[i] = guided ? (float)(out[n * img + i] + s * (out[i] - out[n * img + i])) : out[i];
  free(out);
}

void sample_images(db_ctx *ctx, dit_block *blocks, const run_config *rc, const int *labels, int n, sampler_opts o,
                   float *out) {
  sample_images_traced(ctx, blocks, rc, labels, n, o, NULL, 0, NULL, NULL, out);
}

void sample_images_traced(db_ctx *ctx, dit_block *blocks, const run_config *rc, const int *labels, int n,
                          sampler_opts o, const double *sigmas, int steps, sampler_step_fn fn, void *user,
                          float *out) {
  if (n < 1) db_fail("sample: need at least one sample, got %d", n);
  if (!sigmas && o.steps < 2) db_fail("sample: --steps %d: need at least 2", o.steps);
  if (sigmas) {
    if (steps < 1) db_fail("sample: a noise grid of %d steps: need at least 1", steps);
    for (int j = 0; j <= steps; j++)
      if (!(sigmas[j] >= 0) || (j < steps && !(sigmas[j] > 0 && sigmas[j + 1] < sigmas[j])))
        db_fail("sample: noise grid: sigma[%d] = %g must be positive and above sigma[%d] = %g (the last may be 0)", j,
                sigmas[j], j + 1, j < steps ? sigmas[j + 1] : 0.0);
    o.steps = steps;
  }
  if (o.chunk < 1) o.chunk = 256;
  for (int i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] > rc->model.n_classes)
      db_fail("sample: label %d out of range 0..%d (%d = no class)", labels[i], rc->model.n_classes, rc->model.n_classes);
  int guided = o.guidance != 1.0;
  size_t img = (size_t)rc->model.in_ch * rc->model.img_h * rc->model.img_w;
  double *sig = db_malloc(((size_t)o.steps + 1) * sizeof *sig);
  if (sigmas) memcpy(sig, sigmas, ((size_t)o.steps + 1) * sizeof *sig);
  else edm_sigma_schedule(rc->edm, o.steps, o.rho, sig);
  db_arena *ar = db_arena_new(ctx, "sampler");
  int maxb = (o.chunk < n ? o.chunk : n) * (guided ? 2 : 1);
  db_tensor zdev = db_new(ar, 1, (int)(maxb * img), 0, 0, 0), coef = db_new(ar, 1, 4 * maxb, 0, 0, 0);
  db_tensor ldev = db_alloc(ar, DB_I32, 1, (int[]){maxb});
  dit_acts a = {0};
  float *z = db_malloc((size_t)o.chunk * img * sizeof *z), *D = db_malloc((size_t)o.chunk * img * sizeof *D);
  float *zE = db_malloc((size_t)o.chunk * img * sizeof *zE), *D2 = db_malloc((size_t)o.chunk * img * sizeof *D2);
  for (int start = 0; start < n; start += o.chunk) {
    int m = n - start < o.chunk ? n - start : o.chunk, nb = guided ? 2 * m : m;
    if (a.B != nb) {
      if (a.arena) dit_acts_free(&a);
      dit_acts_alloc(ctx, &a, &blocks[0], nb, 0);
    }
    /* z = σ_0 ε; sample i's noise is its own Philox stream, so results do not depend on the chunking */
    for (int i = 0; i < m; i++) {
      db_rng_normal_host(z + (size_t)i * img, img, o.seed, (uint64_t)(start + i) * ((img + 3) / 4));
      for (size_t k = 0; k < img; k++) z[(size_t)i * img + k] *= (float)sig[0];
    }
    for (int j = 0; j < o.steps; j++) {
      double s0 = sig[j], s1 = sig[j + 1];
      int bi = edm_block_of_sigma(rc->bounds, rc->blocks, s0);
      denoise(ctx, &blocks[bi], &a, zdev, ldev, coef, rc, z, labels + start, m, s0, o.guidance, D);
      if (fn) fn(user, start, m, j, s0, bi, z, D);
      size_t cnt = (size_t)m * img;
      if (!o.heun || s1 == 0) { /* Euler: z += (σ1 - σ0) (z - D)/σ0 */
        for (size_t k = 0; k < cnt; k++) z[k] = (float)(z[k] + (s1 - s0) * (z[k] - D[k]) / s0);
        continue;
      }
      for (size_t k = 0; k < cnt; k++) zE[k] = (float)(z[k] + (s1 - s0) * (z[k] - D[k]) / s0);
      int bj = edm_block_of_sigma(rc->bounds, rc->blocks, s1); /* the block that owns σ_{j+1} */
      denoise(ctx, &blocks[bj], &a, zdev, ldev, coef, rc, zE, labels + start, m, s1, o.guidance, D2);
      for (size_t k = 0; k < cnt; k++) {
        double d0 = (z[k] - D[k]) / s0, d1 = (zE[k] - D2[k]) / s1;
        z[k] = (float)(z[k] + (s1 - s0) * 0.5 * (d0 + d1));
      }
    }
    if (fn) fn(user, start, m, o.steps, sig[o.steps], -1, z, NULL);
    memcpy(out + (size_t)start * img, z, (size_t)m * img * sizeof *z);
  }
  if (a.arena) dit_acts_free(&a);
  db_arena_free(ar);
  free(sig); free(z); free(D); free(zE); free(D2);
}
