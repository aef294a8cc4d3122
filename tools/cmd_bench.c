/* `dblocks bench ops`: time per call of every op at training shapes, with the
 * device name, from device events (markers around the calls), after warm-up.
 * GFLOP/s for GEMM-bound work, GB/s (bytes that must move at least once) for
 * memory-bound ops. --json FILE (ops and train) also writes the rows, with
 * the device and driver, as JSON. */
#include "../models/image_task.h"
#include "../models/lm_sampler.h"
#include "../models/lm_task.h"
#include "../data/file_io.h"
#include "run_opts.h"
#include "cli.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  db_ctx *ctx;
  double min_seconds; /* keep repeating until this much device time */
  int max_reps;
} bench_env;

typedef void (*bench_fn)(db_ctx *ctx, void *arg);

/* Warm-up call, then repeated calls between two markers. Returns ms per call. */
static double time_op(bench_env *env, bench_fn fn, void *arg) {
  fn(env->ctx, arg);
  db_finish(env->ctx);
  int reps = 1;
  double ms = 0;
  for (;;) {
    cl_event t0 = db_marker(env->ctx);
    for (int i = 0; i < reps; i++) fn(env->ctx, arg);
    cl_event t1 = db_marker(env->ctx);
    ms = db_marker_interval_ms(t0, t1);
    if (ms >= env->min_seconds * 1e3 || reps >= env->max_reps) break;
    int want = ms > 0 ? (int)(reps * env->min_seconds * 1e3 / ms * 1.2) + 1 : reps * 10;
    reps = want > env->max_reps ? env->max_reps : want;
  }
  return ms / reps;
}

/* Rows collected for --json (NULL when not asked for). */
static json_t *json_rows;

static void json_row(json_t *r) {
  if (json_rows) json_array_append_new(json_rows, r);
  else json_decref(r);
}

/* {"bench": what, "device", "platform", "version", "driver", "rows"} to path, atomically. */
static void write_json(const char *path, const char *what, db_ctx *ctx) {
  json_t *root = json_object();
  json_object_set_new(root, "bench", json_string(what));
  json_object_set_new(root, "device", json_string(ctx->dev.name));
  json_object_set_new(root, "platform", json_string(ctx->dev.platform_name));
  json_object_set_new(root, "version", json_string(ctx->dev.version));
  json_object_set_new(root, "driver", json_string(ctx->dev.driver));
  json_object_set_new(root, "rows", json_rows);
  json_rows = NULL;
  char *text = json_dumps(root, JSON_INDENT(2));
  json_decref(root);
  if (!text) db_fail("bench: cannot format the JSON results");
  atomic_write_file(path, text, strlen(text));
  free(text);
}

static void row(const char *op, const char *shape, double ms, double flops, double bytes) {
  json_row(json_pack("{s:s, s:s, s:f, s:f, s:f}", "op", op, "shape", shape, "ms", ms, "gflops",
                     flops > 0 ? flops / ms * 1e-6 : 0.0, "gbs", bytes > 0 ? bytes / ms * 1e-6 : 0.0));
  printf("%-26s %-30s %11.3f", op, shape, ms);
  if (flops > 0) printf(" %12.1f", flops / ms * 1e-6); else printf(" %12s", "-");
  if (bytes > 0) printf(" %10.1f", bytes / ms * 1e-6); else printf(" %10s", "-");
  printf("\n");
  fflush(stdout);
}

/* ---- individual benchmarks */
typedef struct { db_tensor a, b, c; gemm_config cfg; int ta, tb, M, N, K; } gemm_arg;
static void run_gemm(db_ctx *ctx, void *p) {
  gemm_arg *g = p;
  gemm_with(ctx, &g->cfg, g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->a, g->ta ? g->M : g->K, 0, g->b,
            g->tb ? g->K : g->N, 0, 0.0f, g->c, g->N, 0, 1);
}

typedef struct { db_tensor in, out; int n4; } copy_arg;
static void run_copy(db_ctx *ctx, void *p) {
  copy_arg *c = p;
  cl_kernel k = db_kernel(ctx, "gemm", "gemm_copy4");
  CL_CHECK(clSetKernelArg(k, 0, sizeof(cl_mem), &c->out.mem));
  CL_CHECK(clSetKernelArg(k, 1, sizeof(cl_mem), &c->in.mem));
  CL_CHECK(clSetKernelArg(k, 2, sizeof(int), &c->n4));
  size_t local = 64, global = ((size_t)c->n4 + local - 1) / local * local;
  CL_CHECK(clEnqueueNDRangeKernel(ctx->queue, k, 1, NULL, &global, &local, 0, NULL, NULL));
}

