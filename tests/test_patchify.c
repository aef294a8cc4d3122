/* patchify / unpatchify: plain-C double references, device forward/backward,
 * finite differences, an exact round trip and a shape error. */
#include "harness.h"
#include <stdlib.h>

typedef struct { int N, Cin, H, W, p; } pf_cfg;

/* index of image element (n,c,y,x) in the token tensor */
static size_t tok_index(const pf_cfg *c, int n, int ch, int y, int x) {
  int GW = c->W / c->p, T = (c->H / c->p) * GW, P = c->p * c->p * c->Cin;
  int tok = (y / c->p) * GW + x / c->p, e = ((y % c->p) * c->p + x % c->p) * c->Cin + ch;
  return ((size_t)n * T + tok) * P + e;
}

/* runs the statement for every element, with ii its image index, ti its token index */
#define PF_FOR_EACH(c, ...)                                                          \
  for (int n = 0; n < (c)->N; n++)                                                   \
    for (int ch = 0; ch < (c)->Cin; ch++)                                            \
      for (int y = 0; y < (c)->H; y++)                                               \
        for (int x = 0; x < (c)->W; x++) {                                           \
          size_t ii = (((size_t)n * (c)->Cin + ch) * (c)->H + y) * (c)->W + x;       \
          size_t ti = tok_index((c), n, ch, y, x);                                   \
          __VA_ARGS__;                                                               \
        }

static void pf_ref_fwd(th_op *op, double **in, double **out) {
  pf_cfg *c = op->cfg;
  PF_FOR_EACH(c, out[0][ti] = in[0][ii]);
}
static void pf_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  pf_cfg *c = op->cfg;
  (void)in;
  PF_FOR_EACH(c, din[0][ii] += dout[0][ti]);
}
static void upf_ref_fwd(th_op *op, double **in, double **out) {
  pf_cfg *c = op->cfg;
  PF_FOR_EACH(c, out[0][ii] = in[0][ti]);
}
static void upf_ref_bwd(th_op *op, double **in, double **dout, double **din) {
  pf_cfg *c = op->cfg;
  (void)in;
  PF_FOR_EACH(c, din[0][ti] += dout[0][ii]);
}

static void pf_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  pf_cfg *c = op->cfg;
  patchify_forward(ctx, out[0], in[0], c->N, c->Cin, c->H, c->W, c->p);
}
static void pf_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  pf_cfg *c = op->cfg;
  (void)in; (void)out;
  patchify_backward(ctx, din[0], dout[0], c->N, c->Cin, c->H, c->W, c->p);
}
static void upf_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  pf_cfg *c = op->cfg;
  unpatchify_forward(ctx, out[0], in[0], c->N, c->Cin, c->H, c->W, c->p);
}
static void upf_dev_bwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out, db_tensor *dout, db_tensor *din) {
  pf_cfg *c = op->cfg;
  (void)in; (void)out;
  unpatchify_backward(ctx, din[0], dout[0], c->N, c->Cin, c->H, c->W, c->p);
}

static void run(int N, int Cin, int H, int W, int p) {
  pf_cfg c = {N, Cin, H, W, p};
  size_t n = (size_t)N * Cin * H * W;
  for (int un = 0; un < 2; un++) {
    th_op op;
    th_op_init(&op, un ? "unpatchify" : "patchify");
    snprintf(op.shape, sizeof op.shape, "N=%d Cin=%d H=%d W=%d p=%d", N, Cin, H, W, p);
    th_add_in(&op, un ? "inp" : "img", n, 1);
    th_add_out(&op, un ? "img" : "out", n);
    op.ref_fwd = un ? upf_ref_fwd : pf_ref_fwd;
    op.ref_bwd = un ? upf_ref_bwd : pf_ref_bwd;
    op.dev_fwd = un ? upf_dev_fwd : pf_dev_fwd;
    op.dev_bwd = un ? upf_dev_bwd : pf_dev_bwd;
    op.fd_samples = 20; /* a permutation: a handful of elements says it all */
    op.cfg = &c;
    th_run_op(&op);
  }
}

/* unpatchify(patchify(x)) == x bit for bit, and patchify really permutes. */
static void round_trip(int N, int Cin, int H, int W, int p) {
  char name[128];
  snprintf(name, sizeof name, "patchify round trip N=%d Cin=%d H=%d W=%d p=%d", N, Cin, H, W, p);
  size_t n = (size_t)N * Cin * H * W;
  db_arena *a = db_arena_new(th_ctx, "patchify round trip");
  float *img = db_malloc(n * sizeof *img), *tok = db_malloc(n * sizeof *tok), *back = db_malloc(n * sizeof *back);
  db_rng_normal_host(img, n, 42, 0);
  db_tensor tx = th_tensor(a, n), tt = th_tensor(a, n), ty = th_tensor(a, n);
  th_upload(tx, img);
  patchify_forward(th_ctx, tt, tx, N, Cin, H, W, p);
  unpatchify_forward(th_ctx, ty, tt, N, Cin, H, W, p);
  db_download(th_ctx, tt, tok);
  db_download(th_ctx, ty, back);
  pf_cfg c = {N, Cin, H, W, p};
  int perm_ok = 1;
  PF_FOR_EACH(&c, perm_ok &= !memcmp(&tok[ti], &img[ii], sizeof(float)));
  th_check(!memcmp(img, back, n * sizeof *img) && perm_ok && th_guards_ok(tt) && th_guards_ok(ty), name,
           "round trip not exact (%s)", perm_ok ? "unpatchify" : "patchify");
  free(img); free(tok); free(back);
  db_arena_free(a);
}

/* shape errors */
static db_tensor e_img, e_short;
static void err_divisible(void) {
  TH_EXPECT_ERROR("patchify rejects H not divisible by p", "patchify_forward: H=7 and W=9 must be divisible",
                  { patchify_forward(th_ctx, e_img, e_img, 1, 3, 7, 9, 3); });
}
static void err_inp(void) {
  TH_EXPECT_ERROR("unpatchify rejects a wrong-sized inp", "unpatchify_forward: argument inp",
                  { unpatchify_forward(th_ctx, e_img, e_short, 1, 3, 7, 7, 7); });
}
static void shape_errors(void) {
  db_arena *a = db_arena_new(th_ctx, "patchify errors");
  int sshape[1] = {10};
  e_img = db_new(a, 4, 1, 3, 7, 7);
  e_short = db_view(e_img, 0, 1, sshape);
  err_divisible();
  err_inp();
  db_arena_free(a);
}

void tests_patchify(void) {
  run(1, 1, 2, 2, 2);
  run(3, 1, 28, 28, 2);
  run(2, 3, 6, 9, 3);
  round_trip(3, 1, 28, 28, 2);
  round_trip(2, 3, 6, 9, 3);
  round_trip(4, 4, 32, 32, 2); /* DiT latent shape */

  shape_errors();
}
