/* gather_bytes: the plain-C reference (the float expression (float)v / div +
 * shift itself, so the check is exact: tol 0) through th_run_op (guarded
 * output and int32 idx at a non-zero offset) with the byte table in a guarded
 * uint8 buffer of its own (th_run_op's tensors are 4-byte: see dev_fwd), at
 * the device's own work-group size and forced GPU-style ones; all 256 byte
 * values against data/idx.h's idx_pixel_float bit for bit, and Fashion-MNIST's
 * test images against idx_load's floats; idx_pixels_from_images; out-of-range
 * idx rows; B = 0; the uint8 dtype in the runtime; a clear error for each bad
 * argument. Forward only: the op has no backward. */
#include "harness.h"
#include "../data/idx.h"
#include <limits.h>
#include <stdlib.h>

#define BGUARD 67               /* guard bytes on each side of a byte table */
static const uint8_t BSENT = 0xa5; /* their sentinel */

/* A (n)-byte DB_U8 tensor at offset BGUARD of a buffer with BGUARD sentinel
 * bytes on each side, written whole in ONE host write from offset 0 (as
 * th_upload does for float tensors: Oclgrind sees partial writes wrong). */
static db_tensor u8_guarded(db_arena *a, const uint8_t *data, size_t n) {
  int shape[1] = {(int)(n + 2 * BGUARD)};
  db_tensor full = db_alloc(a, DB_U8, 1, shape);
  uint8_t *buf = db_malloc(n + 2 * BGUARD);
  memset(buf, BSENT, n + 2 * BGUARD);
  memcpy(buf + BGUARD, data, n);
  db_upload(th_ctx, full, buf);
  free(buf);
  int vs[1] = {(int)n};
  return db_view(full, BGUARD, 1, vs);
}

static int u8_guards_ok(db_tensor t) {
  size_t n = db_numel(t);
  uint8_t *buf = db_malloc(n + 2 * BGUARD);
  CL_CHECK(clEnqueueReadBuffer(th_ctx->queue, t.mem, CL_TRUE, t.offset - BGUARD, n + 2 * BGUARD, buf, 0, NULL, NULL));
  int ok = 1;
  for (size_t i = 0; i < BGUARD; i++) ok &= buf[i] == BSENT && buf[BGUARD + n + i] == BSENT;
  free(buf);
  return ok;
}

typedef struct {
  int B, V, D;
  float div, shift;
  int oor;      /* 1: some idx values outside [0, V) */
  size_t wg;    /* forced ctx->wg; 0: the device's own */
  uint8_t *bytes; /* the table, set by gb_init */
} gb_cfg;

static float gb_map(const gb_cfg *c, uint8_t v) { return (float)v / c->div + c->shift; }

static void gb_ref_fwd(th_op *op, double **in, double **out) {
  gb_cfg *c = op->cfg;
  for (int b = 0; b < c->B; b++) {
    double n = in[1][b];
    for (int d = 0; d < c->D; d++)
      out[0][(size_t)b * c->D + d] =
          n >= 0 && n < c->V ? (double)gb_map(c, c->bytes[(size_t)n * c->D + d]) : (double)c->shift;
  }
}

/* Bytes: every value 0..255 somewhere when the table is large enough (a
 * seeded scramble); idx a shuffle with a repeat, and with c->oor a few rows
 * out of range (INT_MIN and INT_MAX too). */
static void gb_init(th_op *op, double **in) {
  gb_cfg *c = op->cfg;
  size_t n = (size_t)c->V * c->D;
  uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)(c->B * 131 + c->V * 7 + c->D);
  for (size_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    c->bytes[i] = (uint8_t)(i < 256 ? (i * 167 + 13) % 256 : s >> 56);
    in[0][i] = c->bytes[i];
  }
  for (int b = 0; b < c->B; b++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    in[1][b] = (double)((s >> 33) % (uint64_t)c->V);
  }
  if (c->B >= 2) in[1][1] = in[1][0];
  if (c->oor) {
    const double bad[4] = {-1, c->V, INT_MAX, INT_MIN};
    for (int b = 0; b < c->B; b += 2) in[1][b] = bad[(b / 2) % 4];
  }
}

