/* window_patches: plain-C reference (exact: a gather copies floats), through
 * th_run_op (guarded inputs and output, int32 idx), at the device's own
 * work-group size and forced GPU-style ones; w = p against patchify_forward
 * bit for bit; idx = DB_NULL; out-of-range idx rows read as pad; B = 0; and
 * a clear error for each bad argument. Forward only: the op has no backward. */
#include "harness.h"
#include <limits.h>
#include <stdlib.h>

typedef struct {
  int B, N_all, H, W, p, w;
  float pad;
  int null_idx;  /* 1: idx = DB_NULL (row b is image b) */
  int oor;       /* 1: some idx values outside [0, N_all) */
  size_t wg;     /* forced ctx->wg; 0: the device's own */
} wp_cfg;

/* The reference, in plain C: out[b, t, y*w + x] from images[idx[b]]. */
static void wp_ref(const wp_cfg *c, const double *img, const double *idx, double *out) {
  int GW = c->W / c->p, T = (c->H / c->p) * GW, m = (c->w - c->p) / 2;
  for (int b = 0; b < c->B; b++) {
    double n = idx ? idx[b] : b;
    for (int t = 0; t < T; t++)
      for (int y = 0; y < c->w; y++)
        for (int x = 0; x < c->w; x++) {
          int iy = (t / GW) * c->p - m + y, ix = (t % GW) * c->p - m + x;
          int in = n >= 0 && n < c->N_all && iy >= 0 && iy < c->H && ix >= 0 && ix < c->W;
          out[((size_t)b * T + t) * c->w * c->w + (size_t)y * c->w + x] =
              in ? img[((size_t)n * c->H + iy) * c->W + ix] : (double)c->pad;
        }
  }
}

static void wp_ref_fwd(th_op *op, double **in, double **out) {
  wp_cfg *c = op->cfg;
  wp_ref(c, in[0], c->null_idx ? NULL : in[1], out[0]);
}

/* Images rounded to float (so the check is exact: tol 0); idx a shuffle of
 * the rows with repeats, and with c->oor a few rows out of range. */
static void wp_init(th_op *op, double **in) {
  wp_cfg *c = op->cfg;
  for (size_t i = 0; i < op->in_n[0]; i++) in[0][i] = (double)(float)in[0][i];
  if (c->null_idx) return;
  uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)(c->B * 131 + c->N_all);
  for (int b = 0; b < c->B; b++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    in[1][b] = (double)((s >> 33) % (uint64_t)c->N_all);
  }
  if (c->B >= 2) in[1][1] = in[1][0]; /* a repeat, always */
  if (c->oor) {
    const double bad[4] = {-1, c->N_all, INT_MAX, INT_MIN};
    for (int b = 0; b < c->B; b += 2) in[1][b] = bad[(b / 2) % 4];
  }
}

static void wp_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  wp_cfg *c = op->cfg;
  size_t saved = ctx->wg;
  if (c->wg) ctx->wg = c->wg;
  window_patches_forward(ctx, out[0], in[0], c->null_idx ? DB_NULL : in[1], c->B, c->N_all, c->H, c->W, c->p, c->w,
                         c->pad);
  ctx->wg = saved;
}

/* The work-group sizes every shape runs at: the device's own ctx->wg, then
 * 1, 64, 256 and the largest the device and kernel allow (without repeats). */
static int wg_sizes(size_t wg[5]) {
  static const char *const kernels[] = {"window_patches_forward", NULL};
  size_t r[4];
  int nr = th_row_wg_sizes("window_patches", kernels, r), n = 0;
  wg[n++] = 0;
  wg[n++] = 1;
  for (int i = 1; i < nr; i++) wg[n++] = r[i];
  return n;
}

static void run(int B, int N_all, int H, int W, int p, int w, int null_idx, int oor) {
  size_t wg[5];
  int nwg = wg_sizes(wg);
  for (int k = 0; k < nwg; k++) {
    wp_cfg c = {B, N_all, H, W, p, w, -0.75f, null_idx, oor, wg[k]};
    char wl[48];
    th_wg_label(wl, sizeof wl, wg[k]);
    th_op op;
    th_op_init(&op, "window_patches");
    char label[200];
    snprintf(label, sizeof label, "B=%d N=%d %dx%d p=%d w=%d%s%s%s", B, N_all, H, W, p, w,
             null_idx ? " idx=null" : "", oor ? " out-of-range" : "", wl);
    size_t len = strlen(label) < sizeof op.shape ? strlen(label) : sizeof op.shape - 1;
    memcpy(op.shape, label, len);
    op.shape[len] = 0;
    th_add_in(&op, "images", (size_t)N_all * H * W, 0);
    if (!null_idx) {
      th_add_in(&op, "idx", (size_t)B, 0);
      op.in_int[1] = N_all;
    }
    th_add_out(&op, "out", (size_t)B * (H / p) * (W / p) * w * w);
    op.init = wp_init;
    op.ref_fwd = wp_ref_fwd;
    op.dev_fwd = wp_dev_fwd;
    op.tol_fwd = 0; /* a gather: exact */
    op.cfg = &c;
    th_run_op(&op);
  }
}

