/* embedding and timestep_embedding: plain-C double references, device
 * forward/backward, finite differences, determinism, shape errors. */
#include "harness.h"
#include <stdlib.h>

/* ---------------------------------------------------------------- embedding */
typedef struct { int N, C, V, oob; } emb_cfg; /* oob: plant out-of-range indices */

static void emb_init(th_op *op, double **in) {
  emb_cfg *c = op->cfg;
  if (!c->oob) return;
  in[0][0] = -1;           /* skipped: zero row, no gradient */
  in[0][c->N / 2] = c->V;  /* one past the end: likewise */
}

static int emb_valid(const emb_cfg *c, double v) { return v >= 0 && v < c->V; }

/* in: idx (N), table (V,C); out: out (N,C) */
static void emb_ref_fwd(th_op *op, double **in, double **out) {
  emb_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++)
    for (int j = 0; j < c->C; j++)
      out[0][(size_t)n * c->C + j] = emb_valid(c, in[0][n]) ? in[1][(size_t)in[0][n] * c->C + j] : 0.0;
}

static void emb_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  emb_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++)
    if (emb_valid(c, in[0][n]))
      for (int j = 0; j < c->C; j++) din[1][(size_t)in[0][n] * c->C + j] += dout[0][(size_t)n * c->C + j];
}

static void emb_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  emb_cfg *c = op->cfg;
  embedding_forward(ctx, out[0], in[0], in[1], c->N, c->C, c->V);
}

static void emb_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  emb_cfg *c = op->cfg;
  (void)out;
  embedding_backward(ctx, din[1], dout[0], in[0], c->N, c->C, c->V);
}

static void run_emb(int N, int V, int C, int oob) {
  emb_cfg c = {N, C, V, oob};
  th_op op;
  th_op_init(&op, "embedding");
  snprintf(op.shape, sizeof op.shape, "N=%d V=%d C=%d%s", N, V, C, oob ? " out-of-range" : "");
  th_add_in(&op, "idx", (size_t)N, 0);
  op.in_int[0] = V;
  th_add_in(&op, "table", (size_t)V * C, 1);
  th_add_out(&op, "out", (size_t)N * C);
  op.init = emb_init;
  op.ref_fwd = emb_ref_fwd;
  op.ref_bwd = emb_ref_bwd;
  op.dev_fwd = emb_dev_fwd;
  op.dev_bwd = emb_dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

/* Skewed indices (low rows hot), several index chunks, vocabulary blocks and
 * column tiles. The backward runs twice with one work-item per group (what
 * CPU drivers get) and twice with full work-groups (what GPUs get, forced
 * here through ctx->row_wg): every dtable element sums its rows in ascending
 * n either way, so all four results must agree bit for bit, and with a double
 * reference. */
static void emb_determinism(void) {
  /* small (DBLOCKS_TEST_SMALL): still 3 index chunks, 2 vocabulary blocks and
   * 2 column tiles at 256-item groups */
  const char *name = th_small ? "embedding backward deterministic N=700 V=300 C=300"
                              : "embedding backward deterministic N=5000 V=300 C=300";
  const int N = th_small ? 700 : 5000, V = 300, C = 300;
  size_t nt = (size_t)V * C;
  db_arena *a = db_arena_new(th_ctx, "embedding determinism");
  int *idx = db_malloc(N * sizeof *idx);
  float *dout = db_malloc((size_t)N * C * sizeof *dout), *res = db_malloc(4 * nt * sizeof *res);
  float *zero = db_calloc(nt, sizeof *zero);
  double *ref = db_calloc(nt, sizeof *ref), *u = db_malloc(N * sizeof *u);
  th_rand(u, N, 7, 0, 1);
  for (int n = 0; n < N; n++) {
    int v = (int)(u[n] * u[n] * u[n] * V);
    idx[n] = v < V ? v : V - 1;
  }
  db_rng_uniform_host(dout, (size_t)N * C, 8, 0, -1.0f, 1.0f);
  for (int n = 0; n < N; n++)
    for (int j = 0; j < C; j++) ref[(size_t)idx[n] * C + j] += dout[(size_t)n * C + j];
  int ishape[1] = {N};
  db_tensor ti = db_alloc(a, DB_I32, 1, ishape), td = th_tensor(a, (size_t)N * C), tt = th_tensor(a, nt);
  db_upload(th_ctx, ti, idx); /* its own buffer, written whole */
  th_upload(td, dout);
  size_t saved = th_ctx->row_wg;
  for (int rep = 0; rep < 4; rep++) {
    th_ctx->row_wg = rep < 2 ? 1 : th_ctx->wg;
    th_upload(tt, zero); /* not db_zero: Oclgrind misreads fills (docs/testing.md) */
    embedding_backward(th_ctx, tt, td, ti, N, C, V);
    db_download(th_ctx, tt, res + rep * nt);
  }
  th_ctx->row_wg = saved;
  double e = th_rel_err(res, ref, nt);
  int same = 1;
  for (int rep = 1; rep < 4; rep++) same &= !memcmp(res, res + rep * nt, nt * sizeof *res);
  th_check(same && e < 1e-5 && th_guards_ok(tt), name, "%s, error %.3e vs double reference%s",
           same ? "runs agree" : "runs differ", e, th_guards_ok(tt) ? "" : ", guard region overwritten");
  free(idx); free(dout); free(res); free(ref); free(u); free(zero);
  db_arena_free(a);
}

/* ---------------------------------------------------------------- timestep_embedding */
typedef struct { int N, D; double max_period; } te_cfg;

static double te_freq(const te_cfg *c, int k) { return exp(-log(c->max_period) * k / (c->D / 2)); }

/* in: t (N); out: out (N,D) */
static void te_ref_fwd(th_op *op, double **in, double **out) {
  te_cfg *c = op->cfg;
  int h = c->D / 2;
  for (int n = 0; n < c->N; n++)
    for (int k = 0; k < h; k++) {
      double a = in[0][n] * te_freq(c, k);
      out[0][(size_t)n * c->D + k] = cos(a);
      out[0][(size_t)n * c->D + h + k] = sin(a);
    }
}

static void te_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  te_cfg *c = op->cfg;
  int h = c->D / 2;
  for (int n = 0; n < c->N; n++) {
    const double *dy = dout[0] + (size_t)n * c->D;
    double s = 0;
    for (int k = 0; k < h; k++) {
      double f = te_freq(c, k), a = in[0][n] * f;
      s += f * (dy[h + k] * cos(a) - dy[k] * sin(a));
    }
    din[0][n] += s;
  }
}

