/* The chart layer of `dblocks report` over cairo (tools/plot.h). */
#include "plot.h"
#include "../data/file_io.h"
#include "../runtime/base.h"
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEGEND_MAX 24
#define TITLE_H 30.0
/* a panel's margins around its plot area: left (y ticks and label), right, top (title), bottom (x ticks and label) */
#define M_LEFT 64.0
#define M_RIGHT 16.0
#define M_TOP 28.0
#define M_BOTTOM 46.0

struct plot {
  int w, h, rows, cols;
  double top; /* height of the figure's title band */
  cairo_surface_t *rec;
  cairo_t *cr;
  /* the current panel: plot area in pixels and its data range */
  double ax, ay, aw, ah, x0, x1, y0, y1;
  int log_x, log_y, have_axes;
  int nleg;
  struct { char label[96]; plot_rgb c; int kind; /* 0 line, 1 dashed line, 2 patch */ double alpha; } leg[LEGEND_MAX];
};

plot_rgb plot_color(int i) {
  static const plot_rgb tab10[10] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                                     {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                                     {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                                     {0.090, 0.745, 0.812}};
  return tab10[((i % 10) + 10) % 10];
}

static void check(plot *p, const char *what) {
  cairo_status_t s = cairo_status(p->cr);
  if (s != CAIRO_STATUS_SUCCESS) db_fail("plot: %s: cairo: %s", what, cairo_status_to_string(s));
}

static void set_color(cairo_t *cr, plot_rgb c, double alpha) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha); }

/* text with its anchor at (x, y): align -1/0/1 horizontally, valign -1 top, 0 middle, 1 baseline */
static void text_at(cairo_t *cr, double x, double y, int align, int valign, double size, int bold, double angle,
                    const char *s) {
  cairo_save(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  double dx = align < 0 ? 0 : align == 0 ? -e.x_advance / 2 : -e.x_advance;
  double dy = valign < 0 ? size * 0.8 : valign == 0 ? size * 0.35 : 0;
  cairo_move_to(cr, dx, dy);
  cairo_show_text(cr, s);
  cairo_restore(cr);
}

plot *plot_new(int width, int height, int rows, int cols, const char *title) {
  if (width < 100 || height < 80 || rows < 1 || cols < 1 || rows * cols > 256)
    db_fail("plot: a %dx%d figure of %dx%d panels", width, height, rows, cols);
  plot *p = db_malloc(sizeof *p);
  memset(p, 0, sizeof *p);
  p->w = width, p->h = height, p->rows = rows, p->cols = cols;
  p->top = title ? TITLE_H : 4;
  cairo_rectangle_t ext = {0, 0, width, height};
  p->rec = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &ext);
  p->cr = cairo_create(p->rec);
  cairo_set_source_rgb(p->cr, 1, 1, 1);
  cairo_paint(p->cr);
  if (title) {
    set_color(p->cr, PLOT_BLACK, 1);
    text_at(p->cr, width / 2.0, 8, 0, -1, 15, 1, 0, title);
  }
  check(p, "creating a figure");
  return p;
}

void plot_free(plot *p) {
  if (!p) return;
  cairo_destroy(p->cr);
  cairo_surface_destroy(p->rec);
  free(p);
}

/* ---------------------------------------------------------------- coordinates */
static double tx(const plot *p, double x) {
  double a = p->log_x ? log10(x) : x, lo = p->log_x ? log10(p->x0) : p->x0, hi = p->log_x ? log10(p->x1) : p->x1;
  return p->ax + (a - lo) / (hi - lo) * p->aw;
}
static double ty(const plot *p, double y) {
  double a = p->log_y ? log10(y) : y, lo = p->log_y ? log10(p->y0) : p->y0, hi = p->log_y ? log10(p->y1) : p->y1;
  return p->ay + p->ah - (a - lo) / (hi - lo) * p->ah;
}
static int ok_x(const plot *p, double x) { return isfinite(x) && (!p->log_x || x > 0); }
static int ok_y(const plot *p, double y) { return isfinite(y) && (!p->log_y || y > 0); }

static void need_axes(const plot *p, const char *what) {
  if (!p->have_axes) db_fail("plot: %s before plot_axes", what);
}

static void clip_area(plot *p) {
  cairo_save(p->cr);
  cairo_rectangle(p->cr, p->ax, p->ay, p->aw, p->ah);
  cairo_clip(p->cr);
}

/* ---------------------------------------------------------------- ticks */
static void fmt_tick(char *buf, size_t n, double v) {
  if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3)) snprintf(buf, n, "%.0e", v);
  else snprintf(buf, n, "%.4g", v);
}