typedef struct { db_tensor out, mean, rstd, inp, dinp, mod, y, dmod; int N, C, B, T; } elt_arg;
static void run_ln_fwd(db_ctx *ctx, void *p) { elt_arg *e = p; layernorm_forward(ctx, e->out, e->mean, e->rstd, e->inp, e->N, e->C, 1e-6f); }
static void run_ln_bwd(db_ctx *ctx, void *p) { elt_arg *e = p; layernorm_backward(ctx, e->dinp, e->out, e->inp, e->mean, e->rstd, e->N, e->C); }
static void run_mod_fwd(db_ctx *ctx, void *p) { elt_arg *e = p; modulate_forward(ctx, e->out, e->inp, e->mod, 0, e->C, e->B, e->T, e->C, 6 * e->C); }
static void run_mod_bwd(db_ctx *ctx, void *p) { elt_arg *e = p; modulate_backward(ctx, e->dinp, e->dmod, e->out, e->inp, e->mod, 0, e->C, e->B, e->T, e->C, 6 * e->C); }
static void run_gr_fwd(db_ctx *ctx, void *p) { elt_arg *e = p; gated_residual_forward(ctx, e->out, e->inp, e->y, e->mod, 2 * e->C, e->B, e->T, e->C, 6 * e->C); }
static void run_gelu_fwd(db_ctx *ctx, void *p) { elt_arg *e = p; gelu_forward(ctx, e->out, e->inp, (size_t)e->N * e->C); }
static void run_gelu_bwd(db_ctx *ctx, void *p) { elt_arg *e = p; gelu_backward(ctx, e->dinp, e->out, e->inp, (size_t)e->N * e->C); }

typedef struct { db_tensor out, lse, qkv, dqkv, dsum; int B, T, C, NH; } attn_arg;
static void run_attn_fwd(db_ctx *ctx, void *p) {
  attn_arg *a = p;
  attention_forward(ctx, a->out, a->lse, a->qkv, DB_NULL, ATTN_BIDIRECTIONAL, a->B, a->T, a->C, a->NH);
}
static void run_attn_bwd(db_ctx *ctx, void *p) {
  attn_arg *a = p;
  attention_backward(ctx, a->dqkv, a->dsum, a->out, a->out, a->lse, a->qkv, DB_NULL, ATTN_BIDIRECTIONAL, a->B, a->T,
                     a->C, a->NH);
}

typedef struct {
  dit_layer_config cfg; dit_layer_params p, g; dit_layer_acts acts; dit_workspace ws;
  db_tensor x, c, out, dx, dc; int B, T;
} layer_arg;
static void run_layer(db_ctx *ctx, void *v) {
  layer_arg *l = v;
  dit_layer_forward(ctx, l->out, &l->acts, l->x, l->c, &l->p, &l->ws, l->cfg);
  dit_layer_backward(ctx, l->dx, l->dc, &l->g, l->out, &l->acts, l->x, l->c, &l->p, &l->ws, l->cfg);
}

typedef struct { db_tensor p[1], g[1], m[1], v[1], normsq; int decay[1]; } adam_arg;
static void run_adam(db_ctx *ctx, void *v) {
  adam_arg *a = v;
  adamw_config cfg = {2e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f};
  adamw_update(ctx, a->p, a->g, a->m, a->v, a->decay, 1, a->normsq, cfg, 1);
}

/* One product, as gemm() dispatches it (the tuned or default choice for its
 * shape class), then as CLBlast with its default parameters (pass 0), or as
 * CLBlast with the cache's tuned parameters (pass 1). */
static void bench_gemm_shape(bench_env *env, int pass, const char *what, int ta, int tb, int M, int N, int K) {
  db_arena *a = db_arena_new(env->ctx, "bench gemm");
  gemm_arg g = {db_new(a, 1, M * K, 0, 0, 0), db_new(a, 1, K * N, 0, 0, 0), db_new(a, 1, M * N, 0, 0, 0),
                gemm_choose(env->ctx, ta, tb, M, N, K, 1), ta, tb, M, N, K};
  db_rng_uniform(env->ctx, g.a, 1, 0, -1, 1);
  db_rng_uniform(env->ctx, g.b, 2, 0, -1, 1);
  char shape[64], label[64];
  snprintf(shape, sizeof shape, "%s %c%c M=%d N=%d K=%d", what, ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K);
  double flops = 2.0 * M * N * (double)K;
  if (pass == 0) {
    if (!g.cfg.clblast) {
      snprintf(label, sizeof label, "gemm (choice: own)");
      row(label, shape, time_op(env, run_gemm, &g), flops, 0);
    }
    g.cfg = (gemm_config){.clblast = 1};
    row("gemm (CLBlast default)", shape, time_op(env, run_gemm, &g), flops, 0);
  } else {
    if (g.cfg.clblast) row("gemm (choice: CLBlast tuned)", shape, time_op(env, run_gemm, &g), flops, 0);
    else {
      g.cfg = (gemm_config){.clblast = 1};
      row("gemm (CLBlast tuned)", shape, time_op(env, run_gemm, &g), flops, 0);
    }
  }
  db_arena_free(a);
}

