#include "diffusion.h"
#include "../data/json.h"
#include "../data/safetensors.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void run_config_defaults(run_config *rc) {
  memset(rc, 0, sizeof *rc);
  rc->model = (dit_config){.in_ch = 1, .img_h = 28, .img_w = 28, .patch = 2, .width = 384, .heads = 6,
                           .depth = 4, .n_classes = 10, .freq_dim = 256};
  rc->layers = 12;
  rc->blocks = 3;
  rc->edm = edm_default();
  rc->partition = EDM_PARTITION_EQUIPROB;
  rc->gamma = 0.1;
  rc->batch = 256;
  rc->lr = 2e-4;
  rc->weight_decay = 0.0;
  rc->clip = 1.0;
  rc->label_dropout = 0.1;
  rc->seed = 0;
  rc->schedule = SCHEDULE_SEQUENTIAL;
  rc->steps = 1000;
}

const char *partition_name(edm_partition_kind k) { return k == EDM_PARTITION_UNIFORM ? "uniform" : "equiprob"; }
const char *schedule_name(int s) { return s == SCHEDULE_RANDOM ? "random" : "sequential"; }

void run_config_finish(run_config *rc) {
  if (rc->blocks < 1 || rc->blocks > DB_MAX_BLOCKS) db_fail("--blocks %d: must be 1..%d", rc->blocks, DB_MAX_BLOCKS);
  if (rc->layers < rc->blocks || rc->layers % rc->blocks)
    db_fail("--layers %d must be a positive multiple of --blocks %d (each block gets L/B layers)", rc->layers, rc->blocks);
  if (rc->batch < 1) db_fail("--batch %d must be positive", rc->batch);
  if (rc->steps < 0) db_fail("--steps %d must not be negative", rc->steps);
  if (!(rc->lr > 0)) db_fail("--lr %g must be positive", rc->lr);
  if (rc->gamma < 0) db_fail("--gamma %g must not be negative", rc->gamma);
  if (rc->label_dropout < 0 || rc->label_dropout > 1) db_fail("--label-dropout %g must be in [0, 1]", rc->label_dropout);
  rc->model.depth = rc->layers / rc->blocks;
  dit_config_check(&rc->model);
  edm_partition(rc->edm, rc->blocks, rc->partition, rc->bounds);
}

/* ------------------------------------------------------------- manifest */
static void path_join(char *out, size_t n, const char *dir, const char *file) {
  if ((size_t)snprintf(out, n, "%s/%s", dir, file) >= n) db_fail("path too long: %s/%s", dir, file);
}

void manifest_write(const char *dir, const run_config *rc) {
  mkdir(dir, 0755);
  json_buf b = {0};
  const dit_config *m = &rc->model;
  json_buf_printf(&b, "{\n  \"format\": \"dblocks-diffusionblocks-1\",\n");
  json_buf_printf(&b, "  \"model\": {\"in_ch\": %d, \"img_h\": %d, \"img_w\": %d, \"patch\": %d, \"width\": %d, "
                      "\"heads\": %d, \"layers\": %d, \"blocks\": %d, \"layers_per_block\": %d, \"n_classes\": %d, "
                      "\"freq_dim\": %d},\n",
                  m->in_ch, m->img_h, m->img_w, m->patch, m->width, m->heads, rc->layers, rc->blocks, m->depth,
                  m->n_classes, m->freq_dim);
  json_buf_printf(&b, "  \"edm\": {\"p_mean\": %.17g, \"p_std\": %.17g, \"sigma_min\": %.17g, \"sigma_max\": %.17g, "
                      "\"sigma_data\": %.17g},\n",
                  rc->edm.p_mean, rc->edm.p_std, rc->edm.sigma_min, rc->edm.sigma_max, rc->edm.sigma_data);
  json_buf_printf(&b, "  \"partition\": {\"kind\": \"%s\", \"gamma\": %.17g, \"bounds\": [", partition_name(rc->partition),
                  rc->gamma);
  for (int k = 0; k <= rc->blocks; k++) json_buf_printf(&b, "%s%.17g", k ? ", " : "", rc->bounds[k]);
  json_buf_printf(&b, "]},\n");
  json_buf_printf(&b, "  \"training\": {\"batch\": %d, \"lr\": %.17g, \"weight_decay\": %.17g, \"clip\": %.17g, "
                      "\"label_dropout\": %.17g, \"seed\": %llu, \"schedule\": \"%s\", \"steps_per_block\": %d},\n",
                  rc->batch, rc->lr, rc->weight_decay, rc->clip, rc->label_dropout, (unsigned long long)rc->seed,
                  schedule_name(rc->schedule), rc->steps);
  json_buf_printf(&b, "  \"blocks\": [\n");
  for (int i = 0; i < rc->blocks; i++) {
    double lo, hi, tlo, thi;
    edm_block_range(rc->bounds, rc->blocks, i, &lo, &hi);
    edm_block_train_range(rc->edm, rc->bounds, rc->blocks, i, rc->gamma, &tlo, &thi);
    json_buf_printf(&b, "    {\"block\": %d, \"file\": \"block_%d.safetensors\", \"sigma_range\": [%.17g, %.17g], "
                        "\"train_range\": [%.17g, %.17g]}%s\n",
                    i, i, lo, hi, tlo, thi, i + 1 < rc->blocks ? "," : "");
  }
  json_buf_printf(&b, "  ]\n}\n");
  char path[1024];
  path_join(path, sizeof path, dir, "manifest.json");
  atomic_write_file(path, b.data, b.len);
  json_buf_free(&b);
}

