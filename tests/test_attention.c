/* attention: plain-C double reference forward (output and log-sum-exp) and
 * backward for the three modes, device vs reference and finite differences
 * through th_run_op, at every launch shape the kernels have (the CPU rows path
 * and GPU-style work-groups of 64, 256 and the device maximum, forced with
 * attention_force_group_size); per-sample masks; the block-diffusion mask of
 * the language model, as an explicit mask and as the maskless mode
 * ATTN_BLOCKDIFF; hand-written checks: zero output for a query that sees no
 * key, causal == bidirectional with a lower-triangular mask, ATTN_BLOCKDIFF
 * == the same mask given explicitly, and the shape errors. Decoding
 * (attention_decode_forward) against the causal reference's last row, at the
 * device's and GPU-style work-group sizes. */
#include "harness.h"
#include <stdlib.h>

enum { MASK_RANDOM, MASK_BLOCK_DIFFUSION }; /* what init_mask builds */

typedef struct {
  int B, T, C, NH, mode;
  size_t wg;                /* attention_force_group_size for the device calls */
  int mask_kind, mask_batched; /* MASK_*; 1: a (B,T,T) mask, else (T,T) */
  int bd_block;             /* block size of the block-diffusion mask */
  int checked_mask;         /* dev_fwd ran the mask checks below */
  int dead_rows, dead_rows_ok; /* queries that see no key, and whether their outputs are exactly 0 */
  int scratch_guards_ok;    /* guard region of dsum intact */
  int checked_guards;
} at_cfg;

static const char *mode_name(int mode) {
  return mode == ATTN_CAUSAL ? "causal" : mode == ATTN_MASK ? "mask" : mode == ATTN_BLOCKDIFF ? "blockdiff" : "bidirectional";
}

/* mask: already offset to the sample's (T,T) block */
static int visible(const at_cfg *c, const double *mask, int i, int j) {
  if (c->mode == ATTN_CAUSAL) return j <= i;
  if (c->mode == ATTN_MASK) return mask[(size_t)i * c->T + j] != 0;
  if (c->mode == ATTN_BLOCKDIFF) { /* written out anew, not through block_diffusion_mask */
    int n = c->T / 2;
    return i < n ? j == i || (j >= n && j - n < i) : j >= n && j - n <= i - n;
  }
  return 1;
}

static const double *sample_mask(const at_cfg *c, double **in, int b) {
  if (c->mode != ATTN_MASK) return NULL;
  return in[1] + (c->mask_batched ? (size_t)b * c->T * c->T : 0);
}

/* element d of section s (0 q, 1 k, 2 v) of head h of token t of sample b */
static double qkv_at(const at_cfg *c, const double *x, int b, int t, int s, int h, int d) {
  int hs = c->C / c->NH;
  return x[((size_t)b * c->T + t) * 3 * c->C + (size_t)s * c->C + (size_t)h * hs + d];
}

/* P (T,T): softmax probabilities of head h of sample b; 0 where invisible.
 * lse (T): log-sum-exp of each row's scaled scores, 0 for a row that sees no key. */
static void ref_probs(const at_cfg *c, const double *x, const double *mask, int b, int h, double *P, double *lse) {
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
    lse[i] = 0;
    if (mx == -INFINITY) continue; /* sees no key: all zeros */
    double sum = 0;
    for (int j = 0; j < T; j++)
      if (visible(c, mask, i, j)) sum += (p[j] = exp(p[j] - mx));
    for (int j = 0; j < T; j++) p[j] /= sum;
    lse[i] = mx + log(sum);
  }
}

