/* `dblocks report` (issue 12, docs/report.md): the chart layer writes valid
 * SVG and PNG; the command writes every figure and one HTML page holding them
 * for a tiny image run, a tiny language-model run and a tiny classifier run
 * (which has no trace); missing or broken run directories and bad options are
 * clear errors; and, where chromium is installed, the page is looked at in
 * headless chromium and the screenshot is checked not to be blank (skipped, as
 * a passing note, without chromium). */
#include "harness.h"
#include "../tools/plot.h"
#include <stdlib.h>
#include <sys/stat.h>

static const unsigned char PNG_SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* a file that exists, is over min_bytes and starts as a PNG or an SVG should */
static int file_ok(const char *path, size_t min_bytes, char *why, size_t why_n) {
  size_t n = 0;
  char *b = th_slurp(path, &n);
  int ok = 0;
  if (!b) snprintf(why, why_n, "%s is missing", path);
  else if (n < min_bytes) snprintf(why, why_n, "%s has only %zu bytes (want >= %zu)", path, n, min_bytes);
  else if (strstr(path, ".png")) {
    ok = !memcmp(b, PNG_SIG, 8);
    if (!ok) snprintf(why, why_n, "%s does not start with the PNG signature", path);
  } else if (strstr(path, ".svg")) {
    ok = !strncmp(b, "<?xml", 5) || !strncmp(b, "<svg", 4);
    ok = ok && strstr(b, "</svg>") != NULL;
    if (!ok) snprintf(why, why_n, "%s does not start with <?xml or <svg, or has no </svg>", path);
  } else ok = 1;
  free(b);
  return ok;
}

static void test_plot_layer(void) {
  const char *svg = th_tpath("chart.svg"), *png = th_tpath("chart.png");
  plot *p = plot_new(500, 300, 1, 2, "a test figure");
  double x[5] = {0, 1, 2, 3, 4}, y[5] = {1, 10, 100, 1000, 10000}, lo[5], hi[5];
  for (int i = 0; i < 5; i++) lo[i] = y[i] / 2, hi[i] = y[i] * 2;
  plot_axes_spec a = {"log y", "x", "y", 0, 4, 0.1, 1e5, 0, 1, 0};
  plot_axes(p, 0, &a);
  plot_span(p, PLOT_SPAN_Y, 1, 10, plot_color(1), 0.3, "span");
  plot_band(p, x, lo, hi, 5, plot_color(0), 0.3, "band");
  plot_line(p, x, y, 5, plot_color(0), 2, 0, "line");
  plot_rule(p, PLOT_SPAN_X, 2, PLOT_GREY, 1, 1);
  plot_text(p, 2, 1000, 0, 10, "text");
  plot_legend(p, 1);
  double v[3] = {3, 5.5, 0};
  const char *names[3] = {"a", "b", "c"};
  plot_bars(p, 1, v, 3, names, NULL, "%.1f", "bars", "MiB");
  plot_write(p, svg, png);
  plot_free(p);
  char why[600] = "";
  int ok = file_ok(svg, 2000, why, sizeof why);
  th_check(ok, "report: the chart layer writes an SVG (log axis, span, band, line, legend, bars)", "%s", why);
  ok = file_ok(png, 2000, why, sizeof why);
  th_check(ok, "report: the chart layer writes a PNG", "%s", why);
  int w = 0, h = 0;
  double ink = plot_png_ink(png, &w, &h, why, sizeof why);
  th_check(w == 1000 && h == 600 && ink > 0.02 && ink < 0.9, "report: the PNG is 2x the figure's size and has ink on it",
           "%dx%d, %.3f of the pixels not white %s", w, h, ink, ink < 0 ? why : "");
  TH_EXPECT_ERROR("report: a log axis over a non-positive range is refused", "on a log axis", {
    plot *q = plot_new(300, 200, 1, 1, NULL);
    plot_axes_spec b = {NULL, NULL, NULL, 0, 1, 0, 1, 1, 0, 0};
    plot_axes(q, 0, &b);
  });
}

/* report --run dir: every figure, index.html with each of them inline */
static void check_report(const char *what, const char *dir, const char *traces) {
  char args[2048], path[1024], why[1200];
  snprintf(args, sizeof args, "report --run %s --log-y --compare-partitions --baseline %s", dir, dir);
  char name[256];
  snprintf(name, sizeof name, "report: %s: report --run writes its figures and says where index.html is", what);
  th_cli_expect_as(name, args, 0, "report/index.html", NULL);
  static const char *const figs[] = {"loss.svg", "loss.png", "sigma.svg", "sigma.png", "partition.svg",
                                     "partition.png", "memory.svg", "memory.png"};
  int ok = 1;
  why[0] = 0;
  for (size_t i = 0; i < sizeof figs / sizeof *figs && ok; i++) {
    snprintf(path, sizeof path, "%s/report/%s", dir, figs[i]);
    ok = file_ok(path, 1500, why, sizeof why);
  }
  if (ok && traces) {
    snprintf(path, sizeof path, "%s/report/%s", dir, traces);
    ok = file_ok(path, 500, why, sizeof why);
  }
  snprintf(name, sizeof name, "report: %s: loss, sigma, partition, memory (SVG and PNG)%s%s exist with valid headers", what,
           traces ? " and " : "", traces ? traces : "");
  th_check(ok, name, "%s", why);
  snprintf(path, sizeof path, "%s/report/index.html", dir);
  size_t n = 0;
  char *html = th_slurp(path, &n);
  int figures = 0;
  for (char *s = html; s && (s = strstr(s, "<figure")); s++) figures++;
  int want = 4 + (traces != NULL);
  int inl = html && strstr(html, "<svg") && !strstr(html, "<?xml");
  int trace_in = !traces || (html && (strstr(traces, ".png") ? strstr(html, "data:image/png;base64,") != NULL
                                                             : strstr(html, "<b>lm_trace.svg</b>") != NULL));
  int parts = html && strstr(html, "<b>loss.svg</b>") && strstr(html, "<b>sigma.svg</b>") &&
              strstr(html, "<b>partition.svg</b>") && strstr(html, "<b>memory.svg</b>") &&
              strstr(html, "Configuration") && strstr(html, "dblocks report --run") && strstr(html, "</html>");
  snprintf(name, sizeof name, "report: %s: index.html holds %d figures inline, captions, the configuration and the command", what,
           want);
  th_check(html && n > 5000 && figures == want && inl && trace_in && parts, name,
           "%zu bytes, %d figures, inline svg %d, trace %d, parts %d", n, figures, inl, trace_in, parts != 0);
  free(html);
}