static const json_value *need(const json_value *obj, const char *key, const char *path, const char *section) {
  const json_value *v = json_get(obj, key);
  if (!v) db_fail("manifest %s: missing \"%s\" in \"%s\"", path, key, section);
  return v;
}
static int need_int(const json_value *obj, const char *key, const char *path, const char *section) {
  long long x;
  if (!json_int(need(obj, key, path, section), &x) || x < 0 || x > 1 << 30)
    db_fail("manifest %s: \"%s.%s\" must be a non-negative integer", path, section, key);
  return (int)x;
}
static double need_num(const json_value *obj, const char *key, const char *path, const char *section) {
  const json_value *v = need(obj, key, path, section);
  if (v->type != JSON_NUMBER) db_fail("manifest %s: \"%s.%s\" must be a number", path, section, key);
  return v->number;
}
static const char *need_str(const json_value *obj, const char *key, const char *path, const char *section) {
  const char *s = json_str(need(obj, key, path, section));
  if (!s) db_fail("manifest %s: \"%s.%s\" must be a string", path, section, key);
  return s;
}

void manifest_read(const char *dir, run_config *rc) {
  char path[1024], err[256];
  path_join(path, sizeof path, dir, "manifest.json");
  size_t len;
  char *text = read_text_file(path, &len);
  json_value *root = json_parse(text, len, err, sizeof err);
  free(text);
  if (!root) db_fail("manifest %s: not valid JSON: %s", path, err);
  const char *fmt = json_str(json_get(root, "format"));
  if (!fmt || strcmp(fmt, "dblocks-diffusionblocks-1"))
    db_fail("manifest %s: not a dblocks manifest (format \"%s\")", path, fmt ? fmt : "missing");
  run_config_defaults(rc);
  const json_value *m = need(root, "model", path, "(top)"), *e = need(root, "edm", path, "(top)");
  const json_value *p = need(root, "partition", path, "(top)"), *t = need(root, "training", path, "(top)");
  rc->model.in_ch = need_int(m, "in_ch", path, "model");
  rc->model.img_h = need_int(m, "img_h", path, "model");
  rc->model.img_w = need_int(m, "img_w", path, "model");
  rc->model.patch = need_int(m, "patch", path, "model");
  rc->model.width = need_int(m, "width", path, "model");
  rc->model.heads = need_int(m, "heads", path, "model");
  rc->layers = need_int(m, "layers", path, "model");
  rc->blocks = need_int(m, "blocks", path, "model");
  rc->model.n_classes = need_int(m, "n_classes", path, "model");
  rc->model.freq_dim = need_int(m, "freq_dim", path, "model");
  rc->edm.p_mean = need_num(e, "p_mean", path, "edm");
  rc->edm.p_std = need_num(e, "p_std", path, "edm");
  rc->edm.sigma_min = need_num(e, "sigma_min", path, "edm");
  rc->edm.sigma_max = need_num(e, "sigma_max", path, "edm");
  rc->edm.sigma_data = need_num(e, "sigma_data", path, "edm");
  const char *kind = need_str(p, "kind", path, "partition");
  if (!strcmp(kind, "equiprob")) rc->partition = EDM_PARTITION_EQUIPROB;
  else if (!strcmp(kind, "uniform")) rc->partition = EDM_PARTITION_UNIFORM;
  else db_fail("manifest %s: unknown partition kind \"%s\"", path, kind);
  rc->gamma = need_num(p, "gamma", path, "partition");
  rc->batch = need_int(t, "batch", path, "training");
  rc->lr = need_num(t, "lr", path, "training");
  rc->weight_decay = need_num(t, "weight_decay", path, "training");
  rc->clip = need_num(t, "clip", path, "training");
  rc->label_dropout = need_num(t, "label_dropout", path, "training");
  long long seed;
  if (!json_int(need(t, "seed", path, "training"), &seed) || seed < 0) db_fail("manifest %s: bad training.seed", path);
  rc->seed = (uint64_t)seed;
  const char *sched = need_str(t, "schedule", path, "training");
  if (!strcmp(sched, "sequential")) rc->schedule = SCHEDULE_SEQUENTIAL;
  else if (!strcmp(sched, "random")) rc->schedule = SCHEDULE_RANDOM;
  else db_fail("manifest %s: unknown schedule \"%s\"", path, sched);
  rc->steps = need_int(t, "steps_per_block", path, "training");
  /* the stored bounds must be what this configuration gives */
  const json_value *jb = need(p, "bounds", path, "partition");
  run_config_finish(rc);
  if (json_len(jb) != (size_t)rc->blocks + 1) db_fail("manifest %s: partition.bounds has %zu entries, expected %d", path, json_len(jb), rc->blocks + 1);
  for (int k = 0; k <= rc->blocks; k++)
    if (fabs(json_num(json_at(jb, (size_t)k), -1) - rc->bounds[k]) > 1e-9 * rc->bounds[k])
      db_fail("manifest %s: partition bound %d is %.10g, the configuration gives %.10g", path, k,
              json_num(json_at(jb, (size_t)k), -1), rc->bounds[k]);
  json_free(root);
}