static void ref_fwd(th_op *op, double **in, double **out) {
  at_cfg *c = op->cfg;
  int T = c->T, hs = c->C / c->NH;
  double *P = db_malloc((size_t)T * T * sizeof *P);
  for (int b = 0; b < c->B; b++)
    for (int h = 0; h < c->NH; h++) {
      ref_probs(c, in[0], sample_mask(c, in, b), b, h, P, out[1] + ((size_t)b * c->NH + h) * T);
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
  double *P = db_malloc((size_t)T * T * sizeof *P), *dP = db_malloc((size_t)T * T * sizeof *dP);
  double *lse = db_malloc((size_t)T * sizeof *lse);
  for (int b = 0; b < c->B; b++)
    for (int h = 0; h < c->NH; h++) {
      ref_probs(c, in[0], sample_mask(c, in, b), b, h, P, lse);
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
  free(lse);
}

/* The block-diffusion mask of the language model, over 2n tokens
 * [noisy 0..n) | clean n..2n), blocks of `bs` tokens: a noisy token sees the
 * noisy tokens of its own block and the clean tokens of earlier blocks; a
 * clean token sees the clean tokens of its own and earlier blocks. With
 * bs = 1: noisy i sees noisy i and clean j < i; clean i sees clean j <= i. */
static void block_diffusion_mask(double *m, int n, int bs) {
  int T = 2 * n;
  for (int i = 0; i < T; i++)
    for (int j = 0; j < T; j++) {
      int qi = i % n, kj = j % n, qnoisy = i < n, knoisy = j < n, v;
      if (qnoisy) v = knoisy ? qi / bs == kj / bs : kj / bs < qi / bs;
      else v = !knoisy && kj / bs <= qi / bs;
      m[(size_t)i * T + j] = v;
    }
}

/* Random 0/1 masks (about 70% visible); in each sample's mask query
 * (T-1)/2 sees nothing, and for T >= 3 the last query sees only key 0. Or the
 * block-diffusion mask. */
static void init_mask(th_op *op, double **in) {
  at_cfg *c = op->cfg;
  if (c->mode != ATTN_MASK) return;
  int T = c->T, nm = c->mask_batched ? c->B : 1;
  for (int b = 0; b < nm; b++) {
    double *m = in[1] + (size_t)b * T * T;
    if (c->mask_kind == MASK_BLOCK_DIFFUSION) {
      block_diffusion_mask(m, T / 2, c->bd_block);
      continue;
    }
    for (size_t i = 0; i < (size_t)T * T; i++) m[i] = m[i] > -0.4 ? 1.0 : 0.0;
    for (int j = 0; j < T; j++) m[(size_t)((T - 1) / 2) * T + j] = 0;
    if (T >= 3)
      for (int j = 0; j < T; j++) m[(size_t)(T - 1) * T + j] = j == 0;
  }
}

/* counts the queries of sample b's mask that see no key; 1 if all their outputs are exactly 0 */
static int dead_rows_zero(const at_cfg *c, const float *mask, const float *o, int b, int *dead) {
  int T = c->T, ok = 1;
  for (int i = 0; i < T; i++) {
    int any = 0;
    for (int j = 0; j < T; j++) any |= mask[(size_t)i * T + j] != 0;
    if (any) continue;
    (*dead)++;
    for (int k = 0; k < c->C; k++)
      if (o[((size_t)b * T + i) * c->C + k] != 0.0f) ok = 0;
  }
  return ok;
}

static void dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  at_cfg *c = op->cfg;
  int T = c->T;
  size_t prev = attention_force_group_size(c->wg);
  attention_forward(ctx, out[0], out[1], in[0], c->mode == ATTN_MASK ? in[1] : DB_NULL, c->mode, c->B, T, c->C, c->NH);
  attention_force_group_size(prev);
  if (c->mode != ATTN_MASK || c->mask_kind != MASK_RANDOM) return;
  /* exact zeros: out rows of queries that see no key */
  size_t nout = (size_t)c->B * T * c->C, nmask = db_numel(in[1]);
  float *o = db_malloc(nout * sizeof *o), *mask = db_malloc(nmask * sizeof *mask);
  db_download(ctx, out[0], o);
  db_download(ctx, in[1], mask);
  c->checked_mask = 1;
  c->dead_rows = 0;
  c->dead_rows_ok = 1;
  for (int b = 0; b < c->B; b++)
    c->dead_rows_ok &= dead_rows_zero(c, mask + (c->mask_batched ? (size_t)b * T * T : 0), o, b, &c->dead_rows);
  free(o);
  free(mask);
}

static void dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  at_cfg *c = op->cfg;
  /* th_tensor fills the whole buffer with a sentinel: the backward must not
   * depend on what its scratch held before */
  db_tensor dsum = th_tensor(op->arena, (size_t)c->B * c->NH * c->T);
  size_t prev = attention_force_group_size(c->wg);
  attention_backward(ctx, din[0], dsum, dout[0], out[0], out[1], in[0], c->mode == ATTN_MASK ? in[1] : DB_NULL,
                     c->mode, c->B, c->T, c->C, c->NH);
  attention_force_group_size(prev);
  c->checked_guards = 1;
  c->scratch_guards_ok = th_guards_ok(dsum);
}