/* up to max ticks in [lo, hi]: a linear axis at 1, 2 or 5 times a power of ten */
static int linear_ticks(double lo, double hi, double *t, int max) {
  double span = hi - lo, raw = span / 6, mag = pow(10, floor(log10(raw))), step = mag;
  if (raw / mag > 5) step = 10 * mag;
  else if (raw / mag > 2) step = 5 * mag;
  else if (raw / mag > 1) step = 2 * mag;
  int n = 0;
  for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9 && n < max; v += step)
    t[n++] = fabs(v) < step * 1e-9 ? 0 : v;
  return n;
}

/* a log axis: the decades in range (every k-th if many), or 1-2-5 steps when it spans less than ~2 decades */
static int log_ticks(double lo, double hi, double *t, int max) {
  int d0 = (int)floor(log10(lo)), d1 = (int)ceil(log10(hi)), n = 0;
  if (d1 - d0 <= 2) {
    static const double m125[3] = {1, 2, 5}, m19[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (int pass = 0; pass < 2 && n < 3; pass++) {
      const double *m = pass ? m19 : m125;
      n = 0;
      for (int d = d0; d <= d1; d++)
        for (int k = 0; k < (pass ? 9 : 3) && n < max; k++) {
          double v = m[k] * pow(10, d);
          if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t[n++] = v;
        }
    }
    if (n >= 3) return n;
    /* a narrow range (under a factor of ~3): linear ticks, placed on the log scale */
    double u[64];
    int k = linear_ticks(lo, hi, u, 64);
    n = 0;
    for (int i = 0; i < k && n < max; i++)
      if (u[i] > 0) t[n++] = u[i];
    return n;
  }
  int every = (d1 - d0 + 7) / 8;
  for (int d = d0; d <= d1 && n < max; d++)
    if (d % every == 0) {
      double v = pow(10, d);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t[n++] = v;
    }
  return n;
}

static void check_range(double a, double b, int log_axis, const char *which) {
  if (!isfinite(a) || !isfinite(b) || !(b > a) || (log_axis && !(a > 0)))
    db_fail("plot: %s range [%g, %g]%s", which, a, b, log_axis ? " on a log axis" : "");
}

void plot_axes(plot *p, int panel, const plot_axes_spec *a) {
  if (panel < 0 || panel >= p->rows * p->cols) db_fail("plot: panel %d of %d", panel, p->rows * p->cols);
  check_range(a->x0, a->x1, a->log_x, "x");
  check_range(a->y0, a->y1, a->log_y, "y");
  double cw = (double)p->w / p->cols, ch = (p->h - p->top) / p->rows;
  int r = panel / p->cols, c = panel % p->cols;
  p->ax = c * cw + M_LEFT, p->ay = p->top + r * ch + M_TOP;
  p->aw = cw - M_LEFT - M_RIGHT, p->ah = ch - M_TOP - M_BOTTOM;
  if (p->aw < 10 || p->ah < 10) db_fail("plot: panel %d is too small (%.0fx%.0f pixels)", panel, p->aw, p->ah);
  p->x0 = a->x0, p->x1 = a->x1, p->y0 = a->y0, p->y1 = a->y1;
  p->log_x = a->log_x, p->log_y = a->log_y;
  p->have_axes = 1;
  p->nleg = 0;
  cairo_t *cr = p->cr;
  cairo_set_source_rgb(cr, 0.975, 0.975, 0.98);
  cairo_rectangle(cr, p->ax, p->ay, p->aw, p->ah);
  cairo_fill(cr);
  double t[64];
  char buf[32];
  cairo_set_line_width(cr, 1);
  int nx = a->no_x_ticks ? 0 : a->log_x ? log_ticks(a->x0, a->x1, t, 64) : linear_ticks(a->x0, a->x1, t, 64);
  for (int i = 0; i < nx; i++) {
    double X = tx(p, t[i]);
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.9);
    cairo_move_to(cr, X, p->ay), cairo_line_to(cr, X, p->ay + p->ah), cairo_stroke(cr);
    set_color(cr, PLOT_BLACK, 1);
    cairo_move_to(cr, X, p->ay + p->ah), cairo_line_to(cr, X, p->ay + p->ah + 4), cairo_stroke(cr);
    fmt_tick(buf, sizeof buf, t[i]);
    text_at(cr, X, p->ay + p->ah + 6, 0, -1, 10, 0, 0, buf);
  }
  int ny = a->log_y ? log_ticks(a->y0, a->y1, t, 64) : linear_ticks(a->y0, a->y1, t, 64);
  for (int i = 0; i < ny; i++) {
    double Y = ty(p, t[i]);
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.9);
    cairo_move_to(cr, p->ax, Y), cairo_line_to(cr, p->ax + p->aw, Y), cairo_stroke(cr);
    set_color(cr, PLOT_BLACK, 1);
    cairo_move_to(cr, p->ax - 4, Y), cairo_line_to(cr, p->ax, Y), cairo_stroke(cr);
    fmt_tick(buf, sizeof buf, t[i]);
    text_at(cr, p->ax - 6, Y, 1, 0, 10, 0, 0, buf);
  }
  set_color(cr, PLOT_BLACK, 1);
  cairo_rectangle(cr, p->ax, p->ay, p->aw, p->ah);
  cairo_stroke(cr);
  if (a->title) text_at(cr, p->ax + p->aw / 2, p->ay - 20, 0, -1, 12, 1, 0, a->title);
  if (a->xlabel) text_at(cr, p->ax + p->aw / 2, p->ay + p->ah + 22, 0, -1, 11, 0, 0, a->xlabel);
  if (a->ylabel) text_at(cr, p->ax - 48, p->ay + p->ah / 2, 0, 0, 11, 0, -M_PI / 2, a->ylabel);
  check(p, "drawing axes");
}

