/* The two model-driven figures of `dblocks report` (issue 12), drawn with cairo.
 *
 * The denoising trajectory (image runs, PNG): every class sampled once from
 * z = σ_max ε with Euler steps on a noise grid that holds σ_max, `inside`
 * levels inside each block's range (equally spaced in ln σ) and the lower end
 * of each block's range, where it hands over to the next block (the last
 * block hands over to the data at σ_min; the Euler step from σ_min to 0 makes
 * the image D(z; σ_min) exactly, so that column is the output). Those are the
 * figure's columns; between two of them the sampler takes extra steps (equal
 * in ln σ, at least TRAJ_MIN_STEPS in all) so the images are as good as a
 * normal sampling run's, and the columns are read through the sampler's step
 * hook (sample_images_traced). Each cell shows D(z), the block's guess of the
 * clean image, above z, the state it was given (clipped to [-1, 1]).
 *
 * The generation trace (LM runs, SVG): the prompt primed as lm-sample does,
 * the first byte generated with lm-sample's defaults (50 Euler steps on the
 * ρ = 7 schedule, argmax), and at each step the top-k bytes of softmax(logits),
 * the denoised byte distribution whose mean embedding is D(z), read through
 * lm_generate_traced's step hook. One column per step, grouped and coloured by
 * the block that ran it.
 *
 * Files are written through the atomic writer (data/file_io.h); the output
 * path is tried before any sampling so a bad one fails at once. */
#include "report_traces.h"
#include "../data/file_io.h"
#include "../models/checkpoint.h"
#include "../models/lm_sampler.h"
#include "../models/manifest.h"
#include "../models/sampler.h"
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAJ_MIN_STEPS 40   /* Euler steps of the trajectory's sampler, at least */
#define TRAJ_MAX_INSIDE 16
#define TRAJ_SCALE 3        /* nearest-neighbour upscaling of every image */
#define TRAJ_GUIDANCE 2.0   /* dblocks sample's default */
#define TRACE_STEPS 50      /* dblocks lm-sample's defaults */
#define TRACE_RHO 7.0
#define TRACE_MAX_K 256

/* ---------------------------------------------------------------- shared */

/* block colours (Tableau 10), cycled */
static void block_rgb(int b, double rgb[3]) {
  static const unsigned pal[] = {0x4e79a7, 0xf28e2b, 0x59a14f, 0xe15759, 0x76b7b2, 0xedc948, 0xb07aa1, 0xff9da7, 0x9c755f, 0xbab0ac};
  unsigned c = pal[(b < 0 ? 0 : b) % 10];
  rgb[0] = (c >> 16 & 255) / 255.0;
  rgb[1] = (c >> 8 & 255) / 255.0;
  rgb[2] = (c & 255) / 255.0;
}
static void set_block_rgb(cairo_t *cr, int b, double alpha) {
  double c[3];
  block_rgb(b, c);
  cairo_set_source_rgba(cr, c[0], c[1], c[2], alpha);
}

/* Fails now, before any work, if PATH cannot be written (missing folder, a directory, no permission). */
static void probe_output(const char *path) {
  atomic_file f;
  atomic_open(&f, path, NULL);
  if (atomic_error(&f)) atomic_check(&f);
  atomic_abort(&f);
}

static cairo_status_t write_atomic(void *closure, const unsigned char *data, unsigned int len) {
  atomic_write(closure, data, len);
  return CAIRO_STATUS_SUCCESS;
}

static void cairo_ok(cairo_status_t st, const char *what, const char *path) {
  if (st != CAIRO_STATUS_SUCCESS) db_fail("report: %s for %s: cairo: %s", what, path, cairo_status_to_string(st));
}

static void text_at(cairo_t *cr, double x, double y, double size, int bold, const char *s) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_move_to(cr, x, y);
  cairo_show_text(cr, s);
}
/* s centred horizontally on cx */
static void text_centred(cairo_t *cr, double cx, double y, double size, int bold, const char *s) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  cairo_move_to(cr, cx - e.width / 2 - e.x_bearing, y);
  cairo_show_text(cr, s);
}

/* ---------------------------------------------------------------- denoising trajectory */