/* " wg=64", " rows" (the CPU path) or " wg=device" (the device's choice) */
static void wg_label(char *buf, size_t n, size_t wg) {
  if (wg == ATTN_BLOCKED_PATH) snprintf(buf, n, " blocked");
  else if (wg == 1) snprintf(buf, n, " rows");
  else if (wg) snprintf(buf, n, " wg=%zu", wg);
  else snprintf(buf, n, " wg=device");
}

static void run_cfg(at_cfg c, const char *label) {
  th_op op;
  th_op_init(&op, "attention");
  char wgl[32];
  wg_label(wgl, sizeof wgl, c.wg);
  snprintf(op.shape, sizeof op.shape, "B=%d T=%d C=%d NH=%d %s%s%s", c.B, c.T, c.C, c.NH, label, c.mask_batched ? "(B,T,T)" : "", wgl);
  th_add_in(&op, "qkv", (size_t)c.B * c.T * 3 * c.C, 1);
  if (c.mode == ATTN_MASK) th_add_in(&op, "mask", (size_t)(c.mask_batched ? c.B : 1) * c.T * c.T, 0);
  th_add_out(&op, "out", (size_t)c.B * c.T * c.C);
  th_add_out(&op, "lse", (size_t)c.B * c.NH * c.T);
  op.out_nondiff[1] = 1; /* saved log-sum-exp: compared forward, not projected */
  op.init = init_mask;
  op.ref_fwd = ref_fwd;
  op.ref_bwd = ref_bwd;
  op.dev_fwd = dev_fwd;
  op.dev_bwd = dev_bwd;
  op.cfg = &c;
  th_run_op(&op);
  char name[200];
  if (c.checked_mask) {
    snprintf(name, sizeof name, "attention %s: query seeing no key outputs 0 (%d such rows)", op.shape, c.dead_rows);
    th_check(c.dead_rows > 0 && c.dead_rows_ok, name, "%s",
             c.dead_rows ? "non-zero output for a fully masked query" : "no fully masked query in the test");
  }
  if (c.checked_guards) {
    snprintf(name, sizeof name, "attention %s: dsum scratch guard regions intact", op.shape);
    th_check(c.scratch_guards_ok, name, "guard region of dsum overwritten");
  }
}

static void run(int B, int T, int C, int NH, int mode, size_t wg, int mask_batched) {
  at_cfg c = {0};
  c.B = B, c.T = T, c.C = C, c.NH = NH, c.mode = mode, c.wg = wg, c.mask_batched = mask_batched;
  run_cfg(c, mode_name(mode));
}

/* The language model's mask over [noisy | clean] (2n tokens), checked like any explicit mask. */
static void run_block_diffusion(int B, int n, int C, int NH, int bs, size_t wg) {
  at_cfg c = {0};
  c.B = B, c.T = 2 * n, c.C = C, c.NH = NH, c.mode = ATTN_MASK, c.wg = wg;
  c.mask_kind = MASK_BLOCK_DIFFUSION, c.bd_block = bs;
  char label[48];
  snprintf(label, sizeof label, "block-diffusion(n=%d,block=%d)", n, bs);
  run_cfg(c, label);
}

/* The mask itself, for n = 3, block 1: noisy i sees noisy i and clean j < i;
 * clean i sees clean j <= i. */
static void block_diffusion_mask_layout(void) {
  static const char want[6][7] = {"100000", "010100", "001110", "000100", "000110", "000111"};
  double m[36];
  block_diffusion_mask(m, 3, 1);
  int ok = 1;
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 6; j++) ok &= (m[i * 6 + j] != 0) == (want[i][j] == '1');
  th_check(ok, "attention: block-diffusion mask (n=3, block 1) is [noisy i: noisy i, clean j<i | clean i: clean j<=i]",
           "mask differs from the layout");
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

/* A maskless mode == the same mask given explicitly, device vs device:
 * causal == a lower-triangular mask (the same keys in the same order: within
 * 1e-6), ATTN_BLOCKDIFF == the block-diffusion mask of block 1 (the mask
 * mode's kernels visit the keys in other groups of four or sixteen, so the
 * sums round differently: within tol). */