void manifest_check_match(const run_config *h, const run_config *w, const char *path) {
#define CHECK_I(field, name)                                                                                 \
  if (h->field != w->field)                                                                                  \
    db_fail("manifest %s: %s is %lld there but %lld here; use a new --out directory or the same settings", path, \
            name, (long long)h->field, (long long)w->field);
#define CHECK_D(field, name)                                                                                 \
  if (fabs(h->field - w->field) > 1e-12 * fabs(h->field))                                                    \
    db_fail("manifest %s: %s is %g there but %g here; use a new --out directory or the same settings", path, name, \
            h->field, w->field);
  CHECK_I(model.in_ch, "image channels") CHECK_I(model.img_h, "image height") CHECK_I(model.img_w, "image width")
  CHECK_I(model.patch, "--patch") CHECK_I(model.width, "--width") CHECK_I(model.heads, "--heads")
  CHECK_I(layers, "--layers") CHECK_I(blocks, "--blocks") CHECK_I(model.n_classes, "classes")
  CHECK_I(model.freq_dim, "freq_dim") CHECK_I(partition, "--partition") CHECK_D(gamma, "--gamma")
  CHECK_I(batch, "--batch") CHECK_D(lr, "--lr") CHECK_D(weight_decay, "--weight-decay") CHECK_D(clip, "--clip")
  CHECK_D(label_dropout, "--label-dropout") CHECK_I(seed, "--seed") CHECK_I(schedule, "--schedule")
  CHECK_D(edm.p_mean, "P_mean") CHECK_D(edm.p_std, "P_std") CHECK_D(edm.sigma_min, "sigma_min")
  CHECK_D(edm.sigma_max, "sigma_max") CHECK_D(edm.sigma_data, "sigma_data")
#undef CHECK_I
#undef CHECK_D
}

