/* `dblocks report --run DIR`: the figures of a run (any task) and one
 * self-contained HTML page with them (docs/report.md):
 *   loss.svg/png       training loss per block against its steps
 *   sigma.svg/png      per block: the σ it drew (mean, min..max) against its assigned and training range
 *   partition.svg/png  the density of ln σ with every block's range and overlapped training range
 *   memory.svg/png     peak device MiB per block (and an end-to-end run's, --baseline)
 *   trajectory.png     image runs: the denoising trajectory (tools/report_traces.c)
 *   lm_trace.svg       language models: one token's generation trace (tools/report_traces.c)
 *   index.html         all of them inline, with captions, the configuration and the command line
 * Everything comes from the run's manifest.json and log.jsonl; only the two
 * traces run the model (and open a device). */
#include "../data/file_io.h"
#include "../models/manifest.h"
#include "../runtime/db.h"
#include "cli.h"
#include "plot.h"
#include "report_traces.h"
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cmd_report(int argc, char **argv);

/* ---------------------------------------------------------------- the log */
typedef struct { int block, step; double loss, smean, smin, smax, sps, peak, time_s; } log_row;
typedef struct { log_row *r; int n; } run_log;

static double num_field(json_t *o, const char *key, const char *path, int line) {
  json_t *v = json_object_get(o, key);
  if (!json_is_number(v)) db_fail("report: %s line %d: no number \"%s\"", path, line, key);
  return json_number_value(v);
}

/* Every line of DIR/log.jsonl; a torn last line (a killed writer, no newline) is left out. */
static run_log read_log(const char *dir, int blocks) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/log.jsonl", dir);
  size_t len;
  char *text = read_text_file(path, &len);
  run_log L = {db_malloc(sizeof(log_row) * (len / 40 + 1)), 0};
  int line = 0;
  for (char *s = text; *s;) {
    char *e = strchr(s, '\n');
    line++;
    if (!e) break; /* torn: no newline */
    *e = 0;
    if (*s) {
      json_error_t err;
      json_t *o = json_loads(s, 0, &err);
      if (!json_is_object(o)) {
        json_decref(o);
        free(text);
        db_fail("report: %s line %d is not a JSON object (%s)", path, line, err.text);
      }
      log_row r = {(int)num_field(o, "block", path, line), (int)num_field(o, "step", path, line),
                   num_field(o, "loss", path, line), num_field(o, "sigma_mean", path, line),
                   num_field(o, "sigma_min", path, line), num_field(o, "sigma_max", path, line),
                   num_field(o, "samples_per_s", path, line), num_field(o, "peak_mib", path, line),
                   num_field(o, "time_s", path, line)};
      json_decref(o);
      if (r.block < 0 || r.block >= blocks)
        db_fail("report: %s line %d: block %d, but the run has %d blocks", path, line, r.block, blocks);
      L.r[L.n++] = r;
    }
    s = e + 1;
  }
  free(text);
  if (!L.n) db_fail("report: %s is empty: no training step was logged (train the run first)", path);
  return L;
}

/* the rows of one block, in log order: x = step and one chosen column */
static int block_series(const run_log *L, int b, double *x, double *y, size_t column) {
  int n = 0;
  for (int i = 0; i < L->n; i++)
    if (L->r[i].block == b) {
      x[n] = L->r[i].step;
      y[n++] = *(const double *)((const char *)&L->r[i] + column);
    }
  return n;
}

static double peak_of(const run_log *L, int b /* -1: all */) {
  double m = 0;
  for (int i = 0; i < L->n; i++)
    if ((b < 0 || L->r[i].block == b) && L->r[i].peak > m) m = L->r[i].peak;
  return m;
}

/* ---------------------------------------------------------------- small helpers */
static void mkdirs(const char *dir) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", dir);
  for (char *s = p + 1;; s++) {
    if (*s == '/' || !*s) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0755) && errno != EEXIST) db_fail("report: cannot create %s: %s", p, strerror(errno));
      *s = c;
      if (!c) break;
    }
  }
  struct stat st;
  if (stat(dir, &st) || !S_ISDIR(st.st_mode)) db_fail("report: --out %s is not a directory", dir);
}

static void check_run_dir(const char *dir, const char *what) {
  struct stat st;
  if (stat(dir, &st)) db_fail("report: %s %s: %s", what, dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) db_fail("report: %s %s is not a directory", what, dir);
  char m[PATH_MAX];
  snprintf(m, sizeof m, "%s/manifest.json", dir);
  if (stat(m, &st)) db_fail("report: %s %s has no manifest.json: not a run directory (dblocks train --out writes one)", what, dir);
}