static void mode_equals_mask(int mode, int B, int T, int C, int NH, size_t wg, float tol) {
  char name[160], wgl[32];
  wg_label(wgl, sizeof wgl, wg);
  snprintf(name, sizeof name, "attention B=%d T=%d C=%d NH=%d%s %s", B, T, C, NH, wgl,
           mode == ATTN_CAUSAL ? "causal == mask(tril)" : "blockdiff == mask(block diffusion, block 1)");
  db_ctx *ctx = th_ctx;
  db_arena *a = db_arena_new(ctx, "attention causal vs mask");
  size_t n_in = (size_t)B * T * 3 * C, n_out = (size_t)B * T * C, n_lse = (size_t)B * NH * T;
  db_tensor inp = th_tensor(a, n_in), mask = th_tensor(a, (size_t)T * T), dout = th_tensor(a, n_out);
  db_tensor out[2], lse[2], dinp[2], dsum = th_tensor(a, n_lse);
  size_t n_host = n_in > (size_t)T * T ? n_in : (size_t)T * T;
  double *r = db_malloc(n_in * sizeof *r);
  float *f = db_malloc(n_host * sizeof *f);
  th_rand(r, n_in, 77, -2, 2);
  for (size_t i = 0; i < n_in; i++) f[i] = (float)r[i];
  th_upload(inp, f);
  th_rand(r, n_out, 78, -1, 1);
  for (size_t i = 0; i < n_out; i++) f[i] = (float)r[i];
  th_upload(dout, f);
  if (mode == ATTN_CAUSAL)
    for (int i = 0; i < T; i++)
      for (int j = 0; j < T; j++) f[(size_t)i * T + j] = j <= i ? 1.0f : 0.0f;
  else {
    double *m = db_malloc((size_t)T * T * sizeof *m);
    block_diffusion_mask(m, T / 2, 1);
    for (size_t i = 0; i < (size_t)T * T; i++) f[i] = (float)m[i];
    free(m);
  }
  th_upload(mask, f);
  float *zero = db_calloc(n_in, sizeof *zero);
  size_t prev = attention_force_group_size(wg);
  for (int k = 0; k < 2; k++) {
    out[k] = th_tensor(a, n_out);
    lse[k] = th_tensor(a, n_lse);
    dinp[k] = th_tensor(a, n_in);
    th_upload(dinp[k], zero); /* not db_zero: Oclgrind misreads fills (docs/testing.md) */
    int md = k == 0 ? mode : ATTN_MASK;
    db_tensor m = k == 0 ? DB_NULL : mask;
    attention_forward(ctx, out[k], lse[k], inp, m, md, B, T, C, NH);
    attention_backward(ctx, dinp[k], dsum, dout, out[k], lse[k], inp, m, md, B, T, C, NH);
  }
  attention_force_group_size(prev);
  float d_out = max_abs_diff(ctx, out[0], out[1]), d_lse = max_abs_diff(ctx, lse[0], lse[1]);
  float d_din = max_abs_diff(ctx, dinp[0], dinp[1]);
  th_check(d_out < tol && d_lse < tol && d_din < tol, name, "max abs diff out %.3e, lse %.3e, dinp %.3e (limit %.0e)",
           d_out, d_lse, d_din, (double)tol);
  free(r);
  free(f);
  free(zero);
  db_arena_free(a);
}

/* Calls that must fail. Each ends in db_fail of its own when the op returns,
 * so the check then fails with "returned without an error"; being _Noreturn
 * also keeps gcc's -Wclobbered quiet about TH_EXPECT_ERROR's local. Each
 * leaks its small arena, since db_fail longjmps out. */