/* The square sizes, then the linears of the DiT at width 384 (M = 32 x 196
 * tokens) and of the demo model at width 64 (M = 64 x 49), forward (NT). */
/* Pass 0 keeps CLBlast on its defaults (CLBlast cannot undo an override, so
 * it runs first); pass 1, when the cache holds CLBlast parameters from
 * `dblocks tune --clblast-params`, times CLBlast with them. */
static void bench_gemms(bench_env *env, const int *sizes, int n, int quick) {
  char desc[512];
  int tuned = gemm_clblast_tuned(env->ctx, desc, sizeof desc);
  if (!gemm_clblast_defaults(1)) printf("(CLBlast's parameters were overridden already: its default rows are tuned)\n");
  for (int pass = 0; pass < 1 + tuned; pass++) {
    if (pass == 1) {
      gemm_clblast_defaults(0);
      printf("CLBlast tuned: Xgemm %s\n", desc);
    }
    for (int i = 0; i < n; i++) bench_gemm_shape(env, pass, "square", 0, 0, sizes[i], sizes[i], sizes[i]);
    const int io[4][2] = {{1, 3}, {1, 1}, {1, 4}, {4, 1}};
    const int widths[2][2] = {{6272, 384}, {3136, 64}};
    for (int w = quick ? 1 : 0; w < 2; w++)
      for (int i = 0; i < 4; i++) {
        int M = widths[w][0], C = widths[w][1];
        bench_gemm_shape(env, pass, "linear", 0, 1, quick ? M / 8 : M, io[i][1] * C, io[i][0] * C);
      }
  }
  gemm_clblast_defaults(0);
}

/* Device copy bandwidth: the roof for every memory-bound row (read + write). */
static void bench_copy(bench_env *env, int n) {
  db_arena *a = db_arena_new(env->ctx, "bench copy");
  copy_arg c = {db_new(a, 1, n, 0, 0, 0), db_new(a, 1, n, 0, 0, 0), n / 4};
  db_zero(env->ctx, c.in);
  char shape[64];
  snprintf(shape, sizeof shape, "%d MiB float4 copy", (int)((size_t)n * 4 >> 20));
  row("copy (bandwidth roof)", shape, time_op(env, run_copy, &c), 0, 2.0 * n * 4);
  db_arena_free(a);
}

static void bench_elementwise(bench_env *env, int B, int T, int C) {
  db_arena *a = db_arena_new(env->ctx, "bench elementwise");
  int N = B * T;
  elt_arg e = {db_new(a, 2, N, 4 * C, 0, 0), db_new(a, 1, N, 0, 0, 0), db_new(a, 1, N, 0, 0, 0),
               db_new(a, 2, N, 4 * C, 0, 0), db_new(a, 2, N, 4 * C, 0, 0), db_new(a, 2, B, 6 * C, 0, 0),
               db_new(a, 2, N, C, 0, 0), db_new(a, 2, B, 6 * C, 0, 0), N, C, B, T};
  db_rng_uniform(env->ctx, e.inp, 3, 0, -1, 1);
  db_rng_uniform(env->ctx, e.mod, 4, 0, -1, 1);
  db_rng_uniform(env->ctx, e.y, 5, 0, -1, 1);
  /* views of the first N*C elements for the C-wide ops */
  elt_arg n1 = e;
  int sh[2] = {N, C};
  n1.out = db_view(e.out, 0, 2, sh);
  n1.inp = db_view(e.inp, 0, 2, sh);
  n1.dinp = db_view(e.dinp, 0, 2, sh);
  char shape[64];
  double nc = (double)N * C * 4;
  snprintf(shape, sizeof shape, "N=%d C=%d", N, C);
  row("layernorm forward", shape, time_op(env, run_ln_fwd, &n1), 0, 2 * nc);
  row("layernorm backward", shape, time_op(env, run_ln_bwd, &n1), 0, 4 * nc);
  snprintf(shape, sizeof shape, "B=%d T=%d C=%d", B, T, C);
  row("modulate forward", shape, time_op(env, run_mod_fwd, &n1), 0, 2 * nc);
  row("modulate backward", shape, time_op(env, run_mod_bwd, &n1), 0, 4 * nc);
  row("gated residual forward", shape, time_op(env, run_gr_fwd, &n1), 0, 3 * nc);
  snprintf(shape, sizeof shape, "n=%d", N * 4 * C);
  elt_arg e4 = e; /* the MLP's 4C-wide hidden layer */
  e4.C = 4 * C;
  row("gelu forward", shape, time_op(env, run_gelu_fwd, &e4), 0, 2 * nc * 4);
  row("gelu backward", shape, time_op(env, run_gelu_bwd, &e4), 0, 3 * nc * 4);
  db_arena_free(a);
}