typedef struct { char *s; size_t n, cap; } sbuf;
static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + n + 1) cap *= 2;
    char *t = db_malloc(cap);
    if (b->s) memcpy(t, b->s, b->n);
    free(b->s);
    b->s = t, b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  sb_add(b, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
static void sb_html(sbuf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '<') sb_add(b, "&lt;", 4);
    else if (*s == '>') sb_add(b, "&gt;", 4);
    else if (*s == '&') sb_add(b, "&amp;", 5);
    else if (*s == '"') sb_add(b, "&quot;", 6);
    else sb_add(b, s, 1);
  }
}
static void sb_base64(sbuf *b, const unsigned char *d, size_t n) {
  static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
    char q[4] = {T[v >> 18 & 63], T[v >> 12 & 63], i + 1 < n ? T[v >> 6 & 63] : '=', i + 2 < n ? T[v & 63] : '='};
    sb_add(b, q, 4);
  }
}

/* An SVG file inline: without its XML declaration, and with every id (and
 * reference to one) prefixed, so that several cairo SVGs (which all name their
 * glyphs "glyph0-1", ...) can live in one page. */
static void sb_svg_inline(sbuf *b, const char *path, const char *prefix) {
  char *svg = read_text_file(path, NULL), *s = svg;
  if (!strncmp(s, "<?xml", 5)) {
    char *e = strstr(s, "?>");
    if (e) s = e + 2;
  }
  static const char *const keys[3] = {"id=\"", "href=\"#", "url(#"};
  while (*s) {
    const char *best = NULL;
    int k = -1;
    for (int i = 0; i < 3; i++) {
      const char *f = strstr(s, keys[i]);
      if (f && (!best || f < best)) best = f, k = i;
    }
    if (!best) {
      sb_add(b, s, strlen(s));
      break;
    }
    size_t upto = (size_t)(best - s) + strlen(keys[k]);
    sb_add(b, s, upto);
    sb_add(b, prefix, strlen(prefix));
    s += upto;
  }
  free(svg);
}

static void sb_png_inline(sbuf *b, const char *path, const char *alt) {
  size_t n;
  char *png = read_text_file(path, &n);
  sb_printf(b, "<img alt=\"%s\" src=\"data:image/png;base64,", alt);
  sb_base64(b, (const unsigned char *)png, n);
  sb_printf(b, "\">");
  free(png);
}

static double lnorm_cdf(const run_config *rc, double sigma) {
  return edm_norm_cdf((log(sigma) - rc->edm.p_mean) / rc->edm.p_std);
}

/* The law the run's training σ follows, as a density of ln σ over [σ_min, σ_max], and the
 * share of it in [lo, hi]: the equi-difficulty law of an LM run (uniform in h), else EDM's
 * log-normal truncated to [σ_min, σ_max]. */
static int equidiff(const run_config *rc) { return rc->task == TASK_LM && rc->lm.noise == LM_NOISE_EQUIDIFF && rc->curve.n; }
static double law_density(const run_config *rc, double sigma) {
  if (sigma < rc->edm.sigma_min || sigma > rc->edm.sigma_max) return 0;
  if (equidiff(rc)) {
    /* a central difference over three cells of the curve's log grid: h is piecewise linear between them */
    const lm_entropy_curve *c = &rc->curve;
    double h = 1.5 * log(c->sigma[c->n - 1] / c->sigma[0]) / (c->n - 1);
    double d = lm_curve_frac_at(c, sigma * exp(h)) - lm_curve_frac_at(c, sigma * exp(-h));
    return d / (2 * h) / (LM_FRAC_HI - LM_FRAC_LO);
  }
  double z = (log(sigma) - rc->edm.p_mean) / rc->edm.p_std;
  double mass = lnorm_cdf(rc, rc->edm.sigma_max) - lnorm_cdf(rc, rc->edm.sigma_min);
  return exp(-0.5 * z * z) / (sqrt(2 * M_PI) * rc->edm.p_std) / mass;
}
static double law_mass(const run_config *rc, double lo, double hi) {
  if (equidiff(rc)) return (lm_curve_frac_at(&rc->curve, hi) - lm_curve_frac_at(&rc->curve, lo)) / (LM_FRAC_HI - LM_FRAC_LO);
  return (lnorm_cdf(rc, hi) - lnorm_cdf(rc, lo)) / (lnorm_cdf(rc, rc->edm.sigma_max) - lnorm_cdf(rc, rc->edm.sigma_min));
}

