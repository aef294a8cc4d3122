/* linear: out = inp W^T + b against a double reference, gradients of all three. */
#include "harness.h"
#include <math.h>
#include <string.h>

typedef struct { int N, IC, OC, bias; } lin_cfg;

static void ref_fwd(th_op *op, double **in, double **out) {
  lin_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->OC; o++) {
      double s = c->bias ? in[2][o] : 0;
      for (int i = 0; i < c->IC; i++) s += in[0][(size_t)n * c->IC + i] * in[1][(size_t)o * c->IC + i];
      out[0][(size_t)n * c->OC + o] = s;
    }
}

static void ref_bwd(th_op *op, double **in, double **dout, double **din) {
  lin_cfg *c = op->cfg;
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->OC; o++) {
      double g = dout[0][(size_t)n * c->OC + o];
      for (int i = 0; i < c->IC; i++) {
        din[0][(size_t)n * c->IC + i] += g * in[1][(size_t)o * c->IC + i];
        din[1][(size_t)o * c->IC + i] += g * in[0][(size_t)n * c->IC + i];
      }
      if (c->bias) din[2][o] += g;
    }
}

static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  lin_cfg *c = op->cfg;
  linear_forward(ctx, out[0], in[0], in[1], c->bias ? in[2] : DB_NULL, c->N, c->IC, c->OC);
}

static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  lin_cfg *c = op->cfg;
  (void)out;
  linear_backward(ctx, din[0], din[1], c->bias ? din[2] : DB_NULL, dout[0], in[0], in[1], c->N, c->IC, c->OC,
                  LINEAR_DINP_ADD);
}

static void run(int N, int IC, int OC, int bias) {
  lin_cfg c = {N, IC, OC, bias};
  th_op op;
  th_op_init(&op, "linear");
  snprintf(op.shape, sizeof op.shape, "N=%d IC=%d OC=%d%s W=%d", N, IC, OC, bias ? "" : " nobias", elem_width(th_ctx));
  th_add_in(&op, "inp", (size_t)N * IC, 1);
  th_add_in(&op, "weight", (size_t)OC * IC, 1);
  if (bias) th_add_in(&op, "bias", (size_t)OC, 1);
  th_add_out(&op, "out", (size_t)N * OC);
  op.ref_fwd = ref_fwd;
  op.ref_bwd = ref_bwd;
  op.dev_fwd = dev_fwd;
  op.dev_bwd = dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

/* LINEAR_DINP_SET writes dinp without reading it: a dinp full of NaN comes
 * out equal, bit for bit, to LINEAR_DINP_ADD's onto zeros (same GEMM, beta 0
 * vs 1 onto 0); the weight gradient still accumulates. */
static void check_dinp_set(int N, int IC, int OC) {
  db_arena *a = db_arena_new(th_ctx, "linear dinp set");
  size_t ni = (size_t)N * IC, no = (size_t)N * OC, nw = (size_t)OC * IC;
  db_tensor x = db_new(a, 1, (int)ni, 0, 0, 0), w = db_new(a, 1, (int)nw, 0, 0, 0), dy = db_new(a, 1, (int)no, 0, 0, 0);
  db_tensor d_set = db_new(a, 1, (int)ni, 0, 0, 0), d_add = db_new(a, 1, (int)ni, 0, 0, 0);
  db_tensor dw_set = db_new(a, 1, (int)nw, 0, 0, 0), dw_add = db_new(a, 1, (int)nw, 0, 0, 0);
  /* every buffer written whole by the host (not db_fill/db_zero or device
   * RNG into a reused buffer: Oclgrind misreads those, docs/testing.md) */
  size_t nmax = ni > no ? ni : no;
  if (nw > nmax) nmax = nw;
  float *h = db_malloc(nmax * sizeof *h);
  db_rng_uniform_host(h, ni, 1, 0, -1.0f, 1.0f);
  db_upload(th_ctx, x, h);
  db_rng_uniform_host(h, nw, 2, 0, -1.0f, 1.0f);
  db_upload(th_ctx, w, h);
  db_rng_uniform_host(h, no, 3, 0, -1.0f, 1.0f);
  db_upload(th_ctx, dy, h);
  for (size_t i = 0; i < ni; i++) h[i] = NAN;
  db_upload(th_ctx, d_set, h);
  for (size_t i = 0; i < ni; i++) h[i] = 0.0f;
  db_upload(th_ctx, d_add, h);
  for (size_t i = 0; i < nw; i++) h[i] = 0.5f;
  db_upload(th_ctx, dw_set, h);
  db_upload(th_ctx, dw_add, h);
  free(h);
  linear_backward(th_ctx, d_set, dw_set, DB_NULL, dy, x, w, N, IC, OC, LINEAR_DINP_SET);
  linear_backward(th_ctx, d_add, dw_add, DB_NULL, dy, x, w, N, IC, OC, LINEAR_DINP_ADD);
  float *s = db_malloc(ni * sizeof *s), *r = db_malloc(ni * sizeof *r);
  float *ws = db_malloc(nw * sizeof *ws), *wr = db_malloc(nw * sizeof *wr);
  db_download(th_ctx, d_set, s);
  db_download(th_ctx, d_add, r);
  db_download(th_ctx, dw_set, ws);
  db_download(th_ctx, dw_add, wr);
  int same = !memcmp(s, r, ni * sizeof *s) && !memcmp(ws, wr, nw * sizeof *ws), nonzero = 0;
  for (size_t i = 0; i < ni; i++) nonzero |= r[i] != 0.0f;
  th_check(same && nonzero, "linear_backward LINEAR_DINP_SET overwrites a NaN dinp, equal to ADD onto zeros",
           "N=%d IC=%d OC=%d: %s", N, IC, OC, same ? "all zero" : "differs");
  free(s); free(r); free(ws); free(wr);
  db_arena_free(a);
}

void tests_linear(void) {
  static const int widths[] = {4, 16}; /* the bias kernel's GPU and CPU vector widths */
  for (int w = 0; w < 2; w++) {
    elem_force_width(widths[w]);
    run(1, 1, 1, 1);
    run(7, 33, 5, 1);
    if (th_small) { /* DBLOCKS_TEST_SMALL: the same cases at a tenth of the work */
      run(67, 24, 72, 1);
      run(33, 17, 9, 0);
      run(260, 16, 20, 1); /* more rows than a column-sum chunk (128): the two-pass bias gradient */
    } else {
      run(197, 24, 72, 1);
      run(33, 17, 9, 0);
      run(392, 64, 130, 1); /* weight gradient over many rows; the bias gradient in row chunks */
    }
  }
  elem_force_width(0);
  check_dinp_set(7, 33, 5);
  if (th_small) check_dinp_set(67, 24, 40);
  else check_dinp_set(197, 64, 130);
  TH_EXPECT_ERROR("linear_backward rejects an unknown dinp mode", "linear_backward: dinp_mode 0", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 2, 4, 8, 0, 0), w = db_new(a, 2, 3, 8, 0, 0), y = db_new(a, 2, 4, 3, 0, 0);
    linear_backward(th_ctx, x, w, DB_NULL, y, x, w, 4, 8, 3, 0);
  });
  TH_EXPECT_ERROR("linear rejects a wrong-sized weight", "linear_forward: argument weight", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 2, 4, 8, 0, 0), w = db_new(a, 2, 3, 7, 0, 0), y = db_new(a, 2, 4, 3, 0, 0);
    linear_forward(th_ctx, y, x, w, DB_NULL, 4, 8, 3);
  });
}