static void bench_attention_shape(bench_env *env, int B, int T, int C, int NH) {
  db_arena *a = db_arena_new(env->ctx, "bench attention");
  int hs = C / NH;
  attn_arg t = {db_new(a, 3, B, T, C, 0), db_new(a, 3, B, NH, T, 0), db_new(a, 3, B, T, 3 * C, 0),
                db_new(a, 3, B, T, 3 * C, 0), db_new(a, 3, B, NH, T, 0), B, T, C, NH};
  db_rng_uniform(env->ctx, t.qkv, 6, 0, -1, 1);
  db_zero(env->ctx, t.dqkv);
  char shape[64];
  snprintf(shape, sizeof shape, "B=%d T=%d C=%d NH=%d", B, T, C, NH);
  double flops = 4.0 * B * NH * (double)T * T * hs;
  row("attention forward", shape, time_op(env, run_attn_fwd, &t), flops, 0);
  row("attention backward", shape, time_op(env, run_attn_bwd, &t), 2 * flops, 0);
  db_arena_free(a);
}

/* The DiT training shape asked for, and the small model's (width 64, 4 heads,
 * 49 tokens) at twice the batch. */
static void bench_attention(bench_env *env, int B, int T, int C, int NH) {
  bench_attention_shape(env, B, T, C, NH);
  bench_attention_shape(env, 2 * B, 49, 64, 4);
}

static void bench_layer(bench_env *env, int B, int T, int C, int NH) {
  db_arena *a = db_arena_new(env->ctx, "bench layer");
  layer_arg l;
  l.cfg = (dit_layer_config){C, NH};
  l.B = B;
  l.T = T;
  dit_layer_alloc_params(a, l.cfg, &l.p);
  dit_layer_alloc_params(a, l.cfg, &l.g);
  for (int i = 0; i < DIT_NPARAMS; i++) {
    db_rng_uniform(env->ctx, l.p.t[i], 10, (uint64_t)i << 32, -0.05f, 0.05f);
    db_zero(env->ctx, l.g.t[i]);
  }
  dit_layer_alloc_acts(a, l.cfg, B, T, &l.acts);
  dit_workspace_alloc(a, l.cfg, B, T, &l.ws);
  l.x = db_new(a, 3, B, T, C, 0);
  l.out = db_new(a, 3, B, T, C, 0);
  l.dx = db_new(a, 3, B, T, C, 0);
  l.c = db_new(a, 2, B, C, 0, 0);
  l.dc = db_new(a, 2, B, C, 0, 0);
  db_rng_normal(env->ctx, l.x, 11, 0, 0, 1);
  db_rng_normal(env->ctx, l.c, 12, 0, 0, 1);
  db_zero(env->ctx, l.dx);
  db_zero(env->ctx, l.dc);
  char shape[64];
  snprintf(shape, sizeof shape, "B=%d T=%d C=%d NH=%d", B, T, C, NH);
  double tokens = (double)B * T;
  /* forward GEMM flops 2*12C^2 per token + attention 4 T C per token; backward twice that */
  double flops = 3.0 * (tokens * 24.0 * C * C + 4.0 * tokens * T * C);
  double ms = time_op(env, run_layer, &l);
  row("DiT layer fwd+bwd", shape, ms, flops, 0);
  printf("%-26s %-30s %11.1f MiB device memory for one layer (params, grads, activations, scratch)\n", "",
         "", db_arena_bytes(a) / 1048576.0);
  db_arena_free(a);
}