static const char *law_name(const run_config *rc) {
  if (equidiff(rc)) return "equi-difficulty law (h uniform)";
  return "log-normal";
}

/* ---------------------------------------------------------------- the figures */
typedef struct {
  const char *run, *out;
  run_config rc;
  run_log log, base;
  int have_base, base_blocks, log_y;
} report;

static void fig_path(char *buf, size_t n, const report *r, const char *name) { snprintf(buf, n, "%s/%s", r->out, name); }

static void write_fig(plot *p, const report *r, const char *stem) {
  char svg[PATH_MAX], png[PATH_MAX];
  snprintf(svg, sizeof svg, "%s/%s.svg", r->out, stem);
  snprintf(png, sizeof png, "%s/%s.png", r->out, stem);
  plot_write(p, svg, png);
  plot_free(p);
}

static void fig_loss(const report *r) {
  int B = r->rc.blocks, n = r->log.n;
  double *x = db_malloc(sizeof(double) * n), *y = db_malloc(sizeof(double) * n);
  double xmax = 1, ymin = INFINITY, ymax = -INFINITY;
  for (int i = 0; i < n; i++) {
    const log_row *w = &r->log.r[i];
    if (w->step > xmax) xmax = w->step;
    if (isfinite(w->loss) && (!r->log_y || w->loss > 0)) ymin = fmin(ymin, w->loss), ymax = fmax(ymax, w->loss);
  }
  if (!isfinite(ymin)) ymin = 0.1, ymax = 1;
  if (r->log_y) {
    if (ymax <= ymin * 1.01) ymin /= 1.5, ymax *= 1.5;
    ymin /= 1.15, ymax *= 1.15;
  } else {
    double pad = ymax > ymin ? 0.08 * (ymax - ymin) : 0.1 * fabs(ymax) + 0.1;
    ymin = fmax(ymin >= 0 ? 0 : -INFINITY, ymin - pad), ymax += pad;
  }
  plot *p = plot_new(760, 440, 1, 1, "Training loss per block");
  plot_axes_spec a = {NULL, "optimizer step of the block", r->log_y ? "loss (log scale)" : "loss", 0, xmax, ymin, ymax, 0,
                      r->log_y, 0};
  plot_axes(p, 0, &a);
  for (int b = 0; b < B; b++) {
    int m = block_series(&r->log, b, x, y, offsetof(log_row, loss));
    char label[64];
    double lo, hi;
    edm_block_range(r->rc.bounds, B, b, &lo, &hi);
    snprintf(label, sizeof label, "block %d (sigma %.3g..%.3g)", b, lo, hi);
    if (m) plot_line(p, x, y, m, plot_color(b), 2, 0, label);
  }
  plot_legend(p, 0);
  write_fig(p, r, "loss");
  free(x);
  free(y);
}

static void fig_sigma(const report *r) {
  int B = r->rc.blocks, n = r->log.n, cols = B < 3 ? B : 3, rows = (B + cols - 1) / cols;
  double *x = db_malloc(sizeof(double) * n), *mean = db_malloc(sizeof(double) * n), *lo = db_malloc(sizeof(double) * n),
         *hi = db_malloc(sizeof(double) * n);
  double smin = r->rc.edm.sigma_min, smax = r->rc.edm.sigma_max, xmax = 1;
  for (int i = 0; i < n; i++) xmax = fmax(xmax, r->log.r[i].step);
  plot *p = plot_new(cols * 330, 40 + rows * 300, rows, cols, "The noise levels each block trained on");
  for (int b = 0; b < B; b++) {
    double alo, ahi, tlo, thi;
    edm_block_range(r->rc.bounds, B, b, &alo, &ahi);
    edm_block_train_range(r->rc.edm, r->rc.bounds, B, b, r->rc.gamma, &tlo, &thi);
    char title[96];
    snprintf(title, sizeof title, "block %d: sigma in [%.3g, %.3g]", b, alo, ahi);
    plot_axes_spec a = {title, "step", "sigma (log scale)", 0, xmax, smin / 2, smax * 2, 0, 1, 0};
    plot_axes(p, b, &a);
    plot_span(p, PLOT_SPAN_Y, tlo, thi, plot_color(b), 0.12, "training range");
    plot_span(p, PLOT_SPAN_Y, alo, ahi, plot_color(b), 0.25, "assigned range");
    int m = block_series(&r->log, b, x, mean, offsetof(log_row, smean));
    block_series(&r->log, b, x, lo, offsetof(log_row, smin));
    block_series(&r->log, b, x, hi, offsetof(log_row, smax));
    plot_band(p, x, lo, hi, m, PLOT_BLACK, 0.22, "logged min..max");
    plot_line(p, x, mean, m, PLOT_BLACK, 1.8, 0, "logged mean");
    if (b == 0) plot_legend(p, 0);
  }
  write_fig(p, r, "sigma");
  free(x), free(mean), free(lo), free(hi);
}

