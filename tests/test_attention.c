/* attention: plain-C double reference forward/backward for the three modes,
 * device vs reference and finite differences through th_run_op, plus
 * hand-written checks: exact zeros where masked, zero output for a query that
 * sees no key, causal == bidirectional with a lower-triangular mask, and the
 * shape errors. */
#include "harness.h"
#include <stdlib.h>

typedef struct {
  int B, T, C, NH, mode;
  db_tensor qkvr, scratch;  /* saved by dev_fwd for dev_bwd */
  int checked_mask;         /* dev_fwd ran the mask checks below */
  int mask_zeros_ok;        /* att exactly 0 at every masked (i,j) */
  int dead_rows, dead_rows_ok; /* queries that see no key, and whether their outputs are exactly 0 */
  int scratch_guards_ok;    /* guard regions of qkvr/scratch/dqkvr/datt intact */
  int checked_guards;
} at_cfg;

static const char *mode_name(int mode) {
  return mode == ATTN_CAUSAL ? "causal" : mode == ATTN_MASK ? "mask" : "bidirectional";
}

static int visible(const at_cfg *c, const double *mask, int i, int j) {
  if (c->mode == ATTN_CAUSAL) return j <= i;
  if (c->mode == ATTN_MASK) return mask[(size_t)i * c->T + j] != 0;
  return 1;
}

/* element d of section s (0 q, 1 k, 2 v) of head h of token t of sample b */
static double qkv_at(const at_cfg *c, const double *x, int b, int t, int s, int h, int d) {
  int hs = c->C / c->NH;
  return x[((size_t)b * c->T + t) * 3 * c->C + (size_t)s * c->C + (size_t)h * hs + d];
}

/* P (T,T): softmax probabilities of head h of sample b; 0 where invisible. */
static void ref_probs(const at_cfg *c, const double *x, const double *mask, int b, int h, double *P) {
  int T = c->T, hs = c->C / c->NH;
  double scale = 1.0 / sqrt((double)hs);
  for (int i = 0; i < T; i++) {
    double *p = P + (size_t)i * T, mx = -INFINITY;
    for (int j = 0; j < T; j++) {
      p[j] = 0;
      if (!visible(c, mask, i, j)) continue;
      double s = 0;
      for (int d = 0; d < hs; d++) s += qkv_at(c, x, b, i, 0, h, d) * qkv_at(c, x, b, j, 1, h, d);
      p[j] = s * scale;
      if (p[j] > mx) mx = p[j];
    }
    if (mx == -INFINITY) continue; /* sees no key: all zeros */
    double sum = 0;
    for (int j = 0; j < T; j++)
      if (visible(c, mask, i, j)) sum += (p[j] = exp(p[j] - mx));
    for (int j = 0; j < T; j++) p[j] /= sum;
  }
}

static void ref_fwd(th_op *op, double **in, double **out) {
  at_cfg *c = op->cfg;
  int T = c->T, hs = c->C / c->NH;
  const double *mask = c->mode == ATTN_MASK ? in[1] : NULL;
  double *P = db_malloc((size_t)T * T * sizeof *P);
  for (int b = 0; b < c->B; b++)
    for (int h = 0; h < c->NH; h++) {
      ref_probs(c, in[0], mask, b, h, P);
      memcpy(out[1] + ((size_t)b * c->NH + h) * T * T, P, (size_t)T * T * sizeof *P);
      for (int i = 0; i < T; i++)
        for (int d = 0; d < hs; d++) {
          double s = 0;
          for (int j = 0; j < T; j++) s += P[(size_t)i * T + j] * qkv_at(c, in[0], b, j, 2, h, d);
          out[0][((size_t)b * T + i) * c->C + (size_t)h * hs + d] = s;
        }
    }
  free(P);
}

