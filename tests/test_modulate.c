/* modulate and gated residual: per-sample AdaLN parameters broadcast over tokens,
 * read from column ranges of a packed (B, ld) modulation tensor. */
#include "harness.h"

typedef struct { int B, T, C, ld, c1, c2; } mod_cfg;

/* in[0] = x (B,T,C), in[1] = mod (B,ld); out = x (1 + mod[c2]) + mod[c1] */
static void mod_ref_fwd(th_op *op, double **in, double **out) {
  mod_cfg *c = op->cfg;
  for (int b = 0; b < c->B; b++)
    for (int t = 0; t < c->T; t++)
      for (int k = 0; k < c->C; k++) {
        size_t i = ((size_t)b * c->T + t) * c->C + k;
        const double *m = in[1] + (size_t)b * c->ld;
        out[0][i] = in[0][i] * (1 + m[c->c2 + k]) + m[c->c1 + k];
      }
}
static void mod_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  mod_cfg *c = op->cfg;
  for (int b = 0; b < c->B; b++)
    for (int t = 0; t < c->T; t++)
      for (int k = 0; k < c->C; k++) {
        size_t i = ((size_t)b * c->T + t) * c->C + k;
        size_t m = (size_t)b * c->ld;
        din[0][i] += dout[0][i] * (1 + in[1][m + c->c2 + k]);
        din[1][m + c->c1 + k] += dout[0][i];
        din[1][m + c->c2 + k] += dout[0][i] * in[0][i];
      }
}
static void mod_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  mod_cfg *c = op->cfg;
  modulate_forward(ctx, out[0], in[0], in[1], c->c1, c->c2, c->B, c->T, c->C, c->ld);
}
static void mod_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  mod_cfg *c = op->cfg;
  (void)out;
  modulate_backward(ctx, din[0], din[1], dout[0], in[0], in[1], c->c1, c->c2, c->B, c->T, c->C, c->ld);
}

/* in[0] = x, in[1] = y, in[2] = mod; out = x + mod[c1] y */
static void gr_ref_fwd(th_op *op, double **in, double **out) {
  mod_cfg *c = op->cfg;
  for (int b = 0; b < c->B; b++)
    for (size_t j = 0; j < (size_t)c->T * c->C; j++) {
      size_t i = (size_t)b * c->T * c->C + j;
      out[0][i] = in[0][i] + in[2][(size_t)b * c->ld + c->c1 + j % c->C] * in[1][i];
    }
}
static void gr_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  mod_cfg *c = op->cfg;
  for (int b = 0; b < c->B; b++)
    for (size_t j = 0; j < (size_t)c->T * c->C; j++) {
      size_t i = (size_t)b * c->T * c->C + j, g = (size_t)b * c->ld + c->c1 + j % c->C;
      din[0][i] += dout[0][i];
      din[1][i] += dout[0][i] * in[2][g];
      din[2][g] += dout[0][i] * in[1][i];
    }
}
static void gr_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  mod_cfg *c = op->cfg;
  gated_residual_forward(ctx, out[0], in[0], in[1], in[2], c->c1, c->B, c->T, c->C, c->ld);
}
static void gr_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  mod_cfg *c = op->cfg;
  (void)out;
  gated_residual_backward(ctx, din[0], din[1], din[2], dout[0], in[1], in[2], c->c1, c->B, c->T, c->C, c->ld);
}