/* ------------------------------------------------------------- block files */
void block_file(char *out, size_t n, const char *dir, int block) {
  char name[64];
  snprintf(name, sizeof name, "block_%d.safetensors", block);
  path_join(out, n, dir, name);
}

void block_save(db_ctx *ctx, const char *dir, int block, dit_block *b, int steps_done) {
  param_set *ps = &b->ps;
  int with_opt = ps->m != NULL, n = ps->n * (with_opt ? 3 : 1);
  st_tensor_in *t = calloc((size_t)n, sizeof *t);
  char **names = calloc((size_t)n, sizeof *names);
  float **bufs = calloc((size_t)n, sizeof *bufs);
  for (int k = 0; k < n; k++) {
    int i = k % ps->n, kind = k / ps->n; /* 0 params, 1 exp_avg, 2 exp_avg_sq */
    db_tensor src = kind == 0 ? ps->p[i] : kind == 1 ? ps->m[i] : ps->v[i];
    size_t len = strlen(ps->names[i]) + 32;
    names[k] = malloc(len);
    snprintf(names[k], len, "%s%s", kind == 0 ? "" : kind == 1 ? "optim.exp_avg." : "optim.exp_avg_sq.", ps->names[i]);
    bufs[k] = malloc(db_nbytes(src));
    db_download(ctx, src, bufs[k]);
    t[k].name = names[k];
    t[k].ndim = src.ndim;
    memcpy(t[k].shape, src.shape, sizeof t[k].shape);
    t[k].data = bufs[k];
  }
  char sblock[16], ssteps[32], sdepth[16], swidth[16], path[1024];
  snprintf(sblock, sizeof sblock, "%d", block);
  snprintf(ssteps, sizeof ssteps, "%d", steps_done);
  snprintf(sdepth, sizeof sdepth, "%d", b->cfg.depth);
  snprintf(swidth, sizeof swidth, "%d", b->cfg.width);
  const char *meta[] = {"format", "dblocks-diffusionblocks-1", "block", sblock, "steps_done", ssteps,
                        "layers", sdepth, "width", swidth};
  block_file(path, sizeof path, dir, block);
  st_write(path, t, n, meta, 5);
  for (int k = 0; k < n; k++) { free(names[k]); free(bufs[k]); }
  free(t); free(names); free(bufs);
}

static void load_tensor(db_ctx *ctx, const st_file *f, const char *path, const char *name, db_tensor dst) {
  const st_tensor *s = st_find(f, name);
  if (!s) db_fail("checkpoint %s: tensor %s is missing", path, name);
  int same = s->ndim == dst.ndim;
  for (int d = 0; same && d < dst.ndim; d++) same = s->shape[d] == dst.shape[d];
  if (!same)
    db_fail("checkpoint %s: tensor %s has %d dims / %zu elements, the configuration expects %d dims / %zu", path,
            name, s->ndim, s->numel, dst.ndim, db_numel(dst));
  db_upload(ctx, dst, s->data);
}

int block_load(db_ctx *ctx, const char *dir, int block, dit_block *b) {
  char path[1024];
  block_file(path, sizeof path, dir, block);
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  st_file f = st_read(path);
  const char *sb = st_meta(&f, "block"), *ss = st_meta(&f, "steps_done");
  if (!sb || atoi(sb) != block) db_fail("checkpoint %s: holds block %s, expected block %d", path, sb ? sb : "(none)", block);
  char *end;
  long steps = ss ? strtol(ss, &end, 10) : -1;
  if (!ss || *end || steps < 0) db_fail("checkpoint %s: missing or bad steps_done", path);
  param_set *ps = &b->ps;
  char name[300];
  for (int i = 0; i < ps->n; i++) {
    load_tensor(ctx, &f, path, ps->names[i], ps->p[i]);
    if (!ps->m) continue;
    snprintf(name, sizeof name, "optim.exp_avg.%s", ps->names[i]);
    if (!st_find(&f, name)) {
      if (steps > 0) db_fail("checkpoint %s: no optimizer state, cannot resume training from it", path);
      continue;
    }
    load_tensor(ctx, &f, path, name, ps->m[i]);
    snprintf(name, sizeof name, "optim.exp_avg_sq.%s", ps->names[i]);
    load_tensor(ctx, &f, path, name, ps->v[i]);
  }
  st_free(&f);
  return (int)steps;
}