static void test_errors(const char *run) {
  char args[2048];
  th_cli_expect_as("report: without --run, a clear error", "report", 1, "--run DIR is required", NULL);
  snprintf(args, sizeof args, "report --run %s", th_tpath("nonexistent"));
  th_cli_expect_as("report: a missing run directory is named", args, 1, "nonexistent: No such file or directory", NULL);
  const char *empty = th_tpath("nomanifest");
  mkdir(empty, 0755);
  snprintf(args, sizeof args, "report --run %s", empty);
  th_cli_expect_as("report: a directory without manifest.json is not a run directory", args, 1,
                   "has no manifest.json: not a run directory", NULL);
  /* a run whose log is empty, and one without a log */
  const char *nolog = th_tpath("emptylog");
  mkdir(nolog, 0755);
  char from[1024], to[1024];
  snprintf(from, sizeof from, "%s/manifest.json", run);
  snprintf(to, sizeof to, "%s/manifest.json", nolog);
  th_copy_file(from, to);
  snprintf(args, sizeof args, "report --run %s", nolog);
  th_cli_expect_as("report: a run without log.jsonl names the file", args, 1, "log.jsonl", NULL);
  snprintf(to, sizeof to, "%s/log.jsonl", nolog);
  FILE *f = fopen(to, "w");
  if (f) fclose(f);
  th_cli_expect_as("report: an empty log is a clear error", args, 1, "is empty: no training step was logged", NULL);
  f = fopen(to, "w");
  if (f) fputs("{\"block\": 0, \"step\": 2, \"loss\": oops}\n", f), fclose(f);
  th_cli_expect_as("report: a corrupt log line is named", args, 1, "log.jsonl line 1 is not a JSON object", NULL);
  snprintf(args, sizeof args, "report --run %s --top-k 0", run);
  th_cli_expect_as("report: --top-k 0 is refused", args, 1, "--top-k 0 must be in 1..256", NULL);
  snprintf(args, sizeof args, "report --run %s --bogus", run);
  th_cli_expect_as("report: an unknown option is refused", args, 1, "unknown option '--bogus'", NULL);
}

static void test_screenshot(const char *run) {
  if (system("command -v chromium > /dev/null 2>&1") != 0) {
    printf("  note: chromium is not installed: the screenshot check is skipped (apt-get install chromium)\n");
    return;
  }
  char args[2048];
  snprintf(args, sizeof args, "report --run %s --out %s --screenshot", run, th_tpath("shot"));
  th_cli_expect_as("report: --screenshot: headless chromium renders index.html and the screenshot is not blank", args, 0,
                   "pixels not white (chromium headless)", NULL);
  char why[600];
  int ok = file_ok(th_tpath("shot/screenshot.png"), 10000, why, sizeof why);
  th_check(ok, "report: screenshot.png is a PNG", "%s", why);
}

void tests_report(void) {
  th_tmpdir_make("report");
  test_plot_layer();
  char args[2048];
  char img[512], lm[512]; /* th_tpath's buffers rotate: keep copies */
  snprintf(img, sizeof img, "%s", th_tpath("img"));
  snprintf(args, sizeof args,
           "train --width 16 --heads 2 --layers 2 --blocks 2 --patch 4 --batch 8 --steps 8 --log-every 2 --quiet --out %s",
           img);
  th_cli_expect_as("report: a tiny image run (B = 2, 8 steps per block)", args, 0, "done", NULL);
  check_report("image run", img, "trajectory.png");
  snprintf(lm, sizeof lm, "%s", th_tpath("lm"));
  snprintf(args, sizeof args,
           "lm-train --blocks 2 --layers 2 --width 32 --heads 2 --context 16 --embed-dim 16 --batch 8 --steps 4 "
           "--log-every 2 --quiet --out %s",
           lm);
  th_cli_expect_as("report: a tiny language-model run (B = 2, 4 steps per block)", args, 0, "done", NULL);
  check_report("LM run", lm, "lm_trace.svg");
  char cls[512];
  snprintf(cls, sizeof cls, "%s", th_tpath("cls"));
  snprintf(args, sizeof args,
           "train --task classify --width 16 --heads 2 --layers 2 --blocks 2 --batch 8 --steps 4 --log-every 2 --quiet "
           "--out %s",
           cls);
  th_cli_expect_as("report: a tiny classifier run (B = 2, 4 steps per block)", args, 0, "test accuracy", NULL);
  check_report("classifier run", cls, NULL);
  test_errors(img);
  test_screenshot(img);
  th_tmpdir_remove();
}
