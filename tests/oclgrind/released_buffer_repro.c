/* Minimal reproducer of a false "uninitialized" report of Oclgrind 21.10
 * (Debian 12): a buffer that takes the slot of a released one inherits the
 * released buffer's shadow state, so a kernel's writes past the old size are
 * lost and reading them is reported.
 *   cc -o /tmp/repro tests/oclgrind/released_buffer_repro.c -lOpenCL
 *   for c in 1 2 3; do oclgrind --uninitialized /tmp/repro $c; done
 * Buffer a (1 float) is written by kernel w; then b (16 floats) is created, w
 * writes all of b, and kernel r sums b into res. Measured:
 *   1 a released, then b created              -> 16, 1 report (in r)
 *   2 b created, then a released              -> 16, no report
 *   3 as 1, then b written whole by the host  -> 16, no report
 * The cause, in Oclgrind's source: its Memory gives a new buffer the first
 * free slot (a released buffer's), and the checker (src/plugins/
 * Uninitialized.cpp) never drops the shadow of a released buffer -- it makes
 * one at kernelBegin only for an address that has none, or at a host store.
 * So b keeps a's shadow, 4 bytes long, and w's stores to b[1..15] fall
 * outside it. The runtime's workspaces (ops that need device scratch) are
 * written only by kernels and re-created larger when an op needs more; on
 * Oclgrind the test runner therefore creates them at full size before
 * anything else (tests/test_main.c; docs/testing.md, "Oclgrind"). */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>

static const char *src =
    "__kernel void w(__global float *out) { out[get_global_id(0)] = 1.0f; }\n"
    "__kernel void r(__global float *res, __global const float *in, int n) {"
    " float s = 0.0f; for (int i = 0; i < n; i++) s += in[i]; res[0] = s; }\n";

int main(int argc, char **argv) {
  int c = argc > 1 ? atoi(argv[1]) : 1;
  if (c < 1 || c > 3) return 2;
  cl_platform_id p;
  cl_device_id d;
  cl_int e;
  clGetPlatformIDs(1, &p, NULL);
  clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL);
  cl_context ctx = clCreateContext(NULL, 1, &d, NULL, NULL, &e);
  cl_command_queue q = clCreateCommandQueue(ctx, d, 0, &e);
  cl_program pr = clCreateProgramWithSource(ctx, 1, &src, NULL, &e);
  if (clBuildProgram(pr, 1, &d, "", NULL, NULL) != CL_SUCCESS) return 1;
  cl_kernel w = clCreateKernel(pr, "w", &e), r = clCreateKernel(pr, "r", &e);
  cl_mem res = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4, NULL, &e);
  size_t one = 1, sixteen = 16;
  int n = 16;
  cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4, NULL, &e);
  clSetKernelArg(w, 0, sizeof a, &a);
  clEnqueueNDRangeKernel(q, w, 1, NULL, &one, NULL, 0, NULL, NULL);
  clFinish(q);
  if (c != 2) clReleaseMemObject(a);
  cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64, NULL, &e);
  if (c == 2) clReleaseMemObject(a);
  if (c == 3) {
    float zero[16] = {0};
    clEnqueueWriteBuffer(q, b, CL_TRUE, 0, sizeof zero, zero, 0, NULL, NULL);
  }
  clSetKernelArg(w, 0, sizeof b, &b);
  clEnqueueNDRangeKernel(q, w, 1, NULL, &sixteen, NULL, 0, NULL, NULL);
  clSetKernelArg(r, 0, sizeof res, &res);
  clSetKernelArg(r, 1, sizeof b, &b);
  clSetKernelArg(r, 2, sizeof n, &n);
  clEnqueueNDRangeKernel(q, r, 1, NULL, &one, NULL, 0, NULL, NULL);
  float s = 0;
  clEnqueueReadBuffer(q, res, CL_TRUE, 0, 4, &s, 0, NULL, NULL);
  printf("case %d: %g\n", c, s);
  return 0;
}
