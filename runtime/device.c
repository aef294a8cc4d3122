/* Device discovery and selection across every platform. No vendor allow-list: the first GPU wins,
 * else the first device, unless --device P:D / DBLOCKS_DEVICE says otherwise. */
#include "db.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dev_str(cl_device_id d, cl_device_info what, char *out, size_t n) {
  out[0] = 0;
  if (clGetDeviceInfo(d, what, n, out, NULL) != CL_SUCCESS) snprintf(out, n, "?");
  out[n - 1] = 0;
}

static void fill_info(db_device_info *info, cl_platform_id p, cl_device_id d, int pi, int di) {
  memset(info, 0, sizeof *info);
  info->platform = p;
  info->device = d;
  info->platform_index = pi;
  info->device_index = di;
  clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof info->platform_name, info->platform_name, NULL);
  clGetPlatformInfo(p, CL_PLATFORM_VERSION, sizeof info->platform_version, info->platform_version, NULL);
  dev_str(d, CL_DEVICE_NAME, info->name, sizeof info->name);
  dev_str(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
  dev_str(d, CL_DEVICE_VERSION, info->version, sizeof info->version);
  dev_str(d, CL_DRIVER_VERSION, info->driver, sizeof info->driver);
  dev_str(d, CL_DEVICE_OPENCL_C_VERSION, info->c_version, sizeof info->c_version);
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof info->type, &info->type, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof info->compute_units, &info->compute_units, NULL);
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof info->global_mem, &info->global_mem, NULL);
  clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof info->local_mem, &info->local_mem, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof info->max_alloc, &info->max_alloc, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof info->max_wg, &info->max_wg, NULL);
  size_t ext_len = 0;
  clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_len);
  char *ext = db_calloc(ext_len + 1, 1);
  if (ext && clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ext_len, ext, NULL) == CL_SUCCESS) {
    info->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    info->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
  }
  free(ext);
}

db_device_info *db_list_devices(int *count) {
  *count = 0;
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &np);
  if (err == -1001 || np == 0) return NULL; /* no ICD: an empty list, not a crash */
  CL_CHECK(err);
  cl_platform_id *plats = db_calloc(np, sizeof *plats);
  CL_CHECK(clGetPlatformIDs(np, plats, NULL));
  db_device_info *list = NULL;
  int n = 0;
  for (cl_uint p = 0; p < np; p++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
    cl_device_id *devs = db_calloc(nd, sizeof *devs);
    CL_CHECK(clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL));
    list = db_realloc(list, (size_t)(n + (int)nd) * sizeof *list);
    for (cl_uint d = 0; d < nd; d++) fill_info(&list[n++], plats[p], devs[d], (int)p, (int)d);
    free(devs);
  }
  free(plats);
  *count = n;
  return list;
}

db_device_info db_select_device(const char *spec) {
  int n = 0;
  db_device_info *list = db_list_devices(&n);
  if (n == 0) db_fail("no OpenCL device found: install an OpenCL driver (e.g. `make deps` installs PoCL) and check `clinfo -l`");
  db_device_info pick;
  if (spec && !strncmp(spec, "auto", 4)) { /* "auto" or "auto:K": the K-th GPU (modulo their count), else a CPU */
    int k = 0, ngpu = 0;
    char tail = 0;
    if (spec[4] && (sscanf(spec + 4, ":%d%c", &k, &tail) != 1 || k < 0)) {
      free(list);
      db_fail("bad device '%s': expected auto or auto:K (K >= 0, the node-local rank)", spec);
    }
    for (int i = 0; i < n; i++) ngpu += (list[i].type & CL_DEVICE_TYPE_GPU) != 0;
    pick = list[0];
    for (int i = 0, g = 0; i < n; i++) {
      int gpu = (list[i].type & CL_DEVICE_TYPE_GPU) != 0;
      if (ngpu ? gpu && g++ == k % ngpu : (list[i].type & CL_DEVICE_TYPE_CPU) != 0) { pick = list[i]; break; }
    }
    free(list);
    return pick;
  }
  if (spec && *spec) {
    int p = -1, d = -1;
    char tail = 0;
    if (sscanf(spec, "%d:%d%c", &p, &d, &tail) != 2 || p < 0 || d < 0) {
      free(list);
      db_fail("bad device '%s': expected P:D, e.g. 0:0 (see `dblocks devices`)", spec);
    }
    for (int i = 0; i < n; i++)
      if (list[i].platform_index == p && list[i].device_index == d) {
        pick = list[i];
        free(list);
        return pick;
      }
    free(list);
    db_fail("no device %d:%d: `dblocks devices` lists %d device(s)", p, d, n);
  }
  pick = list[0];
  for (int i = 0; i < n; i++)
    if (list[i].type & CL_DEVICE_TYPE_GPU) { pick = list[i]; break; }
  free(list);
  return pick;
}