/* ------------------------------------------------------------- sampling */
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
  CL_CHECK(clEnqueueWriteBuffer(ctx->queue, zt.mem, CL_FALSE, zt.offset, n * img * 4, z, 0, NULL, NULL));
  if (guided) CL_CHECK(clEnqueueWriteBuffer(ctx->queue, zt.mem, CL_FALSE, zt.offset + n * img * 4, n * img * 4, z, 0, NULL, NULL));
  int *lab = malloc((size_t)nb * sizeof *lab);
  for (int i = 0; i < nb; i++) lab[i] = i < n ? labels[i] : rc->model.n_classes;
  db_tensor lt = db_view(ldev, 0, 1, (int[]){nb});
  db_upload(ctx, lt, lab);
  free(lab);
  dit_inputs in = {zt, fill_vec(ctx, db_view(coef, 0, 1, (int[]){nb}), nb, (float)pc.c_in),
                   fill_vec(ctx, db_view(coef, (size_t)a->B, 1, (int[]){nb}), nb, (float)pc.c_noise),
                   fill_vec(ctx, db_view(coef, 2 * (size_t)a->B, 1, (int[]){nb}), nb, (float)pc.c_skip),
                   fill_vec(ctx, db_view(coef, 3 * (size_t)a->B, 1, (int[]){nb}), nb, (float)pc.c_out), lt};
  dit_block_forward(ctx, b, a, &in);
  float *out = malloc(nb * img * sizeof *out);
  CL_CHECK(clEnqueueReadBuffer(ctx->queue, a->D.mem, CL_TRUE, a->D.offset, nb * img * 4, out, 0, NULL, NULL));
  for (size_t i = 0; i < n * img; i++) D[i] = guided ? (float)(out[n * img + i] + s * (out[i] - out[n * img + i])) : out[i];
  free(out);
}

void sample_images(db_ctx *ctx, dit_block *blocks, const run_config *rc, const int *labels, int n, sampler_opts o,
                   float *out) {
  if (n < 1) db_fail("sample: need at least one sample, got %d", n);
  if (o.steps < 2) db_fail("sample: --steps %d: need at least 2", o.steps);
  if (o.chunk < 1) o.chunk = 256;
  for (int i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] > rc->model.n_classes)
      db_fail("sample: label %d out of range 0..%d (%d = no class)", labels[i], rc->model.n_classes, rc->model.n_classes);
  int guided = o.guidance != 1.0;
  size_t img = (size_t)rc->model.in_ch * rc->model.img_h * rc->model.img_w;
  double *sig = malloc(((size_t)o.steps + 1) * sizeof *sig);
  edm_sigma_schedule(rc->edm, o.steps, o.rho, sig);
  db_arena *ar = db_arena_new(ctx, "sampler");
  int maxb = (o.chunk < n ? o.chunk : n) * (guided ? 2 : 1);
  db_tensor zdev = db_new(ar, 1, (int)(maxb * img), 0, 0, 0), coef = db_new(ar, 1, 4 * maxb, 0, 0, 0);
  db_tensor ldev = db_alloc(ar, DB_I32, 1, (int[]){maxb});
  dit_acts a = {0};
  float *z = malloc((size_t)o.chunk * img * sizeof *z), *D = malloc((size_t)o.chunk * img * sizeof *D);
  float *zE = malloc((size_t)o.chunk * img * sizeof *zE), *D2 = malloc((size_t)o.chunk * img * sizeof *D2);
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
    memcpy(out + (size_t)start * img, z, (size_t)m * img * sizeof *z);
  }
  if (a.arena) dit_acts_free(&a);
  db_arena_free(ar);
  free(sig); free(z); free(D); free(zE); free(D2);
}