/* in[0] is th_run_op's float copy of the table (unused); the op reads the
 * bytes from a guarded uint8 buffer made here, whose guards must survive. */
static void gb_dev_fwd(th_op *op, db_ctx *ctx, db_tensor *in, db_tensor *out) {
  gb_cfg *c = op->cfg;
  db_tensor table = u8_guarded(op->arena, c->bytes, (size_t)c->V * c->D);
  int shape[2] = {c->V, c->D};
  table = db_view(table, 0, 2, shape);
  size_t saved = ctx->wg;
  if (c->wg) ctx->wg = c->wg;
  gather_bytes_forward(ctx, out[0], in[1], table, c->B, c->D, c->V, c->div, c->shift);
  ctx->wg = saved;
  char name[200];
  snprintf(name, sizeof name, "gather_bytes %s: byte table untouched, its guards intact", op->shape);
  th_check(u8_guards_ok(table), name, "guard bytes overwritten");
}

/* The work-group sizes every shape runs at: the device's own ctx->wg, then
 * 1, 64, 256 and the largest the device and kernel allow (without repeats). */
static int wg_sizes(size_t wg[5]) {
  static const char *const kernels[] = {"gather_bytes_forward", NULL};
  size_t r[4];
  int nr = th_row_wg_sizes("gather_bytes", kernels, r), n = 0;
  wg[n++] = 0;
  wg[n++] = 1;
  for (int i = 1; i < nr; i++) wg[n++] = r[i];
  return n;
}

static void run(int B, int V, int D, float div, float shift, int oor) {
  size_t wg[5];
  int nwg = wg_sizes(wg);
  for (int k = 0; k < nwg; k++) {
    gb_cfg c = {B, V, D, div, shift, oor, wg[k], db_malloc((size_t)V * D)};
    char wl[48];
    th_wg_label(wl, sizeof wl, wg[k]);
    th_op op;
    th_op_init(&op, "gather_bytes");
    char label[200];
    snprintf(label, sizeof label, "B=%d V=%d D=%d div=%g shift=%g%s%s", B, V, D, div, shift, oor ? " oor" : "", wl);
    size_t len = strlen(label) < sizeof op.shape ? strlen(label) : sizeof op.shape - 1;
    memcpy(op.shape, label, len);
    op.shape[len] = 0;
    th_add_in(&op, "table", (size_t)V * D, 0);
    th_add_in(&op, "idx", (size_t)B, 0);
    op.in_int[1] = V;
    th_add_out(&op, "out", (size_t)B * D);
    op.init = gb_init;
    op.ref_fwd = gb_ref_fwd;
    op.dev_fwd = gb_dev_fwd;
    op.tol_fwd = 0; /* the same float expression: exact */
    op.cfg = &c;
    th_run_op(&op);
    free(c.bytes);
  }
}

/* Every byte value through the image mapping (div 127.5, shift -1) gives
 * idx_pixel_float(v), the float idx_load stores, bit for bit: 256 rows of
 * one byte and 16 rows of 16, in a shuffled order, at every work-group size. */