static void ref_bwd(th_op *op, double **in, double **dout, double **din) {
  at_cfg *c = op->cfg;
  int T = c->T, C = c->C, hs = C / c->NH;
  double scale = 1.0 / sqrt((double)hs);
  const double *mask = c->mode == ATTN_MASK ? in[1] : NULL;
  double *P = db_malloc((size_t)T * T * sizeof *P), *dP = db_malloc((size_t)T * T * sizeof *dP);
  for (int b = 0; b < c->B; b++)
    for (int h = 0; h < c->NH; h++) {
      ref_probs(c, in[0], mask, b, h, P);
      const double *dO = dout[0] + (size_t)b * T * C + (size_t)h * hs; /* row i at dO[i*C + d] */
      double *dx = din[0] + (size_t)b * T * 3 * C + (size_t)h * hs;    /* token t, section s at dx[t*3C + s*C + d] */
      for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
          double s = 0;
          for (int d = 0; d < hs; d++) s += dO[(size_t)i * C + d] * qkv_at(c, in[0], b, j, 2, h, d);
          dP[(size_t)i * T + j] = s;
        }
      for (int j = 0; j < T; j++) /* dv */
        for (int d = 0; d < hs; d++) {
          double s = 0;
          for (int i = 0; i < T; i++) s += P[(size_t)i * T + j] * dO[(size_t)i * C + d];
          dx[(size_t)j * 3 * C + 2 * C + d] += s;
        }
      for (int i = 0; i < T; i++) { /* softmax backward, scale included */
        double s = 0;
        for (int j = 0; j < T; j++) s += P[(size_t)i * T + j] * dP[(size_t)i * T + j];
        for (int j = 0; j < T; j++) dP[(size_t)i * T + j] = scale * P[(size_t)i * T + j] * (dP[(size_t)i * T + j] - s);
      }
      for (int i = 0; i < T; i++) /* dq = dpre @ k, dk = dpre^T @ q */
        for (int j = 0; j < T; j++) {
          double g = dP[(size_t)i * T + j];
          if (g == 0) continue;
          for (int d = 0; d < hs; d++) {
            dx[(size_t)i * 3 * C + d] += g * qkv_at(c, in[0], b, j, 1, h, d);
            dx[(size_t)j * 3 * C + C + d] += g * qkv_at(c, in[0], b, i, 0, h, d);
          }
        }
    }
  free(P);
  free(dP);
}

/* Random 0/1 mask (about 70% visible); query (T-1)/2 sees nothing, and for
 * T >= 3 the last query sees only key 0. */
static void init_mask(th_op *op, double **in) {
  at_cfg *c = op->cfg;
  if (c->mode != ATTN_MASK) return;
  int T = c->T;
  double *m = in[1];
  for (size_t i = 0; i < (size_t)T * T; i++) m[i] = m[i] > -0.4 ? 1.0 : 0.0;
  for (int j = 0; j < T; j++) m[(size_t)((T - 1) / 2) * T + j] = 0;
  if (T >= 3)
    for (int j = 0; j < T; j++) m[(size_t)(T - 1) * T + j] = j == 0;
}

static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  at_cfg *c = op->cfg;
  int T = c->T, hs = c->C / c->NH;
  size_t sec = (size_t)c->B * c->NH * T * hs;
  c->qkvr = th_tensor(op->arena, 3 * sec);
  c->scratch = th_tensor(op->arena, sec);
  attention_forward(ctx, out[0], c->qkvr, out[1], c->scratch, in[0], c->mode == ATTN_MASK ? in[1] : DB_NULL,
                    c->mode, c->B, T, c->C, c->NH);
  if (c->mode != ATTN_MASK) return;
  /* exact zeros: att at masked (i,j), out rows of queries that see no key */
  size_t natt = (size_t)c->B * c->NH * T * T, nout = (size_t)c->B * T * c->C;
  float *att = db_malloc(natt * sizeof *att), *o = db_malloc(nout * sizeof *o), *mask = db_malloc((size_t)T * T * sizeof *mask);
  db_download(ctx, out[1], att);
  db_download(ctx, out[0], o);
  db_download(ctx, in[1], mask);
  c->checked_mask = 1;
  c->mask_zeros_ok = 1;
  c->dead_rows = 0;
  c->dead_rows_ok = 1;
  for (int i = 0; i < T; i++) {
    int any = 0;
    for (int j = 0; j < T; j++) {
      if (mask[(size_t)i * T + j] != 0) { any = 1; continue; }
      for (int bh = 0; bh < c->B * c->NH; bh++)
        if (att[((size_t)bh * T + i) * T + j] != 0.0f) c->mask_zeros_ok = 0;
    }
    if (any) continue;
    c->dead_rows++;
    for (int b = 0; b < c->B; b++)
      for (int k = 0; k < c->C; k++)
        if (o[((size_t)b * T + i) * c->C + k] != 0.0f) c->dead_rows_ok = 0;
  }
  free(att);
  free(o);
  free(mask);
}

