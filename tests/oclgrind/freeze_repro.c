/* Minimal reproducer of a failure of Oclgrind 21.10 (Debian 12, LLVM 14): its
 * --uninitialized checker cannot execute LLVM's `freeze` instruction, which
 * LLVM's DivRemPairs pass emits when a kernel computes both x / y and x % y of
 * a value it cannot prove defined (e.g. one derived from get_global_id): it
 * rewrites the pair as q = x / y, r = x - q * y on `freeze x`.
 *   cc -o /tmp/repro tests/oclgrind/freeze_repro.c -lOpenCL
 *   for c in 1 2; do oclgrind /tmp/repro $c; oclgrind --uninitialized /tmp/repro $c; done
 * Eight work-items, i = get_global_id(0), out[i] = 10 * (i / 3) + i % 3:
 *   1 written with / and %               -> 0 1 2 10 11 12 20 21 without the
 *     checker; with --uninitialized: "OCLGRIND FATAL ERROR ... Unsupported
 *     instruction: freeze", the kernel is abandoned and out stays -1 (unwritten)
 *   2 written q = i / 3, r = i - q * 3    -> 0 1 2 10 11 12 20 21, no report,
 *     with or without the checker
 * OCLGRIND_DUMP_SPIR=1 shows `%call.frozen = freeze i64 %call` in case 1 only.
 * (Upstream Oclgrind supports freeze since 2026, commit ee3a739.) The
 * kernels therefore compute remainders as x - q * y wherever they also need
 * the quotient (docs/testing.md, "Oclgrind"). */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>

static const char *src[2] = {
    "__kernel void k(__global float *out) { ulong i = get_global_id(0); out[i] = 10 * (i / 3) + i % 3; }",
    "__kernel void k(__global float *out) { ulong i = get_global_id(0), q = i / 3; out[i] = 10 * q + (i - q * 3); }"};

int main(int argc, char **argv) {
  int c = argc > 1 ? atoi(argv[1]) : 1;
  if (c < 1 || c > 2) return 2;
  cl_platform_id p;
  cl_device_id d;
  cl_int e;
  clGetPlatformIDs(1, &p, NULL);
  clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL);
  cl_context ctx = clCreateContext(NULL, 1, &d, NULL, NULL, &e);
  cl_command_queue q = clCreateCommandQueue(ctx, d, 0, &e);
  cl_program pr = clCreateProgramWithSource(ctx, 1, &src[c - 1], NULL, &e);
  if (clBuildProgram(pr, 1, &d, "", NULL, NULL) != CL_SUCCESS) return 1;
  cl_kernel k = clCreateKernel(pr, "k", &e);
  float r[8];
  for (int i = 0; i < 8; i++) r[i] = -1;
  cl_mem out = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof r, r, &e);
  clSetKernelArg(k, 0, sizeof out, &out);
  size_t g = 8;
  clEnqueueNDRangeKernel(q, k, 1, NULL, &g, NULL, 0, NULL, NULL);
  clEnqueueReadBuffer(q, out, CL_TRUE, 0, sizeof r, r, 0, NULL, NULL);
  printf("case %d:", c);
  for (int i = 0; i < 8; i++) printf(" %g", r[i]);
  printf("\n");
  return 0;
}