static void te_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  te_cfg *c = op->cfg;
  timestep_embedding_forward(ctx, out[0], in[0], c->N, c->D, (float)c->max_period);
}

static void te_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  te_cfg *c = op->cfg;
  (void)out;
  timestep_embedding_backward(ctx, din[0], dout[0], in[0], c->N, c->D, (float)c->max_period);
}

static void run_te(int N, int D) {
  te_cfg c = {N, D, 10000.0};
  th_op op;
  th_op_init(&op, elem_width(th_ctx) == 4 ? "timestep_embedding W=4" : "timestep_embedding W=16");
  snprintf(op.shape, sizeof op.shape, "N=%d D=%d", N, D);
  th_add_in(&op, "t", (size_t)N, 1);
  op.in_lo[0] = -3; /* c_noise = ln(sigma)/4 */
  op.in_hi[0] = 3;
  th_add_out(&op, "out", (size_t)N * D);
  op.ref_fwd = te_ref_fwd;
  op.ref_bwd = te_ref_bwd;
  op.dev_fwd = te_dev_fwd;
  op.dev_bwd = te_dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

/* shape errors */
static db_tensor e_t, e_out, e_table, e_idx;
static void err_te_odd(void) {
  TH_EXPECT_ERROR("timestep_embedding rejects an odd D", "timestep_embedding_forward: D=7 must be even",
                  { timestep_embedding_forward(th_ctx, e_out, e_t, 4, 7, 10000.0f); });
}
static void err_emb_table(void) {
  TH_EXPECT_ERROR("embedding rejects a wrong-sized table", "embedding_backward: argument dtable",
                  { embedding_backward(th_ctx, e_table, e_out, e_idx, 4, 7, 6); });
}
static void shape_errors(void) {
  db_arena *a = db_arena_new(th_ctx, "embedding errors");
  int ishape[1] = {4};
  e_t = db_new(a, 1, 4, 0, 0, 0);
  e_out = db_new(a, 2, 4, 7, 0, 0);
  e_table = db_new(a, 2, 5, 7, 0, 0);
  e_idx = db_alloc(a, DB_I32, 1, ishape);
  err_te_odd();
  err_emb_table();
  db_arena_free(a);
}

void tests_embedding(void) {
  run_emb(1, 1, 1, 0);
  run_emb(33, 11, 7, 0);   /* repeated indices */
  run_emb(197, 50, 64, 0);
  run_emb(600, 300, 260, 1); /* several index chunks, vocabulary blocks and column tiles; out-of-range indices */
  emb_determinism();
  for (int w = 4; w <= 16; w += 12) { /* both vector widths; D/2 = 19 leaves a partial chunk */
    elem_force_width(w);
    run_te(1, 2);
    run_te(5, 38);
    run_te(7, 256);
  }
  elem_force_width(0);

  shape_errors();
}