static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  at_cfg *c = op->cfg;
  (void)in;
  int T = c->T, hs = c->C / c->NH;
  size_t sec = (size_t)c->B * c->NH * T * hs;
  /* th_tensor fills the whole buffer with a sentinel: the backward must not
   * depend on what its scratch tensors held before */
  db_tensor dqkvr = th_tensor(op->arena, 3 * sec), datt = th_tensor(op->arena, (size_t)c->B * c->NH * T * T);
  db_tensor scratch = th_tensor(op->arena, sec);
  attention_backward(ctx, din[0], dqkvr, datt, scratch, dout[0], c->qkvr, out[1], c->B, T, c->C, c->NH);
  c->checked_guards = 1;
  c->scratch_guards_ok = th_guards_ok(c->qkvr) && th_guards_ok(c->scratch) && th_guards_ok(dqkvr) &&
                         th_guards_ok(datt) && th_guards_ok(scratch);
}

static void run(int B, int T, int C, int NH, int mode) {
  at_cfg c = {B, T, C, NH, mode, DB_NULL, DB_NULL, 0, 0, 0, 0, 0, 0};
  th_op op;
  th_op_init(&op, "attention");
  snprintf(op.shape, sizeof op.shape, "B=%d T=%d C=%d NH=%d %s", B, T, C, NH, mode_name(mode));
  th_add_in(&op, "qkv", (size_t)B * T * 3 * C, 1);
  if (mode == ATTN_MASK) th_add_in(&op, "mask", (size_t)T * T, 0);
  th_add_out(&op, "out", (size_t)B * T * C);
  th_add_out(&op, "att", (size_t)B * NH * T * T);
  op.out_nondiff[1] = 1; /* saved probabilities: compared forward, not projected */
  op.init = init_mask;
  op.ref_fwd = ref_fwd;
  op.ref_bwd = ref_bwd;
  op.dev_fwd = dev_fwd;
  op.dev_bwd = dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
  char name[200];
  if (c.checked_mask) {
    snprintf(name, sizeof name, "attention %s: att exactly 0 where masked", op.shape);
    th_check(c.mask_zeros_ok, name, "non-zero probability at a masked position");
    snprintf(name, sizeof name, "attention %s: query seeing no key outputs 0 (%d such rows)", op.shape, c.dead_rows);
    th_check(c.dead_rows > 0 && c.dead_rows_ok, name, "%s",
             c.dead_rows ? "non-zero output for a fully masked query" : "no fully masked query in the test");
  }
  if (c.checked_guards) {
    snprintf(name, sizeof name, "attention %s: saved/scratch guard regions intact", op.shape);
    th_check(c.scratch_guards_ok, name, "guard region of qkvr, scratch, dqkvr or datt overwritten");
  }
}

static float max_abs_diff(db_ctx *ctx, db_tensor a, db_tensor b) {
  size_t n = db_numel(a);
  float *x = db_malloc(n * sizeof *x), *y = db_malloc(n * sizeof *y), m = 0;
  db_download(ctx, a, x);
  db_download(ctx, b, y);
  for (size_t i = 0; i < n; i++) {
    float d = fabsf(x[i] - y[i]);
    if (!(d <= m)) m = d; /* NaN propagates */
  }
  free(x);
  free(y);
  return m;
}

/* causal == bidirectional with an explicit lower-triangular mask, device vs device */
static void causal_equals_tril_mask(int B, int T, int C, int NH) {
  char name[160];
  snprintf(name, sizeof name, "attention B=%d T=%d C=%d NH=%d causal == mask(tril)", B, T, C, NH);
  db_ctx *ctx = th_ctx;
  db_arena *a = db_arena_new(ctx, "attention causal vs mask");
  int hs = C / NH;
  size_t n_in = (size_t)B * T * 3 * C, n_out = (size_t)B * T * C, sec = (size_t)B * NH * T * hs,
         n_att = (size_t)B * NH * T * T;
  db_tensor inp = th_tensor(a, n_in), mask = th_tensor(a, (size_t)T * T), dout = th_tensor(a, n_out);
  db_tensor out[2], att[2], qkvr[2], dinp[2];
  db_tensor scratch = th_tensor(a, sec), dqkvr = th_tensor(a, 3 * sec), datt = th_tensor(a, n_att);
  size_t n_host = n_in > (size_t)T * T ? n_in : (size_t)T * T;
  double *r = db_malloc(n_in * sizeof *r);
  float *f = db_malloc(n_host * sizeof *f);
  th_rand(r, n_in, 77, -2, 2);
  for (size_t i = 0; i < n_in; i++) f[i] = (float)r[i];
  db_upload(ctx, inp, f);
  th_rand(r, n_out, 78, -1, 1);
  for (size_t i = 0; i < n_out; i++) f[i] = (float)r[i];
  db_upload(ctx, dout, f);
  for (int i = 0; i < T; i++)
    for (int j = 0; j < T; j++) f[(size_t)i * T + j] = j <= i ? 1.0f : 0.0f;
  db_upload(ctx, mask, f);
  for (int k = 0; k < 2; k++) {
    out[k] = th_tensor(a, n_out);
    att[k] = th_tensor(a, n_att);
    qkvr[k] = th_tensor(a, 3 * sec);
    dinp[k] = th_tensor(a, n_in);
    db_zero(ctx, dinp[k]);
    int mode = k == 0 ? ATTN_CAUSAL : ATTN_MASK;
    attention_forward(ctx, out[k], qkvr[k], att[k], scratch, inp, k == 0 ? DB_NULL : mask, mode, B, T, C, NH);
    attention_backward(ctx, dinp[k], dqkvr, datt, scratch, dout, qkvr[k], att[k], B, T, C, NH);
  }
  float d_out = max_abs_diff(ctx, out[0], out[1]), d_att = max_abs_diff(ctx, att[0], att[1]);
  float d_din = max_abs_diff(ctx, dinp[0], dinp[1]);
  th_check(d_out < 1e-6f && d_att < 1e-6f && d_din < 1e-6f, name,
           "max abs diff out %.3e, att %.3e, dinp %.3e (limit 1e-6)", d_out, d_att, d_din);
  free(r);
  free(f);
  db_arena_free(a);
}

