#include "run_opts.h"
#include <stdio.h>
#include <string.h>

void run_opts_init(run_opts *r) { memset(r, 0, sizeof *r); }

/* Help text with the task's own default: the table's text with the value
 * after "default " replaced by what run_config_defaults_task gives. */
static const char *task_help(const run_field *f, int task, int i) {
  static char buf[RUN_OPTS_MAX][192];
  const char *at = strstr(f->help, "default ");
  if (!at) return f->help;
  run_config rc;
  run_config_defaults_task(&rc, task);
  double v = run_field_get(&rc, f);
  const char *const *names = run_field_names(f);
  char val[48];
  if (names) snprintf(val, sizeof val, "%s", names[(int)v]);
  else if (f->type == RF_NUM) snprintf(val, sizeof val, "%g", v);
  else snprintf(val, sizeof val, "%.0f", v);
  const char *rest = at + strlen("default ");
  rest += strcspn(rest, ");:"); /* the old value ends at ')', ';' or ':' */
  snprintf(buf[i], sizeof buf[i], "%.*sdefault %s%s", (int)(at - f->help), f->help, val, rest);
  return buf[i];
}

int run_opts_table(run_opts *r, cli_opt *o, int task) {
  if (run_field_count > RUN_OPTS_MAX) db_fail("run_opts: %d run fields, room for %d", run_field_count, RUN_OPTS_MAX);
  int n = 0;
  run_config probe;
  probe.task = task;
  for (int i = 0; i < run_field_count; i++)
    if (run_fields[i].flag && run_field_applies(&probe, &run_fields[i]))
      o[n++] = (cli_opt){run_fields[i].flag, OPT_STR, &r->text[i], task_help(&run_fields[i], task, i)};
  return n;
}

void run_opts_apply(const run_opts *r, run_config *rc, const char *cmd) {
  for (int i = 0; i < run_field_count; i++)
    if (r->text[i]) run_field_set(rc, &run_fields[i], run_field_parse(&run_fields[i], r->text[i], cmd));
}

cli_opt run_opts_mem_limit_opt(const char **text) {
  return (cli_opt){"mem-limit", OPT_STR, text,
                   "cap the device memory as if the device had only SIZE (bytes, or with K, M, G, KiB, MiB, GiB: "
                   "512M, 1.5G); overrides DBLOCKS_MEM_LIMIT; not part of the run (default: the device's own)"};
}

size_t run_opts_mem_limit_parse(const char *text, const char *cmd) {
  if (!text) return 0;
  size_t bytes;
  if (!db_parse_size(text, &bytes))
    db_fail("%s: --mem-limit %s: want a size in bytes, optionally with a suffix K, M, G, KiB, MiB or GiB "
            "(e.g. 512M, 1.5G)", cmd, text);
  return bytes;
}
