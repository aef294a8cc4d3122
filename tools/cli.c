#include "cli.h"
#include "../runtime/db.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_usage(const char *usage, cli_opt *opts, int nopts) {
  printf("usage: %s\n", usage);
  if (nopts) printf("\noptions:\n");
  for (int i = 0; i < nopts; i++) printf("  --%-18s %s\n", opts[i].name, opts[i].help);
}

void cli_parse(const char *cmd, const char *usage, cli_opt *opts, int nopts, int argc, char **argv, char **pos,
               int *npos) {
  int maxpos = npos ? *npos : 0, np = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      print_usage(usage, opts, nopts);
      exit(0);
    }
    if (strncmp(a, "--", 2) != 0) {
      if (np >= maxpos) db_fail("%s: unexpected argument '%s' (see `dblocks %s --help`)", cmd, a, cmd);
      pos[np++] = argv[i];
      continue;
    }
    const char *name = a + 2, *val = strchr(name, '=');
    size_t len = val ? (size_t)(val - name) : strlen(name);
    cli_opt *o = NULL;
    for (int j = 0; j < nopts; j++)
      if (strlen(opts[j].name) == len && !strncmp(opts[j].name, name, len)) o = &opts[j];
    if (!o) db_fail("%s: unknown option '%s' (see `dblocks %s --help`)", cmd, a, cmd);
    if (o->kind == OPT_FLAG) {
      if (val) db_fail("%s: option --%s takes no value", cmd, o->name);
      *(int *)o->dst = 1;
      continue;
    }
    if (val) val++;
    else if (i + 1 < argc) val = argv[++i];
    else db_fail("%s: option --%s needs a value", cmd, o->name);
    char *end;
    errno = 0;
    switch (o->kind) {
      case OPT_STR: *(const char **)o->dst = val; break;
      case OPT_INT: {
        long v = strtol(val, &end, 10);
        if (*val == 0 || *end || errno || v < -2147483647L || v > 2147483647L)
          db_fail("%s: option --%s wants an integer, got '%s'", cmd, o->name, val);
        *(int *)o->dst = (int)v;
        break;
      }
      case OPT_FLOAT: {
        double v = strtod(val, &end);
        if (*val == 0 || *end || errno || !isfinite(v))
          db_fail("%s: option --%s wants a finite number, got '%s'", cmd, o->name, val);
        *(double *)o->dst = v;
        break;
      }
      default: break;
    }
  }
  if (npos) *npos = np;
}
