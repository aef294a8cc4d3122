/* A small chart layer over cairo, for `dblocks report`: a figure of one or
 * more panels (a grid), each with axes (ticks, grid lines, labels; linear or
 * log x and y), line series, shaded bands and spans, bar charts, text and a
 * legend. A figure is drawn once (into a cairo recording surface) and written
 * as SVG and as PNG (twice the resolution), each atomically (data/file_io.h).
 *
 * Coordinates: every drawing call after plot_axes takes data coordinates of the
 * current panel; what falls outside the panel's axes is clipped. Errors (a bad
 * argument, a cairo failure, a file that cannot be written) end in db_fail. */
#ifndef DB_TOOLS_PLOT_H
#define DB_TOOLS_PLOT_H

typedef struct { double r, g, b; } plot_rgb;
/* The i-th colour of a 10-colour palette (matplotlib's tab10), cycling. */
plot_rgb plot_color(int i);
#define PLOT_BLACK ((plot_rgb){0.1, 0.1, 0.1})
#define PLOT_GREY ((plot_rgb){0.55, 0.55, 0.55})

typedef struct plot plot;
/* A figure of width x height pixels holding rows x cols panels; title: drawn
 * above them (NULL: none). */
plot *plot_new(int width, int height, int rows, int cols, const char *title);
void plot_free(plot *p);

typedef struct {
  const char *title, *xlabel, *ylabel; /* NULL: none */
  double x0, x1, y0, y1;               /* the data range shown; log axes need positive ends */
  int log_x, log_y;
  int no_x_ticks;                      /* a categorical x axis: no ticks or vertical grid lines */
} plot_axes_spec;
/* Makes panel `panel` (row-major) current and draws its frame, grid, ticks and labels. */
void plot_axes(plot *p, int panel, const plot_axes_spec *a);

/* Series, in data coordinates of the current panel. label: a legend entry (NULL: none).
 * Non-finite points (and non-positive ones on a log axis) break a line. */
void plot_line(plot *p, const double *x, const double *y, int n, plot_rgb c, double width, int dashed,
               const char *label);
/* The area between lo and hi over x (a band), filled with alpha. */
void plot_band(plot *p, const double *x, const double *lo, const double *hi, int n, plot_rgb c, double alpha,
               const char *label);
/* A shaded span across the panel: x in [a, b] (PLOT_SPAN_X, a vertical strip) or y in [a, b] (PLOT_SPAN_Y). */
enum { PLOT_SPAN_X = 0, PLOT_SPAN_Y = 1 };
void plot_span(plot *p, int axis, double a, double b, plot_rgb c, double alpha, const char *label);
/* A straight line across the panel at x = v (PLOT_SPAN_X) or y = v (PLOT_SPAN_Y). */
void plot_rule(plot *p, int axis, double v, plot_rgb c, double width, int dashed);
/* Text at data coordinates; align -1 left, 0 centred, 1 right of (x, y); size in pixels (0: 11). */
void plot_text(plot *p, double x, double y, int align, double size, const char *text);
/* Text at a fraction (fx, fy) of the current panel's plot area, (0, 0) its bottom left. */
void plot_note(plot *p, double fx, double fy, int align, double size, const char *text);
/* The legend of the current panel's labelled series, in its upper right (upper_left: upper left). */
void plot_legend(plot *p, int upper_left);

/* A bar chart in panel `panel`: n bars of heights v (>= 0), named under the axis, each
 * with its value written above it (fmt, e.g. "%.1f"); y from 0 to 1.15 x the largest. */
void plot_bars(plot *p, int panel, const double *v, int n, const char *const *names, const plot_rgb *colors,
               const char *fmt, const char *title, const char *ylabel);

/* Writes the figure: SVG at svg_path and PNG at png_path (either may be NULL). */
void plot_write(plot *p, const char *svg_path, const char *png_path);

/* Reads a PNG (libpng) and returns the share of its pixels that are not near
 * white (any channel below 235, alpha counted as over white); -1 and a message
 * in why if it cannot be read. For checking that a screenshot is not blank. */
double plot_png_ink(const char *path, int *width, int *height, char *why, int why_n);
#endif