_Noreturn static void bad_heads_forward(int C, int NH) {
  db_arena *a = db_arena_new(th_ctx, "bad");
  db_tensor t = db_new(a, 1, 64, 0, 0, 0);
  attention_forward(th_ctx, t, t, t, DB_NULL, ATTN_BIDIRECTIONAL, 1, 2, C, NH);
  db_fail("attention_forward returned without an error");
}
_Noreturn static void bad_heads_backward(void) {
  db_arena *a = db_arena_new(th_ctx, "bad");
  db_tensor t = db_new(a, 1, 64, 0, 0, 0);
  attention_backward(th_ctx, t, t, t, t, t, t, DB_NULL, ATTN_BIDIRECTIONAL, 1, 2, 10, 3);
  db_fail("attention_backward returned without an error");
}
/* B=2 T=3 C=4 NH=2: qkv 72, out 24, lse 12 */
_Noreturn static void bad_lse_or_mask(int lse_n, int mode, int mask_n) {
  db_arena *a = db_arena_new(th_ctx, "bad");
  db_tensor qkv = db_new(a, 3, 2, 3, 12, 0), out = db_new(a, 3, 2, 3, 4, 0), lse = db_new(a, 1, lse_n, 0, 0, 0);
  db_tensor mask = mask_n ? db_new(a, 1, mask_n, 0, 0, 0) : DB_NULL;
  attention_forward(th_ctx, out, lse, qkv, mask, mode, 2, 3, 4, 2);
  db_fail("attention_forward returned without an error");
}
_Noreturn static void bad_forced_group(void) {
  size_t prev = attention_force_group_size(th_ctx->dev.max_wg * 2);
  (void)prev;
  bad_lse_or_mask(12, ATTN_BIDIRECTIONAL, 0);
}

/* B=2 Tcap=4 C=8 NH=2: qkv 192, out 16 (n = -1: n 2 with an out of 15) */
_Noreturn static void bad_decode(int n) {
  db_arena *a = db_arena_new(th_ctx, "bad");
  db_tensor qkv = db_new(a, 1, 192, 0, 0, 0), out = db_new(a, 1, n < 0 ? 15 : 16, 0, 0, 0);
  attention_decode_forward(th_ctx, out, qkv, n < 0 ? 2 : n, 2, 4, 8, 2);
  db_fail("attention_decode_forward returned without an error");
}

static void error_tests(void) {
  TH_EXPECT_ERROR("attention rejects C not divisible by NH", "attention_forward: C=10 is not divisible by the number of heads NH=3",
                  bad_heads_forward(10, 3));
  TH_EXPECT_ERROR("attention rejects a head size above 128", "attention_forward: head size C/NH=129 exceeds",
                  bad_heads_forward(129, 1));
  TH_EXPECT_ERROR("attention_backward rejects C not divisible by NH", "attention_backward: C=10 is not divisible",
                  bad_heads_backward());
  TH_EXPECT_ERROR("attention rejects a wrong-sized lse", "attention_forward: argument lse", bad_lse_or_mask(9, ATTN_BIDIRECTIONAL, 0));
  TH_EXPECT_ERROR("attention mask mode requires a mask", "attention_forward: argument mask is missing",
                  bad_lse_or_mask(12, ATTN_MASK, 0));
  TH_EXPECT_ERROR("attention rejects a mask neither (T,T) nor (B,T,T)", "attention_forward: argument mask has 10 elements",
                  bad_lse_or_mask(12, ATTN_MASK, 10));
  TH_EXPECT_ERROR("attention rejects an unknown mode", "attention_forward: unknown mode 7", bad_lse_or_mask(12, 7, 0));
  TH_EXPECT_ERROR("attention ATTN_BLOCKDIFF rejects an odd T", "attention_forward: ATTN_BLOCKDIFF needs an even T",
                  bad_lse_or_mask(12, ATTN_BLOCKDIFF, 0));
  TH_EXPECT_ERROR("attention_decode rejects n = 0", "attention_decode_forward: n=0 tokens outside the cache's 1..Tcap=4",
                  bad_decode(0));
  TH_EXPECT_ERROR("attention_decode rejects n > Tcap", "attention_decode_forward: n=5 tokens outside", bad_decode(5));
  TH_EXPECT_ERROR("attention_decode rejects a wrong-sized out", "attention_decode_forward: argument out", bad_decode(-1));
  TH_EXPECT_ERROR("attention rejects a forced work-group size above the kernel's maximum", "exceeds kernel attention_forward_tiled",
                  bad_forced_group());
  attention_force_group_size(0);
}

/* The launch shapes every variant runs at: the blocked kernels and the rows
 * kernels (what PoCL gets for head sizes divisible by 4, and for the others),
 * then GPU-style tiled work-groups of 64, 256 and the device maximum (local
 * memory, barriers, idle work-items past T). */