static void all_bytes_exact(void) {
  size_t wg[5];
  int nwg = wg_sizes(wg);
  db_arena *a = db_arena_new(th_ctx, "gather_bytes all bytes");
  uint8_t bytes[256];
  int id[256];
  float want[256], got[256];
  for (int v = 0; v < 256; v++) bytes[v] = (uint8_t)v;
  for (int b = 0; b < 256; b++) id[b] = (b * 97 + 31) % 256; /* a permutation: 97 is odd */
  db_tensor table = db_alloc(a, DB_U8, 2, (int[]){256, 1}), idx = db_alloc(a, DB_I32, 1, (int[]){256});
  db_tensor out = th_tensor(a, 256);
  db_upload(th_ctx, table, bytes);
  db_upload(th_ctx, idx, id);
  int naive = 0; /* how many v * (1/127.5f) - 1 would get wrong: why the kernel does not compute that */
  for (int v = 0; v < 256; v++) naive += (float)v * (1.0f / 127.5f) - 1.0f != idx_pixel_float((uint8_t)v);
  for (int layout = 0; layout < 2; layout++) {
    int V = layout ? 16 : 256, D = layout ? 16 : 1, B = layout ? 16 : 256;
    for (int b = 0; b < 256; b++) want[b] = idx_pixel_float(layout ? (uint8_t)((id[b / 16] % 16) * 16 + b % 16) : bytes[id[b]]);
    db_tensor t = db_view(table, 0, 2, (int[]){V, D}), ix = db_view(idx, 0, 1, (int[]){B});
    int ixs[16];
    if (layout) { /* rows id[b] % 16 */
      for (int b = 0; b < 16; b++) ixs[b] = id[b] % 16;
      db_upload(th_ctx, ix, ixs);
    }
    for (int k = 0; k < nwg; k++) {
      char name[160], wl[48];
      th_wg_label(wl, sizeof wl, wg[k]);
      snprintf(name, sizeof name, "gather_bytes: all 256 byte values as (%d,%d) rows == idx_pixel_float bit for bit%s",
               V, D, wl);
      th_upload(out, NULL);
      size_t saved = th_ctx->wg;
      if (wg[k]) th_ctx->wg = wg[k];
      gather_bytes_forward(th_ctx, out, ix, t, B, D, V, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT);
      th_ctx->wg = saved;
      db_download(th_ctx, out, got);
      int diff = 0;
      for (int i = 0; i < 256; i++) diff += memcmp(&got[i], &want[i], sizeof(float)) != 0;
      th_check(!diff && th_guards_ok(out), name, "%d of 256 differ%s (v * (1/127.5f) - 1 would differ in %d)", diff,
               th_guards_ok(out) ? "" : ", guard region overwritten", naive);
    }
    if (layout) db_upload(th_ctx, idx, id);
  }
  db_arena_free(a);
}

/* idx_pixels_from_images: round((x + 1) * 127.5) clamped (NaN: 0), and the
 * images snapped to idx_pixel_float of their bytes. */
static void pixels_from_floats(void) {
  float x[10] = {-1.0f, 1.0f, 0.0f, 2.0f, -3.0f, NAN, idx_pixel_float(37), 0.3f, -0.999f, 1.0f / 255.0f};
  const uint8_t want[10] = {0, 255, 128, 255, 0, 0, 37, 166, 0, 128};
  idx_dataset d = {.n = 1, .rows = 2, .cols = 5, .n_classes = 1};
  d.images = db_malloc(sizeof x);
  memcpy(d.images, x, sizeof x);
  idx_pixels_from_images(&d);
  int ok = 1;
  for (int i = 0; i < 10; i++) ok &= d.pixels[i] == want[i] && d.images[i] == idx_pixel_float(want[i]);
  th_check(ok, "gather_bytes: idx_pixels_from_images rounds (x+1)*127.5, clamps, and snaps the floats to the bytes",
           "bytes %d %d %d %d %d %d %d %d %d %d", d.pixels[0], d.pixels[1], d.pixels[2], d.pixels[3], d.pixels[4],
           d.pixels[5], d.pixels[6], d.pixels[7], d.pixels[8], d.pixels[9]);
  idx_free(&d);
  th_check(!d.pixels && !d.images, "gather_bytes: idx_free frees and clears the pixels too", "not cleared");
}

/* Fashion-MNIST's test split (when installed): idx_load's pixels are the
 * bytes of its floats, and the device gather of every image gives the very
 * floats idx_load made, bit for bit: what keeps training bit-identical to the
 * float32 dataset it replaces. */