/* one panel: the density with the blocks of `bounds` shaded */
static void partition_panel(plot *p, int panel, const report *r, const double *bounds, const char *title) {
  const run_config *rc = &r->rc;
  int B = rc->blocks, N = 400;
  double smin = rc->edm.sigma_min, smax = rc->edm.sigma_max, x0 = smin / 1.6, x1 = smax * 1.6;
  double xs[400], ys[400], zero[400], ymax = 0;
  for (int i = 0; i < N; i++) {
    xs[i] = exp(log(x0) + (log(x1) - log(x0)) * i / (N - 1));
    ys[i] = law_density(rc, xs[i]);
    zero[i] = 0;
    ymax = fmax(ymax, ys[i]);
  }
  if (!(ymax > 0)) ymax = 1;
  plot_axes_spec a = {title, "sigma (log scale)", "density of ln sigma", x0, x1, 0, ymax * 1.3, 1, 0, 0};
  plot_axes(p, panel, &a);
  for (int b = 0; b < B; b++) {
    double lo, hi, tlo, thi;
    edm_block_range(bounds, B, b, &lo, &hi);
    edm_block_train_range(rc->edm, bounds, B, b, rc->gamma, &tlo, &thi);
    plot_span(p, PLOT_SPAN_X, tlo, thi, plot_color(b), 0.10, NULL);
    plot_span(p, PLOT_SPAN_X, lo, hi, plot_color(b), 0.22, NULL);
    char t[48];
    snprintf(t, sizeof t, "block %d", b);
    double mid = sqrt(lo * hi);
    plot_text(p, mid, ymax * (1.22 - 0.07 * (b % 2)), 0, 10, t);
    snprintf(t, sizeof t, "%.0f %%", 100 * law_mass(rc, lo, hi));
    plot_text(p, mid, ymax * (1.15 - 0.07 * (b % 2)), 0, 9, t);
  }
  for (int k = 0; k <= B; k++) plot_rule(p, PLOT_SPAN_X, bounds[k], PLOT_GREY, 1, 1);
  plot_band(p, xs, zero, ys, N, PLOT_BLACK, 0.08, NULL);
  char law[96];
  if (equidiff(rc)) snprintf(law, sizeof law, "%s", law_name(rc));
  else snprintf(law, sizeof law, "log-normal, P_mean %g, P_std %g", rc->edm.p_mean, rc->edm.p_std);
  plot_line(p, xs, ys, N, PLOT_BLACK, 2, 0, law);
  plot_legend(p, 1);
}

static void fig_partition(const report *r, int compare) {
  const run_config *rc = &r->rc;
  char title[128];
  const char *own = equidiff(rc) ? "equi-difficulty" : rc->partition == EDM_PARTITION_EQUIPROB ? "equi-probability" : "uniform in ln sigma";
  snprintf(title, sizeof title, "%s (this run), gamma = %g", own, rc->gamma);
  plot *p = plot_new(compare ? 1240 : 760, 440, 1, compare ? 2 : 1, "The noise partition: which block owns which sigma");
  partition_panel(p, 0, r, rc->bounds, title);
  if (compare) {
    edm_partition_kind other = !equidiff(rc) && rc->partition == EDM_PARTITION_UNIFORM ? EDM_PARTITION_EQUIPROB : EDM_PARTITION_UNIFORM;
    double b2[DB_MAX_BLOCKS + 1];
    edm_partition(rc->edm, rc->blocks, other, b2);
    snprintf(title, sizeof title, "%s (the alternative), gamma = %g", other == EDM_PARTITION_UNIFORM ? "uniform in ln sigma" : "equi-probability", rc->gamma);
    partition_panel(p, 1, r, b2, title);
  }
  write_fig(p, r, "partition");
}