/* Calls that must fail. Each ends in db_fail of its own when the op returns,
 * so the check then fails with "returned without an error"; being _Noreturn
 * also keeps gcc's -Wclobbered quiet about TH_EXPECT_ERROR's local. Each
 * leaks its small arena, since db_fail longjmps out. */
_Noreturn static void bad_heads_forward(void) {
  db_arena *a = db_arena_new(th_ctx, "bad");
  db_tensor t = db_new(a, 1, 64, 0, 0, 0);
  attention_forward(th_ctx, t, t, t, t, t, DB_NULL, ATTN_BIDIRECTIONAL, 1, 2, 10, 3);
  db_fail("attention_forward returned without an error");
}
_Noreturn static void bad_heads_backward(void) {
  db_arena *a = db_arena_new(th_ctx, "bad");
  db_tensor t = db_new(a, 1, 64, 0, 0, 0);
  attention_backward(th_ctx, t, t, t, t, t, t, t, 1, 2, 10, 3);
  db_fail("attention_backward returned without an error");
}
/* B=1 T=3 C=4 NH=2: inp 36, out 12, qkvr 36, att 18, scratch 12 */
_Noreturn static void bad_att_or_mask(int att_n, int mode) {
  db_arena *a = db_arena_new(th_ctx, "bad");
  db_tensor inp = db_new(a, 3, 1, 3, 12, 0), out = db_new(a, 3, 1, 3, 4, 0), qkvr = db_new(a, 1, 36, 0, 0, 0);
  db_tensor att = db_new(a, 1, att_n, 0, 0, 0), scratch = db_new(a, 1, 12, 0, 0, 0);
  attention_forward(th_ctx, out, qkvr, att, scratch, inp, DB_NULL, mode, 1, 3, 4, 2);
  db_fail("attention_forward returned without an error");
}

static void error_tests(void) {
  TH_EXPECT_ERROR("attention rejects C not divisible by NH", "attention_forward: C=10 is not divisible by the number of heads NH=3",
                  bad_heads_forward());
  TH_EXPECT_ERROR("attention_backward rejects C not divisible by NH", "attention_backward: C=10 is not divisible",
                  bad_heads_backward());
  TH_EXPECT_ERROR("attention rejects a wrong-sized att", "attention_forward: argument att", bad_att_or_mask(9, ATTN_BIDIRECTIONAL));
  TH_EXPECT_ERROR("attention mask mode requires a mask", "attention_forward: argument mask is missing",
                  bad_att_or_mask(18, ATTN_MASK));
}

void tests_attention(void) {
  /* hs = 4, 5, 11, 12, 4; T = 300 exceeds the 256-wide row work-groups, so
   * the softmax kernels' strided loops run more than once per item */
  static const int shapes[][4] = {{1, 1, 4, 1}, {2, 7, 10, 2}, {2, 33, 33, 3}, {1, 197, 24, 2}, {1, 300, 8, 2}};
  static const int modes[] = {ATTN_BIDIRECTIONAL, ATTN_CAUSAL, ATTN_MASK};
  for (int m = 0; m < 3; m++)
    for (int s = 0; s < 5; s++) run(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], modes[m]);
  causal_equals_tril_mask(2, 33, 33, 3);
  causal_equals_tril_mask(1, 197, 24, 2);

  error_tests();
}