typedef struct {
  size_t img;
  int *col_of_step; /* sampler step -> figure column, or -1 */
  float **z, **D;   /* per column: (n, img) */
  int *block;       /* per column: the block that evaluated it */
} traj_rec;

static void traj_step(void *user, int first, int m, int step, double sigma, int block, const float *z, const float *D) {
  (void)sigma;
  traj_rec *t = user;
  int c = t->col_of_step[step];
  if (c < 0 || !D) return;
  memcpy(t->z[c] + (size_t)first * t->img, z, (size_t)m * t->img * sizeof *z);
  memcpy(t->D[c] + (size_t)first * t->img, D, (size_t)m * t->img * sizeof *D);
  t->block[c] = block;
}

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

/* one image (channel 0 grey, or RGB for 3 channels), [-1,1] -> 0..255 (clipped, NaN -> black),
 * drawn at (x, y) upscaled by TRAJ_SCALE with nearest-neighbour filtering */
static void draw_image(cairo_t *cr, const float *v, int C, int H, int W, double x, double y) {
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  cairo_surface_flush(s);
  unsigned char *px = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  for (int i = 0; i < H; i++)
    for (int j = 0; j < W; j++) {
      unsigned g[3];
      for (int k = 0; k < 3; k++) {
        float f = v[(size_t)(C == 3 ? k : 0) * H * W + (size_t)i * W + j];
        double d = f != f ? -1.0 : f < -1 ? -1.0 : f > 1 ? 1.0 : f;
        g[k] = (unsigned)lround((d + 1) * 127.5);
      }
      uint32_t p = 0xff000000u | g[0] << 16 | g[1] << 8 | g[2];
      memcpy(px + (size_t)i * stride + (size_t)j * 4, &p, 4);
    }
  cairo_surface_mark_dirty(s);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_scale(cr, TRAJ_SCALE, TRAJ_SCALE);
  cairo_set_source_surface(cr, s, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_rectangle(cr, 0, 0, W, H);
  cairo_fill(cr);
  cairo_restore(cr);
  cairo_surface_destroy(s);
}

int report_image_trajectory(db_ctx *ctx, const char *run_dir, const char *png_path, int inside, uint64_t seed) {
  if (!run_dir || !*run_dir) db_fail("report: the trajectory needs a run directory");
  if (!png_path || !*png_path) db_fail("report: the trajectory needs an output path");
  if (inside < 0 || inside > TRAJ_MAX_INSIDE)
    db_fail("report: %d steps inside each block: must be in 0..%d", inside, TRAJ_MAX_INSIDE);
  run_config rc;
  manifest_read(run_dir, &rc);
  if (rc.task != TASK_IMAGE)
    db_fail("report: %s/manifest.json is a%s %s run, not an image generator: the denoising trajectory is drawn for "
            "image runs only%s", run_dir, rc.task == TASK_LM ? "n" : "", task_name(rc.task),
            rc.task == TASK_LM ? " (a language model gets the generation trace)" : "");
  int B = rc.blocks, C = rc.model.n_classes, H = rc.model.img_h, W = rc.model.img_w, ch = rc.model.in_ch;
  size_t img = (size_t)ch * H * W;
  for (int b = 0; b < B; b++) { /* every block file, before loading any */
    char path[1024];
    block_file(path, sizeof path, run_dir, b);
    FILE *f = fopen(path, "rb");
    if (!f) db_fail("report: %s is missing: train block %d first (dblocks train --out %s --block %d)", path, b, run_dir, b);
    fclose(f);
  }
  probe_output(png_path);
  dit_block *blocks = db_calloc((size_t)B, sizeof *blocks);
  for (int b = 0; b < B; b++) {
    char name[32], path[1024];
    snprintf(name, sizeof name, "block %d", b);
    dit_block_create(ctx, &blocks[b], rc.model, name);
    if (block_load(ctx, run_dir, b, &blocks[b].ps) < 0) {
      block_file(path, sizeof path, run_dir, b);
      db_fail("report: %s is missing: train block %d first (dblocks train --out %s --block %d)", path, b, run_dir, b);
    }
  }

  /* the columns: σ_max, then per block its `inside` levels and the lower end of its range */
  int ncol = 1 + B * (inside + 1);
  double *colsig = db_malloc(sizeof(double) * (size_t)ncol);
  int c = 0;
  colsig[c++] = rc.bounds[B];
  for (int b = 0; b < B; b++) {
    double hi = rc.bounds[B - b], lo = rc.bounds[B - 1 - b];
    for (int i = 1; i <= inside; i++) colsig[c++] = exp(log(hi) + (double)i / (inside + 1) * (log(lo) - log(hi)));
    colsig[c++] = lo;
  }
  /* the sampler's grid: `sub` steps between neighbouring columns, then σ_min -> 0 */
  int sub = (TRAJ_MIN_STEPS + ncol - 2) / (ncol - 1);
  if (sub < 1) sub = 1;
  int steps = (ncol - 1) * sub + 1;
  double *sig = db_malloc(sizeof(double) * (size_t)(steps + 1));
  int *col_of_step = db_malloc(sizeof(int) * (size_t)(steps + 1));
  for (int j = 0; j <= steps; j++) col_of_step[j] = -1;
  for (c = 0; c + 1 < ncol; c++)
    for (int s = 0; s < sub; s++) sig[c * sub + s] = s == 0 ? colsig[c] : colsig[c] * pow(colsig[c + 1] / colsig[c], (double)s / sub);
  sig[steps - 1] = colsig[ncol - 1];
  sig[steps] = 0;
  for (c = 0; c < ncol; c++) col_of_step[c * sub] = c;

  int *labels = db_malloc(sizeof(int) * (size_t)C);
  for (int i = 0; i < C; i++) labels[i] = i;
  traj_rec t = {img, col_of_step, db_calloc((size_t)ncol, sizeof(float *)), db_calloc((size_t)ncol, sizeof(float *)),
                db_malloc(sizeof(int) * (size_t)ncol)};
  for (c = 0; c < ncol; c++) {
    t.z[c] = db_calloc((size_t)C * img, sizeof(float));
    t.D[c] = db_calloc((size_t)C * img, sizeof(float));
    t.block[c] = -1;
  }
  float *out = db_malloc(sizeof(float) * (size_t)C * img);
  sampler_opts so = {steps, 7.0, 0, TRAJ_GUIDANCE, seed, 256};
  sample_images_traced(ctx, blocks, &rc, labels, C, so, sig, steps, traj_step, &t, out);

  /* ---- the picture */
  const int S = TRAJ_SCALE, cw = W * S, chh = H * S, gap = 4, bgap = 14, left = 150, top = 112, rowgap = 12;
  const int rowh = 2 * chh + 3;
  double *x = db_malloc(sizeof(double) * (size_t)ncol);
  double xx = left;
  for (c = 0; c < ncol; c++) {
    if (c > 0) xx += cw + gap + (t.block[c] != t.block[c - 1] ? bgap : 0);
    x[c] = xx;
  }
  int width = (int)(xx + cw + 20), height = top + C * (rowh + rowgap) + 36;
  if (width < 1000) width = 1000;
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  cairo_ok(cairo_surface_status(surf), "the trajectory's image", png_path);
  cairo_t *cr = cairo_create(surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  /* block groups: a tinted band behind each block's columns, its name and σ range on top */
  for (c = 0; c < ncol;) {
    int e = c;
    while (e + 1 < ncol && t.block[e + 1] == t.block[c]) e++;
    int b = t.block[c];
    double x0 = x[c] - 5, x1 = x[e] + cw + 5;
    set_block_rgb(cr, b, 0.16);
    cairo_rectangle(cr, x0, 62, x1 - x0, height - 62 - 28);
    cairo_fill(cr);
    set_block_rgb(cr, b, 1.0);
    cairo_rectangle(cr, x0, 62, x1 - x0, 20);
    cairo_fill(cr);
    char lab[96];
    double lo, hi;
    edm_block_range(rc.bounds, B, b < 0 ? 0 : b, &lo, &hi);
    if (x1 - x0 > 150) snprintf(lab, sizeof lab, "block %d   (σ %.3g … %.3g)", b, hi, lo);
    else snprintf(lab, sizeof lab, "block %d", b);
    cairo_set_source_rgb(cr, 1, 1, 1);
    text_centred(cr, (x0 + x1) / 2, 77, 12, 1, lab);
    c = e + 1;
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  char buf[512];
  snprintf(buf, sizeof buf, "Denoising trajectory of %s", run_dir);
  text_at(cr, 12, 24, 17, 1, buf);
  snprintf(buf, sizeof buf,
           "one row per class, from z = σ_max ε (seed %llu); per column: D(z), the block's clean guess (top), and z, "
           "clipped to [-1, 1] (bottom)", (unsigned long long)seed);
  text_at(cr, 12, 42, 11, 0, buf);
  snprintf(buf, sizeof buf,
           "%d blocks, block 0 owns the highest σ; columns at each block's hand-over σ and %d level%s inside it; "
           "Euler, %d steps, guidance %g; last column = the output", B, inside, inside == 1 ? "" : "s", steps, TRAJ_GUIDANCE);
  text_at(cr, 12, 56, 11, 0, buf);
  for (c = 0; c < ncol; c++) {
    snprintf(buf, sizeof buf, "σ = %.3g", colsig[c]);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_centred(cr, x[c] + cw / 2.0, 98, 11, 0, buf);
    const char *role = c == 0 ? "start" : c == ncol - 1 ? "→ output" : colsig[c] == rc.bounds[B - 1 - t.block[c]] ? "hands over" : "";
    if (*role) text_centred(cr, x[c] + cw / 2.0, 109, 9, 0, role);
  }
  for (int r = 0; r < C; r++) {
    double y = top + r * (rowh + rowgap);
    char name[64];
    if (C == 10 && H == 28 && W == 28 && ch == 1) snprintf(name, sizeof name, "%d %s", r, fashion_names[r]);
    else snprintf(name, sizeof name, "class %d", r);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_at(cr, 10, y + chh + 5, 12, 1, name);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    text_at(cr, left - 40, y + chh / 2.0 + 4, 10, 0, "D(z)");
    text_at(cr, left - 40, y + chh + 3 + chh / 2.0 + 4, 10, 0, "z");
    for (c = 0; c < ncol; c++) {
      draw_image(cr, t.D[c] + (size_t)r * img, ch, H, W, x[c], y);
      draw_image(cr, t.z[c] + (size_t)r * img, ch, H, W, x[c], y + chh + 3);
    }
  }
  cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
  text_at(cr, 12, height - 12, 10, 0,
          "Read it left to right: in which block's columns does D(z) settle the silhouette, and which blocks only "
          "change texture and edges?");
  cairo_surface_flush(surf);
  cairo_ok(cairo_status(cr), "drawing the trajectory", png_path);
  atomic_file f;
  atomic_open(&f, png_path, NULL);
  cairo_status_t st = cairo_surface_write_to_png_stream(surf, write_atomic, &f);
  if (st != CAIRO_STATUS_SUCCESS) atomic_fail(&f, "cairo: %s", cairo_status_to_string(st));
  atomic_commit(&f);
  cairo_destroy(cr);
  cairo_surface_destroy(surf);

  for (c = 0; c < ncol; c++) { free(t.z[c]); free(t.D[c]); }
  free(t.z); free(t.D); free(t.block);
  free(x); free(out); free(labels); free(sig); free(col_of_step); free(colsig);
  for (int b = 0; b < B; b++) dit_block_destroy(&blocks[b]);
  free(blocks);
  return 0;
}

/* ---------------------------------------------------------------- generation trace */

typedef struct {
  int M;
  double *p;     /* (M, 256): softmax of each step's logits, token 0 */
  double *sigma;
  int *block;
} trace_rec;

static void trace_step(void *user, int k, int step, double sigma, int block, const float *logits, int R) {
  (void)R;
  trace_rec *t = user;
  if (k != 0 || step >= t->M) return;
  double mx = logits[0], s = 0, *p = t->p + (size_t)step * LM_VOCAB;
  for (int v = 1; v < LM_VOCAB; v++) mx = fmax(mx, logits[v]);
  for (int v = 0; v < LM_VOCAB; v++) s += p[v] = exp((double)logits[v] - mx);
  for (int v = 0; v < LM_VOCAB; v++) p[v] /= s;
  t->sigma[step] = sigma;
  t->block[step] = block;
}

/* a byte as something to print: ⏎ newline, ␣ space, ⇥ tab, xNN for the rest of the unprintable */
static const char *byte_label(int b, char buf[8]) {
  if (b == '\n') return "⏎";
  if (b == ' ') return "␣";
  if (b == '\t') return "⇥";
  if (b < 0x20 || b >= 0x7f) {
    snprintf(buf, 8, "x%02X", b);
  } else {
    buf[0] = (char)b;
    buf[1] = 0;
  }
  return buf;
}

/* the last `max` bytes of s, escaped as byte_label does, quoted */
static void quote_text(char *out, size_t n, const char *s, size_t max) {
  size_t len = strlen(s), from = len > max ? len - max : 0, o = 0;
  out[o++] = '"';
  if (from) { memcpy(out + o, "…", 3); o += 3; }
  for (size_t i = from; i < len && o + 10 < n; i++) {
    char b8[8];
    int b = (unsigned char)s[i];
    const char *l = b == ' ' ? " " : byte_label(b, b8);
    size_t ll = strlen(l);
    memcpy(out + o, l, ll);
    o += ll;
  }
  out[o++] = '"';
  out[o] = 0;
}

int report_lm_trace(db_ctx *ctx, const char *run_dir, const char *prompt, const char *svg_path, int top_k, uint64_t seed) {
  if (!run_dir || !*run_dir) db_fail("report: the generation trace needs a run directory");
  if (!svg_path || !*svg_path) db_fail("report: the generation trace needs an output path");
  if (top_k < 1 || top_k > TRACE_MAX_K) db_fail("report: top-%d candidates: must be in 1..%d", top_k, TRACE_MAX_K);
  if (!prompt || !*prompt) prompt = "The ";
  run_config rc;
  manifest_read(run_dir, &rc);
  if (rc.task != TASK_LM)
    db_fail("report: %s/manifest.json is a%s %s run, not a language model: the generation trace is drawn for "
            "lm-train runs only%s", run_dir, rc.task == TASK_IMAGE ? "n" : "", task_name(rc.task),
            rc.task == TASK_IMAGE ? " (an image run gets the denoising trajectory)" : "");
  probe_output(svg_path);
  lm_model m;
  lm_model_load(ctx, &m, run_dir);
  int M = TRACE_STEPS, B = m.rc.blocks;
  trace_rec t = {M, db_calloc((size_t)M * LM_VOCAB, sizeof(double)), db_calloc((size_t)M, sizeof(double)),
                 db_calloc((size_t)M, sizeof(int))};
  lm_sample_opts o = {M, TRACE_RHO, 0, seed, LM_STEPS_RHO};
  unsigned char tok;
  int P = (int)strlen(prompt);
  lm_generate_traced(ctx, &m, (const unsigned char *)prompt, 1, P, 1, o, &tok, NULL, trace_step, &t);

  /* ---- the picture */
  const double colw = 66, bgap = 12, left = 54, top = 118, rowh = 20;
  double *x = db_malloc(sizeof(double) * (size_t)M), xx = left;
  for (int j = 0; j < M; j++) {
    if (j > 0) xx += colw + (t.block[j] != t.block[j - 1] ? bgap : 0);
    x[j] = xx;
  }
  double width = fmax(xx + colw + 16, 900), height = top + top_k * rowh + 40;
  atomic_file f;
  atomic_open(&f, svg_path, NULL);
  cairo_surface_t *surf = cairo_svg_surface_create_for_stream(write_atomic, &f, width, height);
  if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS)
    atomic_fail(&f, "cairo: %s", cairo_status_to_string(cairo_surface_status(surf)));
  cairo_t *cr = cairo_create(surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  char buf[768], q[400], b8[8];
  for (int j = 0; j < M;) { /* block groups */
    int e = j;
    while (e + 1 < M && t.block[e + 1] == t.block[j]) e++;
    int b = t.block[j];
    double x0 = x[j] - 4, x1 = x[e] + colw - 2;
    set_block_rgb(cr, b, 0.12);
    cairo_rectangle(cr, x0, 70, x1 - x0, height - 70 - 26);
    cairo_fill(cr);
    set_block_rgb(cr, b, 1.0);
    cairo_rectangle(cr, x0, 70, x1 - x0, 18);
    cairo_fill(cr);
    if (x1 - x0 > 230) snprintf(buf, sizeof buf, "block %d: steps %d-%d (σ %.3g … %.3g)", b, j, e, t.sigma[j], t.sigma[e]);
    else if (x1 - x0 > 60) snprintf(buf, sizeof buf, "block %d", b);
    else snprintf(buf, sizeof buf, "%d", b);
    cairo_set_source_rgb(cr, 1, 1, 1);
    text_centred(cr, (x0 + x1) / 2, 83, 11, 1, buf);
    j = e + 1;
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  quote_text(q, sizeof q, prompt, 48);
  snprintf(buf, sizeof buf, "Generation trace of one byte: %s → '%s'   (%s)", q, byte_label(tok, b8), run_dir);
  text_at(cr, 12, 24, 16, 1, buf);
  snprintf(buf, sizeof buf,
           "per diffusion step, the top %d bytes of softmax(logits), the denoised byte distribution whose mean embedding "
           "is D(z); the bar is the probability", top_k);
  text_at(cr, 12, 42, 11, 0, buf);
  snprintf(buf, sizeof buf,
           "%d blocks (block 0 owns the highest σ), %d Euler steps on the ρ = %g schedule from z = σ_max ε (seed %llu), "
           "argmax of the last step; ⏎ newline, ␣ space, xNN other bytes; outlined: the byte chosen", B, M, TRACE_RHO,
           (unsigned long long)seed);
  text_at(cr, 12, 58, 11, 0, buf);
  cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
  for (int r = 0; r < top_k; r++) {
    snprintf(buf, sizeof buf, "#%d", r + 1);
    text_at(cr, 14, top + r * rowh + 14, 10, 0, buf);
  }
  for (int j = 0; j < M; j++) {
    const double *p = t.p + (size_t)j * LM_VOCAB;
    cairo_set_source_rgb(cr, 0, 0, 0);
    snprintf(buf, sizeof buf, "step %d", j);
    text_centred(cr, x[j] + colw / 2 - 3, 101, 9, 0, buf);
    snprintf(buf, sizeof buf, "σ %.3g", t.sigma[j]);
    text_centred(cr, x[j] + colw / 2 - 3, 112, 9, 1, buf);
    int used[LM_VOCAB] = {0};
    for (int r = 0; r < top_k; r++) { /* the r-th most likely byte (ties: the smaller byte) */
      int best = -1;
      for (int v = 0; v < LM_VOCAB; v++)
        if (!used[v] && (best < 0 || p[v] > p[best])) best = v;
      used[best] = 1;
      double y = top + r * rowh, bw = colw - 28;
      cairo_set_source_rgb(cr, 0, 0, 0);
      text_centred(cr, x[j] + 8, y + 14, 12, 0, byte_label(best, b8));
      cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
      cairo_rectangle(cr, x[j] + 19, y + 3, bw, rowh - 6);
      cairo_fill(cr);
      set_block_rgb(cr, t.block[j], 0.9);
      cairo_rectangle(cr, x[j] + 19, y + 3, bw * p[best], rowh - 6);
      cairo_fill(cr);
      if (best == tok) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, 1.5);
        cairo_rectangle(cr, x[j] - 1, y + 1, colw - 6, rowh - 2);
        cairo_stroke(cr);
      }
      if (bw * p[best] > 22) cairo_set_source_rgb(cr, 1, 1, 1); /* on the bar */
      else cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
      snprintf(buf, sizeof buf, p[best] >= 0.995 ? "%.0f" : p[best] >= 0.01 ? "%.2f" : "%.0e", p[best]);
      text_at(cr, x[j] + 21, y + 13, 8, 0, buf);
    }
  }
  cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
  text_at(cr, 12, height - 10, 10, 0,
          "Read it left to right: at which σ, and in which block, does the chosen byte come to the top, and how "
          "sure is each block of it?");
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  cairo_surface_finish(surf);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(surf);
  cairo_surface_destroy(surf);
  if (st != CAIRO_STATUS_SUCCESS) atomic_fail(&f, "cairo: %s", cairo_status_to_string(st));
  atomic_commit(&f);

  free(x); free(t.p); free(t.sigma); free(t.block);
  lm_model_free(&m);
  return 0;
}