static void fashion_mnist_exact(void) {
  FILE *f = fopen("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb");
  if (!f) {
    printf("  skip  gather_bytes: Fashion-MNIST (dataset-fashion-mnist) not installed\n");
    return;
  }
  fclose(f);
  idx_dataset d = idx_load(NULL, "test");
  int n = d.n, D = d.rows * d.cols;
  size_t total = (size_t)n * D, same = 0;
  for (size_t i = 0; i < total; i++) same += d.images[i] == idx_pixel_float(d.pixels[i]);
  th_check(d.pixels && same == total, "gather_bytes: idx_load's floats are idx_pixel_float of its pixels (Fashion-MNIST test)",
           "%zu of %zu", same, total);
  db_arena *a = db_arena_new(th_ctx, "gather_bytes fashion-mnist");
  db_tensor table = db_alloc(a, DB_U8, 2, (int[]){n, D}), idx = db_alloc(a, DB_I32, 1, (int[]){n});
  db_tensor out = db_new(a, 2, n, D, 0, 0);
  int *id = db_malloc(sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++) id[i] = (int)(((uint64_t)i * 7919) % (uint64_t)n); /* 7919 prime, n = 10000: a permutation */
  db_upload(th_ctx, table, d.pixels);
  db_upload(th_ctx, idx, id);
  gather_bytes_forward(th_ctx, out, idx, table, n, D, n, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT);
  float *got = db_malloc(sizeof(float) * total);
  db_download(th_ctx, out, got);
  size_t diff = 0;
  for (int b = 0; b < n; b++) diff += memcmp(got + (size_t)b * D, d.images + (size_t)id[b] * D, sizeof(float) * D) != 0;
  th_check(!diff, "gather_bytes: all 10000 Fashion-MNIST test images gathered from bytes == idx_load's floats bit for bit",
           "%zu images differ", diff);
  th_check(db_nbytes(table) * 4 == (size_t)n * D * sizeof(float), "gather_bytes: the byte table is a quarter of float32",
           "%zu bytes", db_nbytes(table));
  free(id);
  free(got);
  db_arena_free(a);
  idx_free(&d);
}

/* B = 0: nothing to do, nothing written. */
static void empty_batch(void) {
  db_arena *a = db_arena_new(th_ctx, "gather_bytes B=0");
  db_tensor table = db_alloc(a, DB_U8, 2, (int[]){2, 3}), full = th_tensor(a, 4);
  db_tensor idx = db_view(db_alloc(a, DB_I32, 1, (int[]){1}), 0, 1, (int[]){0});
  db_tensor out = db_view(full, 0, 1, (int[]){0});
  const float before[4] = {1, 2, 3, 4};
  const uint8_t tb[6] = {0};
  db_upload(th_ctx, table, tb);
  th_upload(full, before);
  gather_bytes_forward(th_ctx, out, idx, table, 0, 3, 2, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT);
  float got[4];
  db_download(th_ctx, full, got);
  th_check(!memcmp(got, before, sizeof got) && th_guards_ok(full), "gather_bytes B=0 writes nothing", "output touched");
  db_arena_free(a);
}

/* The uint8 dtype in the runtime: sizes, views, upload/download, zero, and the
 * errors that keep byte tensors out of the float ops. */
static db_tensor u_t, u_f;
static void u8_runtime(void) {
  db_arena *a = db_arena_new(th_ctx, "uint8 tensors");
  size_t live0 = db_live_bytes();
  u_t = db_alloc(a, DB_U8, 2, (int[]){3, 5});
  th_check(db_nbytes(u_t) == 15 && db_dtype_size(DB_U8) == 1 && db_arena_bytes(a) == 15 && db_live_bytes() == live0 + 15,
           "uint8 tensors: a (3,5) tensor is 15 bytes, counted as 15 live bytes", "nbytes %zu arena %zu live +%zu",
           db_nbytes(u_t), db_arena_bytes(a), db_live_bytes() - live0);
  uint8_t in[15], out[15], row[5];
  for (int i = 0; i < 15; i++) in[i] = (uint8_t)(i * 17 + 1);
  db_upload(th_ctx, u_t, in);
  db_download(th_ctx, u_t, out);
  db_tensor v = db_view(u_t, 5, 1, (int[]){5});
  db_download(th_ctx, v, row);
  th_check(!memcmp(in, out, 15) && !memcmp(row, in + 5, 5) && v.offset == u_t.offset + 5 && db_eoff(v) == db_eoff(u_t) + 5,
           "uint8 tensors: upload/download round trip; a view 5 elements in is 5 bytes in", "differs");
  db_zero(th_ctx, v);
  db_download(th_ctx, u_t, out);
  int zero_ok = out[4] == in[4] && out[10] == in[10];
  for (int i = 5; i < 10; i++) zero_ok &= out[i] == 0;
  th_check(zero_ok, "uint8 tensors: db_zero clears exactly the view's bytes", "wrong bytes");
  u_f = db_new(a, 1, 15, 0, 0, 0);
  TH_EXPECT_ERROR("uint8 tensors: db_fill with a non-zero value is a clear error", "a uint8 tensor cannot hold",
                  { db_fill(th_ctx, u_t, 1.0f); });
  TH_EXPECT_ERROR("uint8 tensors: db_copy between uint8 and float32 is a clear error", "do not mix",
                  { db_copy(th_ctx, u_f, u_t); });
  TH_EXPECT_ERROR("uint8 tensors: a float op refuses one (db_check_numel)",
                  "reduce_sum: argument inp is a uint8 tensor", { reduce_sum(th_ctx, db_view(u_f, 0, 1, (int[]){1}), u_t, 15); });
  db_arena_free(a);
  th_check(db_live_bytes() == live0, "uint8 tensors: freeing the arena gives the bytes back", "live +%zu",
           db_live_bytes() - live0);
}