static void fig_memory(const report *r) {
  int B = r->rc.blocks, n = B + r->have_base;
  double v[DB_MAX_BLOCKS + 1];
  char names_buf[DB_MAX_BLOCKS + 1][48];
  const char *names[DB_MAX_BLOCKS + 1];
  plot_rgb colors[DB_MAX_BLOCKS + 1];
  for (int b = 0; b < B; b++) {
    v[b] = peak_of(&r->log, b);
    snprintf(names_buf[b], sizeof names_buf[b], "block %d", b);
    names[b] = names_buf[b];
    colors[b] = plot_color(b);
  }
  if (r->have_base) {
    v[B] = peak_of(&r->base, -1);
    snprintf(names_buf[B], sizeof names_buf[B], r->base_blocks == 1 ? "end to end" : "baseline (B = %d)", r->base_blocks);
    names[B] = names_buf[B];
    colors[B] = PLOT_GREY;
  }
  plot *p = plot_new(n > 8 ? 90 * n + 100 : 760, 420, 1, 1, "Peak device memory while training");
  plot_bars(p, 0, v, n, names, colors, "%.1f MiB", NULL, "peak device MiB");
  write_fig(p, r, "memory");
}

/* ---------------------------------------------------------------- the page */
/* wide: shown at its own size, scrolling sideways (the generation trace), else fitted to the page */
static void html_figure(sbuf *h, const report *r, const char *file, int k, int wide, const char *title,
                        const char *caption) {
  char path[PATH_MAX], prefix[16];
  fig_path(path, sizeof path, r, file);
  snprintf(prefix, sizeof prefix, "f%d-", k);
  sb_printf(h, "<figure id=\"fig-%d\"><h2>%s</h2>\n", k, title);
  sb_printf(h, "<div class=\"%s\">", wide ? "wide" : "fit");
  if (strstr(file, ".svg")) sb_svg_inline(h, path, prefix);
  else sb_png_inline(h, path, file);
  sb_printf(h, "</div>");
  sb_printf(h, "\n<figcaption><b>%s</b> %s</figcaption></figure>\n", file, caption);
}

static void html_config(sbuf *h, const report *r) {
  const run_config *rc = &r->rc;
  sb_printf(h, "<h2>Configuration</h2>\n<table><tr><th>option</th><th>value</th><th>what it is</th></tr>\n");
  sb_printf(h, "<tr><td>task</td><td>%s</td><td>what the run trains</td></tr>\n", task_name(rc->task));
  for (int i = 0; i < run_field_count; i++) {
    const run_field *f = &run_fields[i];
    if (!run_field_applies(rc, f)) continue;
    char label[96], val[64];
    run_field_label(f, label, sizeof label);
    double v = run_field_get(rc, f);
    const char *const *names = run_field_names(f);
    if (names) snprintf(val, sizeof val, "%s", names[(int)v]);
    else if (f->type == RF_NUM) snprintf(val, sizeof val, "%g", v);
    else snprintf(val, sizeof val, "%.0f", v);
    sb_printf(h, "<tr><td>");
    sb_html(h, label);
    sb_printf(h, "</td><td>%s</td><td>", val);
    sb_html(h, f->help);
    sb_printf(h, "</td></tr>\n");
  }
  if (rc->task == TASK_LM) {
    sb_printf(h, "<tr><td>text</td><td>");
    sb_html(h, rc->text);
    sb_printf(h, "</td><td>the corpus</td></tr>\n");
  }
  sb_printf(h, "</table>\n<h2>Blocks</h2>\n<table><tr><th>block</th><th>layers</th><th>assigned sigma range</th>"
               "<th>training range (gamma %g)</th><th>share of the noise law</th><th>last logged loss</th>"
               "<th>steps logged</th><th>peak MiB</th></tr>\n", rc->gamma);
  for (int b = 0; b < rc->blocks; b++) {
    double lo, hi, tlo, thi, last = NAN;
    int steps = 0;
    edm_block_range(rc->bounds, rc->blocks, b, &lo, &hi);
    edm_block_train_range(rc->edm, rc->bounds, rc->blocks, b, rc->gamma, &tlo, &thi);
    for (int i = 0; i < r->log.n; i++)
      if (r->log.r[i].block == b) last = r->log.r[i].loss, steps = r->log.r[i].step;
    sb_printf(h, "<tr><td>%d</td><td>%d..%d</td><td>[%.4g, %.4g]</td><td>[%.4g, %.4g]</td><td>%.1f %%</td>"
                 "<td>%.4g</td><td>%d</td><td>%.1f</td></tr>\n",
              b, b * rc->model.depth, (b + 1) * rc->model.depth - 1, lo, hi, tlo, thi, 100 * law_mass(rc, lo, hi), last,
              steps, peak_of(&r->log, b));
  }
  sb_printf(h, "</table>\n");
}