static void run_modulate(int B, int T, int C) {
  mod_cfg c = {B, T, C, 6 * C, C, 4 * C}; /* shift at column C, scale at 4C, as in a packed AdaLN output */
  th_op op;
  th_op_init(&op, elem_width(th_ctx) == 4 ? "modulate W=4" : "modulate W=16");
  snprintf(op.shape, sizeof op.shape, "B=%d T=%d C=%d ld=%d", B, T, C, c.ld);
  th_add_in(&op, "inp", (size_t)B * T * C, 1);
  th_add_in(&op, "mod", (size_t)B * c.ld, 1);
  th_add_out(&op, "out", (size_t)B * T * C);
  op.ref_fwd = mod_ref_fwd;
  op.ref_bwd = mod_ref_bwd;
  op.dev_fwd = mod_dev_fwd;
  op.dev_bwd = mod_dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

static void run_gated(int B, int T, int C) {
  mod_cfg c = {B, T, C, 6 * C, 5 * C, 0};
  th_op op;
  th_op_init(&op, elem_width(th_ctx) == 4 ? "gated_residual W=4" : "gated_residual W=16");
  snprintf(op.shape, sizeof op.shape, "B=%d T=%d C=%d ld=%d", B, T, C, c.ld);
  th_add_in(&op, "x", (size_t)B * T * C, 1);
  th_add_in(&op, "y", (size_t)B * T * C, 1);
  th_add_in(&op, "mod", (size_t)B * c.ld, 1);
  th_add_out(&op, "out", (size_t)B * T * C);
  op.ref_fwd = gr_ref_fwd;
  op.ref_bwd = gr_ref_bwd;
  op.dev_fwd = gr_dev_fwd;
  op.dev_bwd = gr_dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
}

/* Both vector widths (16 floats per work-item, CPU; 4, GPU); C = 33 and 20
 * leave a partial last chunk in every row, C = 64 none. */
void tests_modulate(void) {
  for (int w = 4; w <= 16; w += 12) {
    elem_force_width(w);
    run_modulate(1, 1, 1);
    run_modulate(2, 7, 33);
    run_modulate(3, 197, 20);
    run_modulate(2, 5, 64);
  }
  elem_force_width(0);
  TH_EXPECT_ERROR("modulate rejects columns outside the mod rows", "do not fit", {
    db_arena *a = db_arena_new(th_ctx, "bad");
    db_tensor x = db_new(a, 3, 2, 3, 4, 0), m = db_new(a, 2, 2, 8, 0, 0);
    modulate_forward(th_ctx, x, x, m, 0, 6, 2, 3, 4, 8);
  });
}

void tests_gated_residual(void) {
  for (int w = 4; w <= 16; w += 12) {
    elem_force_width(w);
    run_gated(1, 1, 1);
    run_gated(2, 7, 33);
    run_gated(3, 197, 20);
    run_gated(2, 5, 64);
  }
  elem_force_width(0);
  /* in place: out aliases x */
  db_arena *a = db_arena_new(th_ctx, "inplace");
  int B = 2, T = 3, C = 5, ld = 5;
  float x[30], y[30], m[10], r[30];
  for (int i = 0; i < 30; i++) { x[i] = (float)i; y[i] = 1.0f + (float)i / 10; }
  for (int i = 0; i < 10; i++) m[i] = (float)i / 4;
  db_tensor tx = db_new(a, 3, B, T, C, 0), ty = db_new(a, 3, B, T, C, 0), tm = db_new(a, 2, B, ld, 0, 0);
  db_upload(th_ctx, tx, x);
  db_upload(th_ctx, ty, y);
  db_upload(th_ctx, tm, m);
  gated_residual_forward(th_ctx, tx, tx, ty, tm, 0, B, T, C, ld);
  db_download(th_ctx, tx, r);
  double err = 0;
  for (int i = 0; i < 30; i++) {
    double want = x[i] + m[(i / (T * C)) * ld + i % C] * y[i];
    if (fabs(r[i] - want) > err) err = fabs(r[i] - want);
  }
  th_check(err < 1e-6, "gated_residual in place (out aliases x)", "max abs err %g", err);
  /* backward without dx gives the same dy and dmod as with it */
  db_tensor dy1 = db_new(a, 3, B, T, C, 0), dy2 = db_new(a, 3, B, T, C, 0), dx = db_new(a, 3, B, T, C, 0);
  db_tensor dm1 = db_new(a, 2, B, ld, 0, 0), dm2 = db_new(a, 2, B, ld, 0, 0);
  /* zeros uploaded whole (not db_zero: Oclgrind misreads fills, docs/testing.md) */
  db_tensor bufs[5] = {dy1, dy2, dx, dm1, dm2};
  float zero[30] = {0};
  for (int i = 0; i < 5; i++) db_upload(th_ctx, bufs[i], zero);
  gated_residual_backward(th_ctx, dx, dy1, dm1, ty, ty, tm, 0, B, T, C, ld);
  gated_residual_backward(th_ctx, DB_NULL, dy2, dm2, ty, ty, tm, 0, B, T, C, ld);
  float h1[30], h2[30], g1[10], g2[10];
  db_download(th_ctx, dy1, h1);
  db_download(th_ctx, dy2, h2);
  db_download(th_ctx, dm1, g1);
  db_download(th_ctx, dm2, g2);
  th_check(!memcmp(h1, h2, sizeof h1) && !memcmp(g1, g2, sizeof g1), "gated_residual backward with dx = DB_NULL",
           "dy or dmod differ");
  db_arena_free(a);
}