/* ---------------------------------------------------------------- series */
static void add_legend(plot *p, const char *label, plot_rgb c, int kind, double alpha) {
  if (!label || p->nleg >= LEGEND_MAX) return;
  snprintf(p->leg[p->nleg].label, sizeof p->leg[p->nleg].label, "%s", label);
  p->leg[p->nleg].c = c, p->leg[p->nleg].kind = kind, p->leg[p->nleg].alpha = alpha;
  p->nleg++;
}

static void dash(cairo_t *cr, int dashed) {
  static const double d[2] = {5, 3};
  cairo_set_dash(cr, d, dashed ? 2 : 0, 0);
}

void plot_line(plot *p, const double *x, const double *y, int n, plot_rgb c, double width, int dashed,
               const char *label) {
  need_axes(p, "plot_line");
  cairo_t *cr = p->cr;
  clip_area(p);
  set_color(cr, c, 1);
  cairo_set_line_width(cr, width > 0 ? width : 1.5);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  dash(cr, dashed);
  int pen = 0, single = -1, run = 0;
  for (int i = 0; i < n; i++) {
    if (!ok_x(p, x[i]) || !ok_y(p, y[i])) {
      pen = 0;
      continue;
    }
    if (pen) cairo_line_to(cr, tx(p, x[i]), ty(p, y[i])), run++;
    else cairo_move_to(cr, tx(p, x[i]), ty(p, y[i])), single = i, run = 0;
    pen = 1;
  }
  cairo_stroke(cr);
  if (n >= 1 && single >= 0 && run == 0) { /* a lone point: a dot, so it shows */
    cairo_arc(cr, tx(p, x[single]), ty(p, y[single]), 2.5, 0, 2 * M_PI);
    cairo_fill(cr);
  }
  dash(cr, 0);
  cairo_restore(cr);
  add_legend(p, label, c, dashed ? 1 : 0, 1);
  check(p, "drawing a line");
}

void plot_band(plot *p, const double *x, const double *lo, const double *hi, int n, plot_rgb c, double alpha,
               const char *label) {
  need_axes(p, "plot_band");
  cairo_t *cr = p->cr;
  clip_area(p);
  set_color(cr, c, alpha);
  int m = 0;
  for (int i = 0; i < n; i++)
    if (ok_x(p, x[i]) && ok_y(p, lo[i]) && ok_y(p, hi[i])) {
      if (m++) cairo_line_to(cr, tx(p, x[i]), ty(p, hi[i]));
      else cairo_move_to(cr, tx(p, x[i]), ty(p, hi[i]));
    }
  for (int i = n - 1; i >= 0; i--)
    if (ok_x(p, x[i]) && ok_y(p, lo[i]) && ok_y(p, hi[i])) cairo_line_to(cr, tx(p, x[i]), ty(p, lo[i]));
  if (m == 1) { /* one point: a short vertical bar */
    cairo_new_path(cr);
    for (int i = 0; i < n; i++)
      if (ok_x(p, x[i]) && ok_y(p, lo[i]) && ok_y(p, hi[i]))
        cairo_rectangle(cr, tx(p, x[i]) - 3, ty(p, hi[i]), 6, ty(p, lo[i]) - ty(p, hi[i]));
  }
  cairo_close_path(cr);
  cairo_fill(cr);
  cairo_restore(cr);
  add_legend(p, label, c, 2, alpha);
  check(p, "drawing a band");
}