static void bench_adamw(bench_env *env, int n) {
  db_arena *a = db_arena_new(env->ctx, "bench adamw");
  adam_arg t;
  t.p[0] = db_new(a, 1, n, 0, 0, 0);
  t.g[0] = db_new(a, 1, n, 0, 0, 0);
  t.m[0] = db_new(a, 1, n, 0, 0, 0);
  t.v[0] = db_new(a, 1, n, 0, 0, 0);
  t.normsq = db_new(a, 1, 1, 0, 0, 0);
  t.decay[0] = 1;
  db_rng_uniform(env->ctx, t.g[0], 13, 0, -1, 1);
  db_zero(env->ctx, t.p[0]);
  db_zero(env->ctx, t.m[0]);
  db_zero(env->ctx, t.v[0]);
  char shape[64];
  snprintf(shape, sizeof shape, "n=%d (norm + update)", n);
  row("adamw", shape, time_op(env, run_adam, &t), 0, 4.0 * n * 7);
  db_arena_free(a);
}

/* ---- bench train: one optimizer step of the whole L-layer model (B = 1)
 * against one block of L/B layers. The step is trainer_step, the very
 * function `dblocks train` runs (batch staging, noise, forward, loss,
 * backward, AdamW, the loss read every --log-every steps), on a synthetic
 * dataset of the same image size. */
typedef struct { trainer *t; } step_bench;
static void run_train_step(db_ctx *ctx, void *v) {
  (void)ctx;
  trainer_step(((step_bench *)v)->t, 0);
}

/* Returns ms/step; *peak = device bytes at the peak of this configuration
 * (model, training state, activations, batch; not the synthetic dataset). */
/* ms/step of block 0 of any task; *peak: device bytes allocated from here on
 * at the peak (model, training state, activations, batch; not the task's data). */
static double bench_task_step(bench_env *env, const run_config *rc, train_task *task, size_t *peak) {
  size_t base = db_live_bytes();
  db_reset_peak();
  train_opts o = {0};
  o.rc = *rc;
  o.only_block = 0;
  o.log_every = 10;
  trainer *t = trainer_create(env->ctx, &o, task);
  trainer_block_begin(t, 0);
  step_bench s = {t};
  double ms = time_op(env, run_train_step, &s);
  *peak = db_peak_bytes() - base;
  trainer_destroy(t);
  return ms;
}

static double bench_train_config(bench_env *env, const run_config *rc, const idx_dataset *ds, size_t *peak) {
  train_task *task = image_task_create(env->ctx, rc, ds, "synthetic");
  double ms = bench_task_step(env, rc, task, peak);
  image_task_destroy(task);
  return ms;
}

static int bench_train(int argc, char **argv) {
  run_opts r;
  run_opts_init(&r);
  const char *device = NULL;
  double min_s = 0.3;
  const char *json_path = NULL;
  cli_opt opts[RUN_OPTS_MAX + 5];
  int n = run_opts_table(&r, opts, TASK_IMAGE);
  opts[n++] = (cli_opt){"device", OPT_STR, &device, "P:D device"};
  opts[n++] = (cli_opt){"json", OPT_STR, &json_path, "also write the results as JSON to this file"};
  opts[n++] = (cli_opt){"seconds", OPT_FLOAT, &min_s, "device time to accumulate per row after warm-up (default 0.3)"};
  cli_parse("bench train",
            "dblocks bench train [options]\n  one training step (forward, backward, AdamW) of the whole L-layer model (B = 1)\n"
            "  and of one block of L/B layers: ms/step, samples/s and peak device memory side by side.\n"
            "  Default: width 384, 6 heads, patch 2 (196 tokens), batch 256 on a GPU (32 otherwise), L = 12, B = 3.",
            opts, n, argc - 1, argv + 1, NULL, NULL);
  if (min_s <= 0) db_fail("bench train: --seconds %g must be positive", min_s);
  run_config rc;
  run_config_defaults(&rc);
  run_opts_apply(&r, &rc, "bench train");
  run_config_finish(&rc);
  db_ctx *ctx = db_init(device);
  int batch_given = 0;
  for (int i = 0; i < run_field_count; i++) batch_given |= r.text[i] && !strcmp(run_fields[i].key, "batch");
  if (!batch_given && (ctx->dev.type & CL_DEVICE_TYPE_GPU) == 0) rc.batch = 32;
  bench_env env = {ctx, min_s, 50};
  printf("dblocks bench train on %s (%s; %s, driver %s)\n", ctx->dev.name, ctx->dev.platform_name, ctx->dev.version,
         ctx->dev.driver);
  printf("DiT width %d, %d heads, patch %d (%d tokens), batch %d, L = %d, B = %d; fp32; one step = what `dblocks train` runs\n\n",
         rc.model.width, rc.model.heads, rc.model.patch,
         (rc.model.img_h / rc.model.patch) * (rc.model.img_w / rc.model.patch), rc.batch, rc.layers, rc.blocks);
  printf("%-30s %10s %12s %12s\n", "configuration", "ms/step", "samples/s", "peak MiB");
  if (json_path) json_rows = json_array();
  idx_dataset ds = image_synthetic_dataset(1024, rc.model.img_h, rc.model.img_w, rc.model.n_classes, 7);
  run_config full = rc;
  full.blocks = 1;
  run_config_finish(&full);
  size_t peak_full, peak_block;
  double ms_full = bench_train_config(&env, &full, &ds, &peak_full);
  char label[64];
  snprintf(label, sizeof label, "end to end, %d layers (B=1)", rc.layers);
  printf("%-30s %10.1f %12.1f %12.1f\n", label, ms_full, rc.batch / ms_full * 1e3, peak_full / 1048576.0);
  json_row(json_pack("{s:s, s:i, s:f, s:f, s:f}", "configuration", label, "batch", rc.batch, "ms_per_step", ms_full,
                     "samples_per_s", rc.batch / ms_full * 1e3, "peak_mib", peak_full / 1048576.0));
  fflush(stdout);
  double ms_block = bench_train_config(&env, &rc, &ds, &peak_block);
  snprintf(label, sizeof label, "one block, %d layers (B=%d)", rc.model.depth, rc.blocks);
  printf("%-30s %10.1f %12.1f %12.1f\n", label, ms_block, rc.batch / ms_block * 1e3, peak_block / 1048576.0);
  json_row(json_pack("{s:s, s:i, s:f, s:f, s:f}", "configuration", label, "batch", rc.batch, "ms_per_step", ms_block,
                     "samples_per_s", rc.batch / ms_block * 1e3, "peak_mib", peak_block / 1048576.0));
  printf("\nblock peak / end-to-end peak = %.3f (1/B = %.3f)\n", (double)peak_block / (double)peak_full, 1.0 / rc.blocks);
  idx_free(&ds);
  if (json_path) write_json(json_path, "train", ctx);
  db_shutdown(ctx);
  return 0;
}