static void write_html(const report *r, int argc, char **argv, const char *traces_file, int compare) {
  const run_config *rc = &r->rc;
  int B = rc->blocks;
  sbuf h = {0};
  sb_printf(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>dblocks report: ");
  sb_html(&h, r->run);
  sb_printf(&h, "</title>\n<style>\nbody{font-family:sans-serif;max-width:1240px;margin:1.5em auto;padding:0 1em;color:#222;"
                "background:#fff}\nfigure{margin:1.5em 0;border-top:1px solid #ddd}\n.fit svg,.fit img{max-width:100%%;"
                "height:auto;display:block}\n.wide{overflow-x:auto}\n.wide svg{display:block}\nfigcaption{max-width:60em;line-height:1.45}\ntable{border-collapse:collapse;"
                "margin:0.5em 0}\ntd,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:0.9em}\n"
                "pre{background:#f4f4f4;padding:0.6em;overflow-x:auto}\n</style></head><body>\n");
  sb_printf(&h, "<h1>dblocks report: ");
  sb_html(&h, r->run);
  sb_printf(&h, "</h1>\n<p>%s of L = %d layers cut into B = %d block%s of %d layer%s each; every block was trained "
                "alone as a denoiser for its own range of noise levels (no gradient crosses a block boundary). "
                "%d log lines, up to step %d of %d per block.</p>\n",
            rc->task == TASK_LM ? "A byte-level language model" : rc->task == TASK_CLASSIFY ? "A diffusion classifier" : "An image generator (DiT)",
            rc->layers, B, B > 1 ? "s" : "", rc->model.depth, rc->model.depth > 1 ? "s" : "",
            r->log.n, r->log.r[r->log.n - 1].step, rc->steps);
  int k = 0;
  char cap[2048];
  snprintf(cap, sizeof cap,
           "The training loss of each block against its own optimizer steps, one curve per block%s. The blocks "
           "are separate denoisers, so their losses are separate curves: a block of high noise (block 0) has a "
           "harder job and ends higher than one of low noise. The loss is %s, read every few steps "
           "(--log-every): each point is one log line.",
           r->log_y ? " on a log scale" : " (dblocks report --log-y: log scale)",
           rc->task == TASK_LM ? "the cross-entropy of the denoised byte distribution against the clean byte, in nats "
                                 "per token (docs/lm.md)"
           : rc->task == TASK_CLASSIFY ? "the EDM-weighted cross-entropy of the denoised label (docs/classify.md)"
                                       : "EDM's weighted denoising error w(sigma) |D - y|^2 (docs/method.md)");
  html_figure(&h, r, "loss.svg", k++, 0, "Loss per block", cap);
  snprintf(cap, sizeof cap,
           "One panel per block, sigma on a log axis against the block's steps. The dark shade is the range the "
           "block owns at inference (it denoises there when sampling); the light shade its training range, widened "
           "by the overlap gamma = %g so that neighbours share a margin. The grey band is the smallest to largest "
           "sigma drawn between two log lines, the black line their mean: every drawn sigma stays inside the "
           "training range, and the mean sits where the %s puts most of its mass.",
           rc->gamma, law_name(rc));
  html_figure(&h, r, "sigma.svg", k++, 0, "Noise levels per block", cap);
  snprintf(cap, sizeof cap,
           "The density of ln sigma under the %s the blocks draw their training noise from (black curve), on a log "
           "sigma axis. Each coloured strip is one block: the darker part its assigned range, the lighter margin its "
           "overlapped training range; dashed lines are the partition bounds, and the percentage is the share of the "
           "density in the block's range. %s%s%s",
           law_name(rc),
           rc->task == TASK_CLASSIFY && rc->cls.sigma_law == SIGMA_LAW_LOGUNIFORM
               ? "This classifier draws its training sigma uniformly in ln sigma inside each training range "
                 "(--sigma-law loguniform); the curve is the log-normal its bounds were cut from. "
               : "",
           equidiff(rc) ? "Equi-difficulty bounds cut the rise of the posterior entropy h(sigma) into equal shares, "
                          "so each block gets the same share of the law. "
           : rc->partition == EDM_PARTITION_EQUIPROB ? "Equi-probability bounds give every block the same share, so "
                                                       "narrow blocks sit where the density is high. "
                                                     : "Uniform bounds give every block the same width in ln sigma, so the "
                                                       "shares differ. ",
           compare ? "The right panel draws the other partition over the same density, for comparison."
                   : "dblocks report --compare-partitions draws equi-probability and uniform side by side.");
  html_figure(&h, r, "partition.svg", k++, 0, "The noise partition", cap);
  snprintf(cap, sizeof cap,
           "The largest device memory in use (MiB, from log.jsonl's peak_mib) while each block trained%s. A block "
           "holds only its own L/B layers' weights, gradients, optimizer state and activations, so its peak is "
           "about that of L/B layers, plus what the run keeps resident (the dataset, for image runs). %s",
           r->have_base ? ", beside the peak of the baseline run given with --baseline" : "",
           r->have_base ? "" : "dblocks report --baseline DIR adds an end-to-end run's (B = 1) peak beside them.");
  html_figure(&h, r, "memory.svg", k++, 0, "Peak device memory", cap);
  if (traces_file && !strcmp(traces_file, "trajectory.png"))
    html_figure(&h, r, traces_file, k++, 0, "Denoising trajectory",
                "One row per class, sampled from pure noise. Columns run left to right from sigma_max down to 0, at "
                "the sigma where one block hands over to the next and at a few steps inside each block; each cell "
                "shows the block's denoised estimate D(z) above the noisy state z it was given. Read along a row to "
                "see which block settles the silhouette (the high-noise blocks, first) and which adds the texture "
                "(the low-noise blocks, last).");
  else if (traces_file)
    html_figure(&h, r, traces_file, k++, 1, "Generation trace of one token",
                "The prompt is followed by one new byte, generated by the diffusion sampler from sigma_max down to 0. "
                "Each column is one diffusion step; its rows are the top candidates of the denoised byte "
                "distribution at that step with their probabilities, and the columns are grouped by the block that "
                "ran the step. Read it left to right: the high-noise blocks keep many candidates open, the low-noise "
                "blocks commit to one.");
  html_config(&h, r);
  sb_printf(&h, "<h2>Command line</h2>\n<pre>dblocks");
  for (int i = 0; i < argc; i++) {
    sb_printf(&h, " ");
    int quote = strpbrk(argv[i], " \t'\"$\\") != NULL || !*argv[i];
    if (quote) sb_printf(&h, "'");
    sb_html(&h, argv[i]);
    if (quote) sb_printf(&h, "'");
  }
  sb_printf(&h, "</pre>\n<p>Files beside this page: loss, sigma, partition and memory as .svg and .png%s.</p>\n</body></html>\n",
            traces_file ? (strstr(traces_file, ".png") ? ", trajectory.png" : ", lm_trace.svg") : "");
  char path[PATH_MAX];
  fig_path(path, sizeof path, r, "index.html");
  atomic_write_file(path, h.s, h.n);
  free(h.s);
}

/* ---------------------------------------------------------------- the screenshot */
static void sh_quote(char *out, size_t n, const char *s) {
  size_t j = 0;
  if (j < n - 1) out[j++] = '\'';
  for (; *s && j + 5 < n; s++) {
    if (*s == '\'') memcpy(out + j, "'\\''", 4), j += 4;
    else out[j++] = *s;
  }
  if (j < n - 1) out[j++] = '\'';
  out[j] = 0;
}

static void screenshot(const report *r) {
  char html[PATH_MAX], shot[PATH_MAX], abs[PATH_MAX];
  fig_path(html, sizeof html, r, "index.html");
  fig_path(shot, sizeof shot, r, "screenshot.png");
  if (system("command -v chromium > /dev/null 2>&1") != 0)
    db_fail("report: --screenshot needs chromium, which is not installed (Debian: apt-get install chromium); the "
            "report itself is written: %s", html);
  if (!realpath(html, abs)) db_fail("report: cannot resolve %s: %s", html, strerror(errno));
  char qshot[PATH_MAX + 64], qurl[PATH_MAX + 64], url[PATH_MAX + 16], cmd[3 * PATH_MAX];
  snprintf(url, sizeof url, "file://%s", abs);
  sh_quote(qshot, sizeof qshot, shot);
  sh_quote(qurl, sizeof qurl, url);
  remove(shot);
  snprintf(cmd, sizeof cmd,
           "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot=%s "
           "--window-size=1280,2000 %s > /dev/null 2>&1",
           qshot, qurl);
  int st = system(cmd);
  char why[512];
  int w = 0, hgt = 0;
  double ink = plot_png_ink(shot, &w, &hgt, why, sizeof why);
  if (ink < 0) db_fail("report: chromium made no screenshot (exit status %d): %s", st, why);
  if (ink < 0.01)
    db_fail("report: the screenshot %s (%dx%d) is blank: %.2f %% of its pixels are not white", shot, w, hgt, 100 * ink);
  printf("  screenshot.png  %dx%d, %.1f %% of the pixels not white (chromium headless)\n", w, hgt, 100 * ink);
}

/* ---------------------------------------------------------------- the command */
int cmd_report(int argc, char **argv) {
  const char *device = NULL, *run = NULL, *out = NULL, *baseline = NULL, *prompt = "And God said,";
  int log_y = 0, compare = 0, shot = 0, top_k = 5, inside = 2, seed = 0;
  cli_opt opts[] = {
      {"run", OPT_STR, &run, "run directory with manifest.json and log.jsonl (required; any task)"},
      {"out", OPT_STR, &out, "where the figures and index.html go (default RUN/report)"},
      {"log-y", OPT_FLAG, &log_y, "loss on a log scale"},
      {"compare-partitions", OPT_FLAG, &compare, "draw equi-probability and uniform partitions side by side"},
      {"baseline", OPT_STR, &baseline, "an end-to-end run's directory: its peak memory beside the blocks'"},
      {"prompt", OPT_STR, &prompt, "language models: the prompt of the generation trace (default \"And God said,\")"},
      {"top-k", OPT_INT, &top_k, "language models: candidates per diffusion step in the trace (default 5)"},
      {"inside", OPT_INT, &inside, "image runs: trajectory steps inside each block (default 2)"},
      {"seed", OPT_INT, &seed, "noise seed of the traces (default 0)"},
      {"screenshot", OPT_FLAG, &shot, "look at index.html in headless chromium: OUT/screenshot.png, checked non-blank"},
      {"device", OPT_STR, &device, "P:D device (for the traces)"},
  };
  cli_parse("report", "dblocks report --run DIR [options]\n  figures of a run and one HTML page with them (docs/report.md)",
            opts, (int)(sizeof opts / sizeof *opts), argc, argv, NULL, NULL);
  if (!run) db_fail("report: --run DIR is required");
  if (top_k < 1 || top_k > 256) db_fail("report: --top-k %d must be in 1..256", top_k);
  if (inside < 0 || inside > 16) db_fail("report: --inside %d must be in 0..16", inside);
  if (seed < 0) db_fail("report: --seed must not be negative");
  report r;
  memset(&r, 0, sizeof r);
  r.run = run, r.log_y = log_y;
  check_run_dir(run, "--run");
  manifest_read(run, &r.rc);
  r.log = read_log(run, r.rc.blocks);
  if (baseline) {
    check_run_dir(baseline, "--baseline");
    run_config brc;
    manifest_read(baseline, &brc);
    r.base = read_log(baseline, brc.blocks);
    r.have_base = 1, r.base_blocks = brc.blocks;
  }
  char outbuf[PATH_MAX];
  if (!out) snprintf(outbuf, sizeof outbuf, "%s/report", run), out = outbuf;
  mkdirs(out);
  r.out = out;
  fig_loss(&r);
  fig_sigma(&r);
  fig_partition(&r, compare);
  fig_memory(&r);
  const char *traces = NULL;
  if (r.rc.task == TASK_IMAGE || r.rc.task == TASK_LM) {
    char path[PATH_MAX];
    db_ctx *ctx = db_init(device);
    if (r.rc.task == TASK_IMAGE) {
      traces = "trajectory.png";
      fig_path(path, sizeof path, &r, traces);
      report_image_trajectory(ctx, run, path, inside, (uint64_t)seed);
    } else {
      traces = "lm_trace.svg";
      fig_path(path, sizeof path, &r, traces);
      report_lm_trace(ctx, run, prompt, path, top_k, (uint64_t)seed);
    }
    db_shutdown(ctx);
  }
  write_html(&r, argc, argv, traces, compare);
  printf("report of %s (%s, B = %d, %d log lines) in %s/:\n", run, task_name(r.rc.task), r.rc.blocks, r.log.n, out);
  printf("  loss.svg/png  sigma.svg/png  partition.svg/png  memory.svg/png%s%s\n", traces ? "  " : "", traces ? traces : "");
  if (shot) screenshot(&r);
  printf("report: %s/index.html\n", out);
  free(r.log.r);
  free(r.base.r);
  return 0;
}