void plot_span(plot *p, int axis, double a, double b, plot_rgb c, double alpha, const char *label) {
  need_axes(p, "plot_span");
  cairo_t *cr = p->cr;
  clip_area(p);
  set_color(cr, c, alpha);
  if (axis == PLOT_SPAN_X) {
    if (ok_x(p, a) && ok_x(p, b)) cairo_rectangle(cr, tx(p, a), p->ay, tx(p, b) - tx(p, a), p->ah);
  } else if (ok_y(p, a) && ok_y(p, b))
    cairo_rectangle(cr, p->ax, ty(p, b), p->aw, ty(p, a) - ty(p, b));
  cairo_fill(cr);
  cairo_restore(cr);
  add_legend(p, label, c, 2, alpha);
  check(p, "drawing a span");
}

void plot_rule(plot *p, int axis, double v, plot_rgb c, double width, int dashed) {
  need_axes(p, "plot_rule");
  cairo_t *cr = p->cr;
  clip_area(p);
  set_color(cr, c, 1);
  cairo_set_line_width(cr, width > 0 ? width : 1);
  dash(cr, dashed);
  if (axis == PLOT_SPAN_X && ok_x(p, v)) cairo_move_to(cr, tx(p, v), p->ay), cairo_line_to(cr, tx(p, v), p->ay + p->ah);
  else if (axis == PLOT_SPAN_Y && ok_y(p, v))
    cairo_move_to(cr, p->ax, ty(p, v)), cairo_line_to(cr, p->ax + p->aw, ty(p, v));
  cairo_stroke(cr);
  dash(cr, 0);
  cairo_restore(cr);
  check(p, "drawing a rule");
}

void plot_text(plot *p, double x, double y, int align, double size, const char *text) {
  need_axes(p, "plot_text");
  if (!ok_x(p, x) || !ok_y(p, y)) return;
  set_color(p->cr, PLOT_BLACK, 1);
  text_at(p->cr, tx(p, x), ty(p, y), align, 0, size > 0 ? size : 11, 0, 0, text);
  check(p, "drawing text");
}

void plot_note(plot *p, double fx, double fy, int align, double size, const char *text) {
  need_axes(p, "plot_note");
  set_color(p->cr, PLOT_BLACK, 1);
  text_at(p->cr, p->ax + fx * p->aw, p->ay + (1 - fy) * p->ah, align, 0, size > 0 ? size : 11, 0, 0, text);
  check(p, "drawing text");
}

void plot_legend(plot *p, int upper_left) {
  need_axes(p, "plot_legend");
  if (!p->nleg) return;
  cairo_t *cr = p->cr;
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 10);
  double wmax = 0;
  for (int i = 0; i < p->nleg; i++) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, p->leg[i].label, &e);
    if (e.x_advance > wmax) wmax = e.x_advance;
  }
  double rowh = 15, bw = wmax + 36, bh = p->nleg * rowh + 8;
  double x = upper_left ? p->ax + 8 : p->ax + p->aw - bw - 8, y = p->ay + 8;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.88);
  cairo_rectangle(cr, x, y, bw, bh);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
  cairo_set_line_width(cr, 0.8);
  cairo_stroke(cr);
  for (int i = 0; i < p->nleg; i++) {
    double yy = y + 4 + rowh * i + rowh / 2;
    set_color(cr, p->leg[i].c, p->leg[i].alpha);
    if (p->leg[i].kind == 2) {
      cairo_rectangle(cr, x + 6, yy - 5, 20, 10);
      cairo_fill(cr);
    } else {
      cairo_set_line_width(cr, 2);
      dash(cr, p->leg[i].kind == 1);
      cairo_move_to(cr, x + 6, yy), cairo_line_to(cr, x + 26, yy), cairo_stroke(cr);
      dash(cr, 0);
    }
    set_color(cr, PLOT_BLACK, 1);
    text_at(cr, x + 30, yy, -1, 0, 10, 0, 0, p->leg[i].label);
  }
  check(p, "drawing a legend");
}

