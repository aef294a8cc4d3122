/* `dblocks devices`: every OpenCL device of every platform. */
#include "../runtime/db.h"
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>

static const char *type_name(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return "GPU";
  if (t & CL_DEVICE_TYPE_CPU) return "CPU";
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
  return "other";
}

int cmd_devices(int argc, char **argv) {
  cli_opt opts[] = {{0}};
  cli_parse("devices", "dblocks devices\n  lists index P:D, platform, device, vendor, versions, compute units,\n"
            "  memory sizes and fp64/fp16 support of every OpenCL device; `*` marks the default.",
            opts, 0, argc, argv, NULL, NULL);
  int n = 0;
  db_device_info *list = db_list_devices(&n);
  if (n == 0) {
    fprintf(stderr, "dblocks: error: no OpenCL device found: install a driver (`make deps` installs PoCL)\n");
    return 1;
  }
  db_device_info def = db_select_device(getenv("DBLOCKS_DEVICE"));
  for (int i = 0; i < n; i++) {
    db_device_info *d = &list[i];
    int is_def = d->platform_index == def.platform_index && d->device_index == def.device_index;
    printf("%c %d:%d  %s  [%s]\n", is_def ? '*' : ' ', d->platform_index, d->device_index, d->name,
           type_name(d->type));
    printf("      platform  %s (%s)\n", d->platform_name, d->platform_version);
    printf("      vendor    %s\n", d->vendor);
    printf("      OpenCL    %s, %s, driver %s\n", d->version, d->c_version, d->driver);
    printf("      compute   %u units, max work-group %zu\n", d->compute_units, d->max_wg);
    printf("      memory    global %.0f MiB, local %.0f KiB, max allocation %.0f MiB\n", d->global_mem / 1048576.0,
           d->local_mem / 1024.0, d->max_alloc / 1048576.0);
    printf("      fp64 %s, fp16 %s\n", d->fp64 ? "yes" : "no", d->fp16 ? "yes" : "no");
  }
  free(list);
  return 0;
}