/* w = p is single-channel patchify_forward, bit for bit: with idx = DB_NULL
 * and with idx the identity, at every work-group size. */
static void same_as_patchify(int N, int H, int W, int p) {
  size_t wg[5];
  int nwg = wg_sizes(wg);
  size_t n = (size_t)N * H * W;
  db_arena *a = db_arena_new(th_ctx, "window_patches vs patchify");
  float *img = db_malloc(n * sizeof *img), *want = db_malloc(n * sizeof *want), *got = db_malloc(n * sizeof *got);
  int *id = db_malloc((size_t)N * sizeof *id);
  db_rng_normal_host(img, n, 7, 0);
  for (int b = 0; b < N; b++) id[b] = b;
  db_tensor ti = th_tensor(a, n), tp = th_tensor(a, n), tw = th_tensor(a, n);
  int ishape[1] = {N};
  db_tensor tidx = db_alloc(a, DB_I32, 1, ishape);
  th_upload(ti, img);
  db_upload(th_ctx, tidx, id); /* its own buffer, written whole */
  patchify_forward(th_ctx, tp, ti, N, 1, H, W, p);
  db_download(th_ctx, tp, want);
  for (int k = 0; k < nwg; k++)
    for (int with_idx = 0; with_idx < 2; with_idx++) {
      char name[160], wl[48];
      th_wg_label(wl, sizeof wl, wg[k]);
      snprintf(name, sizeof name, "window_patches w=p == patchify N=%d H=%d W=%d p=%d%s%s", N, H, W, p,
               with_idx ? " idx=identity" : " idx=null", wl);
      th_upload(tw, NULL); /* sentinels everywhere: every element must be written */
      size_t saved = th_ctx->wg;
      if (wg[k]) th_ctx->wg = wg[k];
      window_patches_forward(th_ctx, tw, ti, with_idx ? tidx : DB_NULL, N, N, H, W, p, p, 0.0f);
      th_ctx->wg = saved;
      db_download(th_ctx, tw, got);
      int same = !memcmp(got, want, n * sizeof *got);
      th_check(same && th_guards_ok(tw) && th_guards_ok(ti), name, "%s%s", same ? "same" : "differs",
               th_guards_ok(tw) && th_guards_ok(ti) ? "" : ", guard region overwritten");
    }
  free(img); free(want); free(got); free(id);
  db_arena_free(a);
}

/* B = 0: nothing to do, nothing written (a 0-element view of a guarded tensor). */
static void empty_batch(void) {
  db_arena *a = db_arena_new(th_ctx, "window_patches B=0");
  db_tensor img = th_tensor(a, 2 * 8 * 8), full = th_tensor(a, 4);
  int z[1] = {0}, one[1] = {1};
  db_tensor out = db_view(full, 0, 1, z), idx = db_view(db_alloc(a, DB_I32, 1, one), 0, 1, z);
  const float before[4] = {1, 2, 3, 4};
  th_upload(full, before);
  window_patches_forward(th_ctx, out, img, DB_NULL, 0, 2, 8, 8, 4, 8, 0.0f);
  window_patches_forward(th_ctx, out, img, idx, 0, 2, 8, 8, 4, 8, 0.0f);
  float got[4];
  db_download(th_ctx, full, got);
  int untouched = !memcmp(got, before, sizeof got);
  th_check(untouched && th_guards_ok(full), "window_patches B=0 writes nothing", "output touched");
  db_arena_free(a);
}