static int group_sizes(size_t sizes[5]) {
  static const char *const tiled[] = {"attention_forward_tiled", "attention_backward_dq_tiled",
                                      "attention_backward_dkv_tiled"};
  size_t lim = th_ctx->dev.max_wg, max = 1;
  for (int k = 0; k < 3; k++) {
    size_t km = 0;
    CL_CHECK(clGetKernelWorkGroupInfo(db_kernel(th_ctx, "attention", tiled[k]), th_ctx->dev.device,
                                      CL_KERNEL_WORK_GROUP_SIZE, sizeof km, &km, NULL));
    if (km < lim) lim = km;
  }
  while (max * 2 <= lim) max *= 2;
  size_t want[3] = {64, 256, max};
  int n = 0;
  /* Oclgrind 21.10's --uninitialized checker aborts on the blocked kernels'
   * vectors built lane by lane (tests/oclgrind/shuffle_undef_repro.c): they
   * run everywhere else, Oclgrind checks the rows and tiled paths */
  if (!th_oclgrind) sizes[n++] = ATTN_BLOCKED_PATH;
  sizes[n++] = 1;
  for (int i = 0; i < 3; i++) {
    int dup = want[i] > max;
    for (int j = 0; j < n; j++) dup |= sizes[j] == want[i];
    if (!dup) sizes[n++] = want[i];
  }
  return n;
}

/* ATTN_BLOCKDIFF (T = 2n, odd n) against the double reference (through
 * th_run_op: forward, backward, finite differences) and against the same
 * mask given explicitly, at every launch shape. Shapes: n = 1 (T = 2),
 * groups and tiles that straddle the noisy/clean boundary, tiles of 16 keys
 * at hs = 128 (skipped tiles in the middle of the range), odd head sizes. */
static void blockdiff_tests(const size_t *wgs, int nwg) {
  static const int shapes[][4] = {{2, 2, 8, 1},   {2, 14, 10, 2}, {1, 66, 33, 3},  {2, 34, 32, 2},
                                  {1, 98, 64, 4}, {1, 130, 128, 1}, {1, 258, 24, 2}};
  int nshapes = th_small ? 3 : 7;
  for (int w = 0; w < nwg; w++) {
    for (int s = 0; s < nshapes; s++)
      run(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], ATTN_BLOCKDIFF, wgs[w], 0);
    mode_equals_mask(ATTN_BLOCKDIFF, 2, 14, 12, 2, wgs[w], 2e-6f);
    if (!th_small) mode_equals_mask(ATTN_BLOCKDIFF, 2, 130, 64, 2, wgs[w], 2e-6f);
  }
  mode_equals_mask(ATTN_BLOCKDIFF, 1, 66, 24, 2, th_oclgrind ? 1 : 0, 2e-6f); /* the device's choice */
}

/* Decoding: qkv (B, Tcap, 3C) random; out (B, C) vs row n-1 of the double
 * causal reference (ref_fwd) over the first n rows of each sample. */