/* ---- bench lm: the language model's training step, whole model (B = 1) vs
 * one block, and generation tokens/s, B = 1 vs B blocks. Training steps are
 * trainer_step as in bench train, on a synthetic byte corpus; generation is
 * lm_generate (what `dblocks lm-sample` runs) on freshly initialised blocks:
 * speed does not depend on the weights. The log-normal noise law (speed does
 * not depend on it either, and it needs no entropy curve). */
static double bench_lm_config(bench_env *env, const run_config *rc, const text_corpus *c, size_t *peak) {
  train_task *task = lm_task_create(env->ctx, rc, c);
  double ms = bench_task_step(env, rc, task, peak);
  lm_task_destroy(task);
  return ms;
}

/* tokens/s of R prompts of P bytes continued by n bytes, M steps per byte */
static double bench_lm_generate(db_ctx *ctx, const run_config *rc, int R, int P, int n, int M) {
  lm_model m = {0};
  m.rc = *rc;
  lm_config cfg = lm_config_of(rc);
  m.blocks = db_calloc((size_t)rc->blocks, sizeof *m.blocks);
  for (int b = 0; b < rc->blocks; b++) {
    lm_block_create(ctx, &m.blocks[b], cfg, "bench block");
    lm_block_init(ctx, &m.blocks[b], 1, (uint64_t)b);
  }
  m.E = lm_embedding_host(rc);
  unsigned char *prompts = db_malloc((size_t)R * P), *out = db_malloc((size_t)R * n);
  for (int i = 0; i < R * P; i++) prompts[i] = (unsigned char)('a' + i % 26);
  lm_sample_opts o = {M, 7, 0, 3, LM_STEPS_RHO};
  lm_generate(ctx, &m, prompts, R, P, 2, o, out, NULL, NULL); /* warm-up: kernels built, buffers made */
  double secs = lm_generate(ctx, &m, prompts, R, P, n, o, out, NULL, NULL);
  free(prompts);
  free(out);
  lm_model_free(&m);
  return (double)R * n / secs;
}

