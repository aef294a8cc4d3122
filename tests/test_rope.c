/* rope: plain-C double reference (angles in double), device forward and
 * backward, finite differences through th_run_op. The op works in place, so
 * the test's forward copies the input into the output tensor (a whole-buffer
 * upload with its guards) and rotates that; the backward rotates a copy of
 * dout by -theta and adds it to the pre-filled gradient on the host (the op
 * itself is the in-place exception to +=). Odd N, ld > ncols (columns past
 * ncols pass through), hs 2..128, pos0 > 0, period 1 and > 1, positions up to
 * 4095 (the angle error grows with pos: the tolerance says how much). */
#include "harness.h"
#include <stdlib.h>

typedef struct { int N, ncols, ld, hs, pos0, period; float base; int scratch_guards_ok; } rope_cfg;

/* rotates rows of x (N, ld) by sign * theta, in double */
static void ref_rotate(const rope_cfg *c, const double *x, double *y, double sign) {
  int half = c->hs / 2;
  memcpy(y, x, (size_t)c->N * c->ld * sizeof *y);
  for (int r = 0; r < c->N; r++) {
    double pos = c->pos0 + r % c->period;
    for (int h = 0; h < c->ncols / c->hs; h++)
      for (int i = 0; i < half; i++) {
        double th = sign * pos * pow((double)c->base, -2.0 * i / c->hs), cs = cos(th), sn = sin(th);
        size_t e = (size_t)r * c->ld + (size_t)h * c->hs + i;
        double a = x[e], b = x[e + half];
        y[e] = a * cs - b * sn;
        y[e + half] = b * cs + a * sn;
      }
  }
}

static void ref_fwd(th_op *op, double **in, double **out) { ref_rotate(op->cfg, in[0], out[0], 1.0); }

/* y = R x, so dx += R^T dy = R(-theta) dy */
static void ref_bwd(th_op *op, double **in, double **dout, double **din) {
  rope_cfg *c = op->cfg;
  (void)in;
  size_t n = (size_t)c->N * c->ld;
  double *g = db_malloc(n * sizeof *g);
  ref_rotate(c, dout[0], g, -1.0);
  for (size_t i = 0; i < n; i++) din[0][i] += g[i];
  free(g);
}

static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  rope_cfg *c = op->cfg;
  size_t n = (size_t)c->N * c->ld;
  float *f = db_malloc(n * sizeof *f);
  db_download(ctx, in[0], f);
  th_upload(out[0], f);
  free(f);
  rope_forward(ctx, out[0], c->N, c->ncols, c->ld, c->hs, c->pos0, c->period, c->base);
}

static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  rope_cfg *c = op->cfg;
  (void)in;
  (void)out;
  size_t n = (size_t)c->N * c->ld;
  float *g = db_malloc(n * sizeof *g), *d = db_malloc(n * sizeof *d);
  db_tensor t = th_tensor(op->arena, n);
  db_download(ctx, dout[0], g);
  th_upload(t, g);
  rope_backward(ctx, t, c->N, c->ncols, c->ld, c->hs, c->pos0, c->period, c->base);
  db_download(ctx, t, g);
  c->scratch_guards_ok = th_guards_ok(t);
  db_download(ctx, din[0], d);
  for (size_t i = 0; i < n; i++) d[i] += g[i];
  th_upload(din[0], d);
  free(g);
  free(d);
}

static void run(int N, int ncols, int ld, int hs, int pos0, int period) {
  rope_cfg c = {N, ncols, ld, hs, pos0, period, 10000.0f, 0};
  th_op op;
  th_op_init(&op, "rope");
  snprintf(op.shape, sizeof op.shape, "N=%d ncols=%d ld=%d hs=%d pos0=%d period=%d", N, ncols, ld, hs, pos0, period);
  th_add_in(&op, "x", (size_t)N * ld, 1);
  th_add_out(&op, "out", (size_t)N * ld);
  /* float angles: inv_freq carries a few 1e-7 of relative error, so theta
   * up to pos * 4e-7 radians (measured: 1.1e-4 at pos 4095 on PoCL) */
  int maxpos = pos0 + (N < period ? N : period) - 1;
  op.tol_fwd = op.tol_bwd = 2e-6 + 1e-7 * maxpos;
  op.ref_fwd = ref_fwd;
  op.ref_bwd = ref_bwd;
  op.dev_fwd = dev_fwd;
  op.dev_bwd = dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
  char name[200];
  snprintf(name, sizeof name, "rope %s: backward scratch guard regions intact", op.shape);
  th_check(c.scratch_guards_ok, name, "guard region overwritten by rope_backward");
}

static void bad_call(int ncols, int ld, int hs) {
  db_arena *a = db_arena_new(th_ctx, "bad");
  db_tensor x = db_new(a, 2, 3, ld, 0, 0);
  rope_forward(th_ctx, x, 3, ncols, ld, hs, 0, 1, 10000.0f);
}

void tests_rope(void) {
  static const int full[][6] = {
      /* N, ncols, ld, hs, pos0, period */
      {1, 2, 2, 2, 0, 1},         {7, 16, 25, 8, 3, 1},       {18, 128, 192, 64, 0, 9},
      {5, 256, 384, 128, 5, 2},   {33, 12, 13, 6, 4000, 1},   {97, 128, 130, 128, 3999, 97},
      {31, 20, 30, 10, 0, 7}},
                   small[][6] = {{1, 2, 2, 2, 0, 1}, {7, 16, 25, 8, 3, 1}, {6, 64, 97, 32, 0, 3},
                                 {3, 256, 300, 128, 4000, 1}};
  if (th_small)
    for (int i = 0; i < 4; i++) run(small[i][0], small[i][1], small[i][2], small[i][3], small[i][4], small[i][5]);
  else
    for (int i = 0; i < 7; i++) run(full[i][0], full[i][1], full[i][2], full[i][3], full[i][4], full[i][5]);
  TH_EXPECT_ERROR("rope rejects an odd head size", "rope_forward: head size hs=5 must be even", bad_call(10, 12, 5));
  TH_EXPECT_ERROR("rope rejects ncols not a multiple of hs", "rope_forward: ncols=12 is not a multiple of the head size hs=8",
                  bad_call(12, 16, 8));
  TH_EXPECT_ERROR("rope rejects ncols > ld", "rope_forward: ncols=16 exceeds the row length ld=12", bad_call(16, 12, 8));
  TH_EXPECT_ERROR("rope rejects a wrong-sized x", "rope_forward: argument x", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 2, 3, 10, 0, 0);
    rope_forward(th_ctx, x, 3, 8, 12, 8, 0, 1, 10000.0f);
  });
  TH_EXPECT_ERROR("rope_backward rejects period 0", "rope_backward: need period >= 1", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 2, 3, 8, 0, 0);
    rope_backward(th_ctx, x, 3, 8, 8, 8, 0, 0, 10000.0f);
  });
}