void plot_bars(plot *p, int panel, const double *v, int n, const char *const *names, const plot_rgb *colors,
               const char *fmt, const char *title, const char *ylabel) {
  if (n < 1) db_fail("plot: a bar chart of %d bars", n);
  double top = 0;
  for (int i = 0; i < n; i++) {
    if (!isfinite(v[i]) || v[i] < 0) db_fail("plot: bar %d has height %g", i, v[i]);
    if (v[i] > top) top = v[i];
  }
  plot_axes_spec a = {title, NULL, ylabel, 0, n, 0, top > 0 ? top * 1.15 : 1, 0, 0, 1};
  plot_axes(p, panel, &a);
  cairo_t *cr = p->cr;
  char buf[64];
  for (int i = 0; i < n; i++) {
    double x0 = tx(p, i + 0.15), x1 = tx(p, i + 0.85), y = ty(p, v[i]);
    set_color(cr, colors ? colors[i] : plot_color(i), 0.85);
    cairo_rectangle(cr, x0, y, x1 - x0, ty(p, 0) - y);
    cairo_fill(cr);
    set_color(cr, PLOT_BLACK, 1);
    snprintf(buf, sizeof buf, fmt ? fmt : "%.3g", v[i]);
    text_at(cr, (x0 + x1) / 2, y - 3, 0, 1, 10, 0, 0, buf);
    if (names && names[i]) text_at(cr, (x0 + x1) / 2, p->ay + p->ah + 6, 0, -1, 10, 0, 0, names[i]);
  }
  check(p, "drawing bars");
}

/* ---------------------------------------------------------------- output */
typedef struct { unsigned char *b; size_t n, cap; } membuf;

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int len) {
  membuf *m = closure;
  if (m->n + len > m->cap) {
    size_t cap = m->cap ? m->cap : 65536;
    while (cap < m->n + len) cap *= 2;
    unsigned char *b = realloc(m->b, cap);
    if (!b) return CAIRO_STATUS_NO_MEMORY;
    m->b = b, m->cap = cap;
  }
  memcpy(m->b + m->n, data, len);
  m->n += len;
  return CAIRO_STATUS_SUCCESS;
}

static void replay(plot *p, cairo_surface_t *target, double scale, const char *path) {
  cairo_t *cr = cairo_create(target);
  cairo_scale(cr, scale, scale);
  cairo_set_source_surface(cr, p->rec, 0, 0);
  cairo_paint(cr);
  cairo_status_t s = cairo_status(cr);
  cairo_destroy(cr);
  if (s != CAIRO_STATUS_SUCCESS) db_fail("cannot write %s: cairo: %s", path, cairo_status_to_string(s));
}

void plot_write(plot *p, const char *svg_path, const char *png_path) {
  check(p, "the figure");
  if (svg_path) {
    membuf m = {0};
    cairo_surface_t *s = cairo_svg_surface_create_for_stream(mem_write, &m, p->w, p->h);
    cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX);
    replay(p, s, 1, svg_path);
    cairo_surface_finish(s);
    cairo_status_t st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
      free(m.b);
      db_fail("cannot write %s: cairo: %s", svg_path, cairo_status_to_string(st));
    }
    atomic_write_file(svg_path, m.b, m.n);
    free(m.b);
  }
  if (png_path) {
    membuf m = {0};
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 2 * p->w, 2 * p->h);
    replay(p, s, 2, png_path);
    cairo_status_t st = cairo_surface_write_to_png_stream(s, mem_write, &m);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
      free(m.b);
      db_fail("cannot write %s: cairo: %s", png_path, cairo_status_to_string(st));
    }
    atomic_write_file(png_path, m.b, m.n);
    free(m.b);
  }
}

double plot_png_ink(const char *path, int *width, int *height, char *why, int why_n) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&im, path)) {
    snprintf(why, (size_t)why_n, "cannot read %s: %s", path, im.message);
    return -1;
  }
  im.format = PNG_FORMAT_RGB; /* alpha composed over white by libpng (background NULL: white for RGB output) */
  size_t n = PNG_IMAGE_SIZE(im);
  unsigned char *px = db_malloc(n);
  png_color white = {255, 255, 255};
  if (!png_image_finish_read(&im, &white, px, 0, NULL)) {
    snprintf(why, (size_t)why_n, "cannot read %s: %s", path, im.message);
    free(px);
    png_image_free(&im);
    return -1;
  }
  size_t pixels = (size_t)im.width * im.height, ink = 0;
  for (size_t i = 0; i < pixels; i++)
    if (px[3 * i] < 235 || px[3 * i + 1] < 235 || px[3 * i + 2] < 235) ink++;
  free(px);
  if (width) *width = (int)im.width;
  if (height) *height = (int)im.height;
  return pixels ? (double)ink / pixels : 0;
}