static int bench_lm(int argc, char **argv) {
  run_opts r;
  run_opts_init(&r);
  const char *device = NULL, *json_path = NULL;
  double min_s = 0.3;
  int gen_tokens = 32, gen_steps = 50, gen_batch = 16;
  cli_opt opts[RUN_OPTS_MAX + 8];
  int n = run_opts_table(&r, opts, TASK_LM);
  opts[n++] = (cli_opt){"device", OPT_STR, &device, "P:D device"};
  opts[n++] = (cli_opt){"json", OPT_STR, &json_path, "also write the results as JSON to this file"};
  opts[n++] = (cli_opt){"seconds", OPT_FLOAT, &min_s, "device time to accumulate per row after warm-up (default 0.3)"};
  opts[n++] = (cli_opt){"gen-tokens", OPT_INT, &gen_tokens, "bytes generated per sequence in the generation rows (default 32)"};
  opts[n++] = (cli_opt){"gen-steps", OPT_INT, &gen_steps, "Euler steps per byte in the generation rows (default 50)"};
  opts[n++] = (cli_opt){"gen-batch", OPT_INT, &gen_batch, "sequences generated at once in the batched generation rows (default 16)"};
  cli_parse("bench lm",
            "dblocks bench lm [options]\n  the language model: one training step of the whole L-layer model (B = 1) and of one\n"
            "  block of L/B layers (ms/step, tokens/s, peak device memory), then generation tokens/s, B = 1 vs B.\n"
            "  Default on a GPU: the paper's shape, width 768, 12 heads, L = 12, B = 4, context 256, batch 64;\n"
            "  elsewhere width 256, 4 heads, L = 8, B = 4, context 128, batch 16.",
            opts, n, argc - 1, argv + 1, NULL, NULL);
  if (min_s <= 0) db_fail("bench lm: --seconds %g must be positive", min_s);
  if (gen_tokens < 1 || gen_steps < 2 || gen_batch < 1)
    db_fail("bench lm: --gen-tokens %d, --gen-steps %d, --gen-batch %d: want >= 1, >= 2, >= 1", gen_tokens, gen_steps, gen_batch);
  db_ctx *ctx = db_init(device);
  int gpu = (ctx->dev.type & CL_DEVICE_TYPE_GPU) != 0;
  run_config rc;
  run_config_defaults_task(&rc, TASK_LM);
  if (gpu) {
    rc.model.width = 768; rc.model.heads = 12; rc.layers = 12; rc.lm.context = 256; rc.batch = 64;
  } else {
    rc.model.width = 256; rc.model.heads = 4; rc.layers = 8; rc.lm.context = 128; rc.batch = 16;
  }
  rc.lm.noise = LM_NOISE_LOGNORMAL;
  run_opts_apply(&r, &rc, "bench lm");
  run_config_finish(&rc);
  bench_env env = {ctx, min_s, 50};
  int T = rc.lm.context;
  printf("dblocks bench lm on %s (%s; %s, driver %s)\n", ctx->dev.name, ctx->dev.platform_name, ctx->dev.version,
         ctx->dev.driver);
  printf("LM width %d, %d heads, context %d ([noisy | clean]: %d rows per sequence), batch %d, L = %d, B = %d; fp32\n\n",
         rc.model.width, rc.model.heads, T, 2 * T, rc.batch, rc.layers, rc.blocks);
  printf("%-30s %10s %12s %12s\n", "training step", "ms/step", "tokens/s", "peak MiB");
  if (json_path) json_rows = json_array();
  text_corpus c = {0};
  c.n_train = (size_t)1 << 20;
  c.train = db_malloc(c.n_train);
  for (size_t i = 0; i < c.n_train; i++) c.train[i] = (unsigned char)(32 + (i * 2654435761u >> 7) % 95);
  snprintf(c.source, sizeof c.source, "synthetic");
  run_config full = rc;
  full.blocks = 1;
  run_config_finish(&full);
  size_t peaks[2];
  const run_config *cfgs[2] = {&full, &rc};
  for (int k = 0; k < 2; k++) {
    double ms = bench_lm_config(&env, cfgs[k], &c, &peaks[k]);
    char label[64];
    if (k == 0) snprintf(label, sizeof label, "end to end, %d layers (B=1)", rc.layers);
    else snprintf(label, sizeof label, "one block, %d layers (B=%d)", rc.layers / rc.blocks, rc.blocks);
    double tps = (double)rc.batch * T / ms * 1e3;
    printf("%-30s %10.1f %12.0f %12.1f\n", label, ms, tps, peaks[k] / 1048576.0);
    json_row(json_pack("{s:s, s:i, s:i, s:f, s:f, s:f}", "configuration", label, "batch", rc.batch, "context", T,
                       "ms_per_step", ms, "tokens_per_s", tps, "peak_mib", peaks[k] / 1048576.0));
    fflush(stdout);
  }
  printf("\nblock peak / end-to-end peak = %.3f (1/B = %.3f)\n\n", (double)peaks[1] / (double)peaks[0], 1.0 / rc.blocks);
  printf("generation: prompts of 32 bytes, %d bytes each, %d Euler steps per byte\n", gen_tokens, gen_steps);
  printf("%-30s %12s %12s\n", "model", "1 sequence", "batch");
  double gen[2][2];
  for (int k = 0; k < 2; k++) {
    for (int j = 0; j < 2; j++) gen[k][j] = bench_lm_generate(ctx, cfgs[k], j ? gen_batch : 1, 32, gen_tokens, gen_steps);
    char label[64];
    snprintf(label, sizeof label, "B=%d (%d layers per step)", cfgs[k]->blocks, rc.layers / cfgs[k]->blocks);
    printf("%-30s %10.1f/s %9.1f/s  (batch %d)\n", label, gen[k][0], gen[k][1], gen_batch);
    json_row(json_pack("{s:s, s:i, s:i, s:f, s:i, s:f}", "generation", label, "steps", gen_steps, "tokens", gen_tokens,
                       "tokens_per_s_1", gen[k][0], "batch", gen_batch, "tokens_per_s_batch", gen[k][1]));
    fflush(stdout);
  }
  printf("\ngeneration speed-up of B=%d over B=1: %.2fx (1 sequence), %.2fx (batch %d)\n", rc.blocks,
         gen[1][0] / gen[0][0], gen[1][1] / gen[0][1], gen_batch);
  free(c.train);
  if (json_path) write_json(json_path, "lm", ctx);
  db_shutdown(ctx);
  return 0;
}