static void decode_check(int B, int n, int Tcap, int C, int NH, size_t wg) {
  char name[160], wl[32];
  th_wg_label(wl, sizeof wl, wg);
  snprintf(name, sizeof name, "attention_decode B=%d n=%d Tcap=%d C=%d NH=%d%s vs causal reference's last row", B, n,
           Tcap, C, NH, wl);
  size_t n_in = (size_t)B * Tcap * 3 * C, row = 3 * (size_t)C;
  double *x = db_malloc(n_in * sizeof *x), *xs = db_malloc((size_t)B * n * row * sizeof *xs);
  th_rand(x, n_in, 1234 + (uint64_t)n, -2, 2);
  for (int b = 0; b < B; b++) memcpy(xs + (size_t)b * n * row, x + (size_t)b * Tcap * row, (size_t)n * row * sizeof *x);
  at_cfg c = {0};
  c.B = B, c.T = n, c.C = C, c.NH = NH, c.mode = ATTN_CAUSAL;
  th_op op = {0};
  op.cfg = &c;
  double *ro[2] = {db_malloc((size_t)B * n * C * sizeof(double)), db_malloc((size_t)B * NH * n * sizeof(double))};
  ref_fwd(&op, (double *[]){xs, NULL}, ro);
  double *want = db_malloc((size_t)B * C * sizeof *want);
  for (int b = 0; b < B; b++) memcpy(want + (size_t)b * C, ro[0] + ((size_t)b * n + n - 1) * C, (size_t)C * sizeof *want);
  db_arena *a = db_arena_new(th_ctx, "attention decode");
  db_tensor tq = th_tensor(a, n_in), to = th_tensor(a, (size_t)B * C);
  float *f = db_malloc(n_in * sizeof *f);
  for (size_t i = 0; i < n_in; i++) f[i] = (float)x[i];
  th_upload(tq, f);
  size_t prev = db_force_row_group_size(th_ctx, wg);
  attention_decode_forward(th_ctx, to, tq, n, B, Tcap, C, NH);
  db_force_row_group_size(th_ctx, prev);
  db_download(th_ctx, to, f);
  double e = th_rel_err(f, want, (size_t)B * C);
  th_check(e < 1e-5 && th_guards_ok(to) && th_guards_ok(tq), name, "max rel err %.3e (tol 1e-5)%s", e,
           th_guards_ok(to) && th_guards_ok(tq) ? "" : ", guard region overwritten");
  db_arena_free(a);
  free(x); free(xs); free(ro[0]); free(ro[1]); free(want); free(f);
}

static void decode_tests(void) {
  static const char *const kernels[] = {"attention_decode_forward", NULL};
  static const int shapes[][5] = {/* B, n, Tcap, C, NH */
                                  {2, 1, 3, 8, 1},     {3, 7, 10, 10, 2},      {2, 33, 40, 33, 3},
                                  {1, 64, 64, 16, 1},  {1, 200, 256, 128, 1}, {2, 1001, 1003, 64, 4},
                                  {1, 3000, 3000, 128, 1}},
                   small[][5] = {{2, 1, 3, 8, 1}, {1, 7, 10, 10, 2}, {1, 33, 40, 11, 1}, {1, 64, 64, 16, 1}};
  int nshapes = th_small ? 4 : 7;
  size_t wg[4];
  int nwg = th_row_wg_sizes("attention", kernels, wg);
  for (int w = 0; w < nwg; w++)
    for (int s = 0; s < nshapes; s++) {
      const int *d = th_small ? small[s] : shapes[s]; /* Oclgrind: one or two heads (groups of up to 1024 items) */
      decode_check(d[0], d[1], d[2], d[3], d[4], wg[w]);
    }
}

void tests_attention(void) {
  /* hs = 8, 5, 11, 16, 12, 16, 64, 128; T = 1, 7, 33, 17, 197, 49, 196, 33: odd sizes,
   * T not a multiple of any work-group or tile, the models' heads (16, 64)
   * and the largest one (128, whose tiles hold 16 keys) */
  static const int shapes[][4] = {{1, 1, 8, 1},   {2, 7, 10, 2},  {2, 33, 33, 3}, {2, 17, 32, 2}, {1, 197, 24, 2},
                                  {2, 49, 64, 4}, {1, 196, 128, 2}, {1, 33, 128, 1}};
  static const int modes[] = {ATTN_BIDIRECTIONAL, ATTN_CAUSAL, ATTN_MASK};
  int nshapes = th_small ? 4 : 8;
  size_t wgs[5];
  int nwg = group_sizes(wgs);
  for (int w = 0; w < nwg; w++)
    for (int m = 0; m < 3; m++)
      for (int s = 0; s < nshapes; s++) run(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], modes[m], wgs[w], 0);
  for (int w = 0; w < nwg; w++) {
    run(3, 7, 12, 3, ATTN_MASK, wgs[w], 1); /* one mask per sample */
    run_block_diffusion(2, 7, 16, 2, 1, wgs[w]);
    run_block_diffusion(1, 33, 24, 2, 4, wgs[w]);
    mode_equals_mask(ATTN_CAUSAL, 2, 33, 33, 3, wgs[w], 1e-6f);
  }
  block_diffusion_mask_layout();
  mode_equals_mask(ATTN_CAUSAL, 1, 197, 24, 2, th_oclgrind ? 1 : 0, 1e-6f); /* the device's choice (blocked on a CPU) */
  blockdiff_tests(wgs, nwg);
  decode_tests();

  error_tests();
}