/* Bad arguments: one clear error each. Tensors sized for B=3 V=4 D=5. */
static db_tensor e_out, e_idx, e_tab, e_fidx, e_ftab, e_uout, e_short, e_ushort;
static void err_cases(void) {
  const char *op = "gather_bytes_forward: ";
  char nd[16][120];
  snprintf(nd[0], 120, "%sinvalid sizes B=-1", op);
  snprintf(nd[1], 120, "%sinvalid sizes B=3 D=0", op);
  snprintf(nd[2], 120, "%sinvalid sizes B=3 D=5 V=0", op);
  snprintf(nd[3], 120, "%sdivisor 0 must be finite", op);
  snprintf(nd[4], 120, "%sdivisor inf must be finite", op);
  snprintf(nd[5], 120, "%sdivisor nan must be finite", op);
  snprintf(nd[6], 120, "%sdivisor 1e-37 must be finite, with 1/div and 255/div normal floats", op);
  snprintf(nd[7], 120, "%sshift nan must be finite", op);
  snprintf(nd[8], 120, "%sargument out has shape", op);
  snprintf(nd[9], 120, "%sargument idx has shape", op);
  snprintf(nd[10], 120, "%sargument table has shape", op);
  snprintf(nd[11], 120, "%sargument idx must be an int32 tensor", op);
  snprintf(nd[12], 120, "%sargument table must be a uint8 tensor", op);
  snprintf(nd[13], 120, "%sargument out is a uint8 tensor", op);
  snprintf(nd[14], 120, "%sargument idx is missing", op);
  snprintf(nd[15], 120, "%sdivisor 1e+38 must be finite, with 1/div and 255/div normal floats", op);
  float D127 = IDX_PIXEL_DIV, S = IDX_PIXEL_SHIFT;
  TH_EXPECT_ERROR("gather_bytes rejects B < 0", nd[0], { gather_bytes_forward(th_ctx, e_out, e_idx, e_tab, -1, 5, 4, D127, S); });
  TH_EXPECT_ERROR("gather_bytes rejects D = 0", nd[1], { gather_bytes_forward(th_ctx, e_out, e_idx, e_tab, 3, 0, 4, D127, S); });
  TH_EXPECT_ERROR("gather_bytes rejects V = 0", nd[2], { gather_bytes_forward(th_ctx, e_out, e_idx, e_tab, 3, 5, 0, D127, S); });
  TH_EXPECT_ERROR("gather_bytes rejects div = 0", nd[3], { gather_bytes_forward(th_ctx, e_out, e_idx, e_tab, 3, 5, 4, 0.0f, S); });
  TH_EXPECT_ERROR("gather_bytes rejects div = inf", nd[4],
                  { gather_bytes_forward(th_ctx, e_out, e_idx, e_tab, 3, 5, 4, INFINITY, S); });
  TH_EXPECT_ERROR("gather_bytes rejects div = nan", nd[5], { gather_bytes_forward(th_ctx, e_out, e_idx, e_tab, 3, 5, 4, NAN, S); });
  TH_EXPECT_ERROR("gather_bytes rejects a div whose 255/div overflows", nd[6],
                  { gather_bytes_forward(th_ctx, e_out, e_idx, e_tab, 3, 5, 4, 1e-37f, S); });
  TH_EXPECT_ERROR("gather_bytes rejects a div whose 1/div is subnormal", nd[15],
                  { gather_bytes_forward(th_ctx, e_out, e_idx, e_tab, 3, 5, 4, 1e38f, S); });
  TH_EXPECT_ERROR("gather_bytes rejects shift = nan", nd[7],
                  { gather_bytes_forward(th_ctx, e_out, e_idx, e_tab, 3, 5, 4, D127, NAN); });
  TH_EXPECT_ERROR("gather_bytes rejects a wrong-sized out", nd[8],
                  { gather_bytes_forward(th_ctx, e_short, e_idx, e_tab, 3, 5, 4, D127, S); });
  TH_EXPECT_ERROR("gather_bytes rejects a wrong-sized idx", nd[9],
                  { gather_bytes_forward(th_ctx, e_out, e_short, e_tab, 3, 5, 4, D127, S); });
  TH_EXPECT_ERROR("gather_bytes rejects a wrong-sized table", nd[10],
                  { gather_bytes_forward(th_ctx, e_out, e_idx, e_ushort, 3, 5, 4, D127, S); });
  TH_EXPECT_ERROR("gather_bytes rejects a float idx", nd[11],
                  { gather_bytes_forward(th_ctx, e_out, e_fidx, e_tab, 3, 5, 4, D127, S); });
  TH_EXPECT_ERROR("gather_bytes rejects a float table", nd[12],
                  { gather_bytes_forward(th_ctx, e_out, e_idx, e_ftab, 3, 5, 4, D127, S); });
  TH_EXPECT_ERROR("gather_bytes rejects a uint8 out", nd[13],
                  { gather_bytes_forward(th_ctx, e_uout, e_idx, e_tab, 3, 5, 4, D127, S); });
  TH_EXPECT_ERROR("gather_bytes rejects a missing idx", nd[14],
                  { gather_bytes_forward(th_ctx, e_out, DB_NULL, e_tab, 3, 5, 4, D127, S); });
}
static void arg_errors(void) {
  db_arena *a = db_arena_new(th_ctx, "gather_bytes errors");
  e_out = db_new(a, 2, 3, 5, 0, 0);
  e_idx = db_alloc(a, DB_I32, 1, (int[]){3});
  e_tab = db_alloc(a, DB_U8, 2, (int[]){4, 5});
  e_fidx = db_new(a, 1, 3, 0, 0, 0);
  e_ftab = db_new(a, 2, 4, 5, 0, 0);
  e_uout = db_alloc(a, DB_U8, 2, (int[]){3, 5});
  e_short = db_view(e_out, 0, 1, (int[]){2});
  e_ushort = db_view(e_tab, 0, 1, (int[]){7});
  err_cases();
  db_arena_free(a);
}

void tests_gather_bytes(void) {
  if (th_small) {
    run(3, 4, 5, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT, 1); /* shuffled idx with a repeat and out-of-range rows */
    run(1, 2, 7, 3.0f, 0.25f, 0);                    /* B = 1, another mapping */
    run(5, 3, 64, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT, 0); /* every byte value in the table */
  } else {
    run(37, 100, 784, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT, 0); /* Fashion-MNIST rows */
    run(37, 100, 784, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT, 1); /* ... and out-of-range rows */
    run(1, 1, 1, IDX_PIXEL_DIV, IDX_PIXEL_SHIFT, 0);
    run(7, 9, 33, 255.0f, 0.0f, 1);                  /* [0, 1] */
    run(256, 16, 64, -7.5f, 2.0f, 0);                /* a negative divisor, a full GPU-sized batch */
    run(3, 5, 1000, 1.0f, 0.0f, 0);                  /* plain bytes as floats, rows longer than a group */
  }
  all_bytes_exact();
  pixels_from_floats();
  if (!th_small) fashion_mnist_exact();
  empty_batch();
  u8_runtime();
  arg_errors();
}