int cmd_bench(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "train")) return bench_train(argc, argv);
  if (argc > 1 && !strcmp(argv[1], "lm")) return bench_lm(argc, argv);
  const char *device = NULL;
  int batch = 0, quick = 0;
  double min_s = 0.3;
  const char *json_path = NULL;
  int gemm_only = 0;
  cli_opt opts[] = {
      {"json", OPT_STR, &json_path, "also write the rows as JSON to this file"},
      {"gemm", OPT_FLAG, &gemm_only, "only the copy and GEMM rows"},
      {"device", OPT_STR, &device, "P:D device (default: DBLOCKS_DEVICE, else first GPU, else first device)"},
      {"batch", OPT_INT, &batch, "batch for the layer/attention rows (default 256 on a GPU, 32 otherwise)"},
      {"seconds", OPT_FLOAT, &min_s, "device time to accumulate per row after warm-up (default 0.3)"},
      {"quick", OPT_FLAG, &quick, "small sizes only (SGEMM n=256,512; batch 4): a smoke test"},
  };
  char *pos[1];
  int npos = 1;
  cli_parse("bench", "dblocks bench ops [options]\n  times every op at DiT training shapes; GEMM as dispatched (tuned or default choice)\n"
            "  against CLBlast's defaults at n = 1024, 2048 and the linears' shapes; device copy bandwidth",
            opts, (int)(sizeof opts / sizeof *opts), argc, argv, pos, &npos);
  if (npos != 1 || strcmp(pos[0], "ops") != 0)
    db_fail("bench: say what to benchmark: `dblocks bench ops`, `dblocks bench train` or `dblocks bench lm` (see `dblocks bench --help`)");
  if (batch < 0) db_fail("bench: --batch %d must be positive (0: the default)", batch);
  if (min_s <= 0) db_fail("bench: --seconds %g must be positive", min_s);
  db_ctx *ctx = db_init(device);
  bench_env env = {ctx, min_s, 1000};
  int gpu = (ctx->dev.type & CL_DEVICE_TYPE_GPU) != 0;
  if (batch <= 0) batch = quick ? 4 : gpu ? 256 : 32;
  printf("dblocks bench ops on %s (%s; %s, driver %s)\n", ctx->dev.name, ctx->dev.platform_name, ctx->dev.version,
         ctx->dev.driver);
  printf("timing: device events between markers after one warm-up call, >= %.2f s per row\n\n", min_s);
  printf("%-26s %-30s %11s %12s %10s\n", "op", "shape", "ms/call", "GFLOP/s", "GB/s");
  if (json_path) json_rows = json_array();
  int big[2] = {1024, 2048}, small[2] = {256, 512};
  bench_copy(&env, quick ? 1 << 20 : 1 << 24);
  bench_gemms(&env, quick ? small : big, 2, quick);
  int T = 196, C = 384, NH = 6;
  if (gemm_only) goto done;
  bench_elementwise(&env, batch, T, C);
  bench_attention(&env, batch, T, C, NH);
  bench_adamw(&env, 12 * C * C * 4 + 12 * C * 6 * C); /* about one 12-layer DiT's weights, by 4 */
  bench_layer(&env, batch, T, C, NH);
done:
  if (json_path) write_json(json_path, "ops", ctx);
  db_shutdown(ctx);
  return 0;
}