/* Bad arguments: one clear error each. Tensors sized for B=3 N_all=4 8x8 p=4 w=8. */
static db_tensor e_out, e_img, e_idx, e_fidx, e_short;
static void err_cases(void) {
  const char *op = "window_patches_forward: ";
  char nd[12][96];
  snprintf(nd[0], 96, "%sinvalid sizes B=-1", op);
  snprintf(nd[1], 96, "%sinvalid sizes B=3 N_all=0", op);
  snprintf(nd[2], 96, "%sinvalid sizes B=3 N_all=4 H=8 W=8 p=0", op);
  snprintf(nd[3], 96, "%sH=8 and W=6 must be divisible by the patch size p=4", op);
  snprintf(nd[4], 96, "%swindow w=2 must be at least the patch size p=4", op);
  snprintf(nd[5], 96, "%swindow w=7 minus patch size p=4 must be even", op);
  snprintf(nd[6], 96, "%swindow w=66 exceeds the maximum 64", op);
  snprintf(nd[7], 96, "%swithout idx, N_all=2 must be at least B=3", op);
  snprintf(nd[8], 96, "%sargument out has shape", op);
  snprintf(nd[9], 96, "%sargument images has shape", op);
  snprintf(nd[10], 96, "%sargument idx has shape", op);
  snprintf(nd[11], 96, "%sargument idx must be an int32 tensor", op);
  TH_EXPECT_ERROR("window_patches rejects B < 0", nd[0],
                  { window_patches_forward(th_ctx, e_out, e_img, e_idx, -1, 4, 8, 8, 4, 8, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects N_all = 0", nd[1],
                  { window_patches_forward(th_ctx, e_out, e_img, e_idx, 3, 0, 8, 8, 4, 8, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects p = 0", nd[2],
                  { window_patches_forward(th_ctx, e_out, e_img, e_idx, 3, 4, 8, 8, 0, 8, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects W not divisible by p", nd[3],
                  { window_patches_forward(th_ctx, e_out, e_img, e_idx, 3, 4, 8, 6, 4, 8, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects w < p", nd[4],
                  { window_patches_forward(th_ctx, e_out, e_img, e_idx, 3, 4, 8, 8, 4, 2, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects odd w - p", nd[5],
                  { window_patches_forward(th_ctx, e_out, e_img, e_idx, 3, 4, 8, 8, 4, 7, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects w > 64", nd[6],
                  { window_patches_forward(th_ctx, e_out, e_img, e_idx, 3, 4, 8, 8, 4, 66, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects idx=null with N_all < B", nd[7],
                  { window_patches_forward(th_ctx, e_out, e_img, DB_NULL, 3, 2, 8, 8, 4, 8, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects a wrong-sized out", nd[8],
                  { window_patches_forward(th_ctx, e_short, e_img, e_idx, 3, 4, 8, 8, 4, 8, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects a wrong-sized images", nd[9],
                  { window_patches_forward(th_ctx, e_out, e_short, e_idx, 3, 4, 8, 8, 4, 8, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects a wrong-sized idx", nd[10],
                  { window_patches_forward(th_ctx, e_out, e_img, e_short, 3, 4, 8, 8, 4, 8, 0.0f); });
  TH_EXPECT_ERROR("window_patches rejects a float idx", nd[11],
                  { window_patches_forward(th_ctx, e_out, e_img, e_fidx, 3, 4, 8, 8, 4, 8, 0.0f); });
}
static void arg_errors(void) {
  db_arena *a = db_arena_new(th_ctx, "window_patches errors");
  int ishape[1] = {3}, sshape[1] = {5};
  e_out = db_new(a, 3, 3, 4, 64, 0);
  e_img = db_new(a, 3, 4, 8, 8, 0);
  e_idx = db_alloc(a, DB_I32, 1, ishape);
  e_fidx = db_new(a, 1, 3, 0, 0, 0);
  e_short = db_view(e_out, 0, 1, sshape);
  err_cases();
  db_arena_free(a);
}

void tests_window_patches(void) {
  if (th_small) {
    run(3, 4, 8, 8, 4, 8, 0, 1);   /* shuffled idx with a repeat and out-of-range rows */
    run(1, 2, 6, 4, 2, 4, 1, 0);   /* idx = DB_NULL, B = 1 */
    run(3, 3, 4, 6, 1, 3, 0, 0);   /* p = 1 */
    same_as_patchify(3, 8, 8, 4);
  } else {
    run(5, 9, 28, 28, 7, 15, 0, 0);  /* MNIST-sized, shuffled idx with a repeat */
    run(5, 9, 28, 28, 7, 15, 0, 1);  /* ... and out-of-range rows */
    run(3, 4, 28, 28, 4, 8, 0, 1);
    run(1, 2, 12, 16, 4, 4, 0, 0);   /* w = p, B = 1, rectangular */
    run(7, 9, 8, 12, 2, 6, 1, 0);    /* idx = DB_NULL, odd B */
    run(3, 3, 28, 28, 7, 7, 1, 0);
    run(2, 3, 5, 6, 1, 3, 0, 1);     /* p = 1 */
    run(1, 1, 16, 16, 4, 64, 0, 0);  /* the widest window: mostly pad */
    same_as_patchify(3, 28, 28, 7);
    same_as_patchify(1, 12, 16, 4);
  }
  empty_batch();
  arg_errors();
}
