#include "run_opts.h"
#include <string.h>

void run_opts_init(run_opts *r) { memset(r, 0, sizeof *r); }

int run_opts_table(run_opts *r, cli_opt *o) {
  if (run_field_count > RUN_OPTS_MAX) db_fail("run_opts: %d run fields, room for %d", run_field_count, RUN_OPTS_MAX);
  int n = 0;
  for (int i = 0; i < run_field_count; i++)
    if (run_fields[i].flag) o[n++] = (cli_opt){run_fields[i].flag, OPT_STR, &r->text[i], run_fields[i].help};
  return n;
}

void run_opts_apply(const run_opts *r, run_config *rc, const char *cmd) {
  for (int i = 0; i < run_field_count; i++)
    if (r->text[i]) run_field_set(rc, &run_fields[i], run_field_parse(&run_fields[i], r->text[i], cmd));
}
