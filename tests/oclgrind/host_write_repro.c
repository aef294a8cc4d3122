/* Minimal reproducer of a false "uninitialized" report of Oclgrind 21.10
 * (Debian 12): data put into a buffer by clEnqueueFillBuffer, or by a
 * clEnqueueWriteBuffer at a non-zero offset, is reported as uninitialized when
 * a kernel reads it, although the kernel reads the right value.
 *   cc -o /tmp/repro tests/oclgrind/host_write_repro.c -lOpenCL
 *   for c in 1 2 3 4 5 6; do oclgrind --uninitialized /tmp/repro $c; done
 * Cases 1-5 write 1.0f into element 4 (byte 16) of a 64-byte buffer, each in a
 * different way, then run `out[0] = x[i]`, i = 4, and print what it read. Measured:
 *   1 write(offset 0, all 64 bytes)             -> 1.0, no report
 *   2 write(offset 16, 4 bytes)                 -> 1.0, 1 report
 *   3 write(offset 0, 64 bytes), then case 2    -> 1.0, 1 report
 *   4 fill(1.0f over all 64 bytes)              -> 1.0, 1 report
 *   5 write(offset 0, 64 bytes), then case 4    -> 1.0, 1 report
 *   6 fill(1.0f over a buffer of 4 bytes), i = 0
 *                                               -> 1.0, no report
 * The cause, in Oclgrind's source (src/plugins/Uninitialized.cpp): every host
 * store (a write, and a fill, which is one host store per pattern) calls
 * hostMemoryStore, which calls ShadowMemory::allocate(address, size): that
 * throws away the buffer's whole shadow state and makes a new one just `size`
 * bytes long, marked initialized from offset 0 -- so bytes past the store's
 * size, or a store at a non-zero offset, read as uninitialized. Only a store
 * that covers its buffer from offset 0 (case 1, and case 6: a one-pattern
 * fill of a one-float buffer) leaves the state right. (docs/testing.md,
 * "Oclgrind"; the test harness therefore writes each guarded buffer whole,
 * from offset 0, and th_scalar gives an op that fills a one-float tensor a
 * buffer of its own.) */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>

static const char *src = "__kernel void k(__global float *out, __global const float *x, int i) { out[0] = x[i]; }";

int main(int argc, char **argv) {
  int c = argc > 1 ? atoi(argv[1]) : 1;
  cl_platform_id p;
  cl_device_id d;
  cl_int e;
  clGetPlatformIDs(1, &p, NULL);
  clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL);
  cl_context ctx = clCreateContext(NULL, 1, &d, NULL, NULL, &e);
  cl_command_queue q = clCreateCommandQueue(ctx, d, 0, &e);
  cl_program pr = clCreateProgramWithSource(ctx, 1, &src, NULL, &e);
  if (clBuildProgram(pr, 1, &d, "", NULL, NULL) != CL_SUCCESS) return 1;
  cl_kernel k = clCreateKernel(pr, "k", &e);
  cl_mem x = clCreateBuffer(ctx, CL_MEM_READ_WRITE, c == 6 ? 4 : 64, NULL, &e);
  cl_mem out = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4, NULL, &e);
  float all[16], one = 1.0f;
  for (int i = 0; i < 16; i++) all[i] = 1.0f;
  if (c == 1 || c == 3 || c == 5) clEnqueueWriteBuffer(q, x, CL_TRUE, 0, 64, all, 0, NULL, NULL);
  if (c == 2 || c == 3) clEnqueueWriteBuffer(q, x, CL_TRUE, 16, 4, &one, 0, NULL, NULL);
  if (c == 4 || c == 5) clEnqueueFillBuffer(q, x, &one, 4, 0, 64, 0, NULL, NULL);
  if (c == 6) clEnqueueFillBuffer(q, x, &one, 4, 0, 4, 0, NULL, NULL);
  clSetKernelArg(k, 0, sizeof out, &out);
  clSetKernelArg(k, 1, sizeof x, &x);
  int i = c == 6 ? 0 : 4;
  clSetKernelArg(k, 2, sizeof i, &i);
  size_t g = 1;
  clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &g, 0, NULL, NULL);
  float r = 0;
  clEnqueueReadBuffer(q, out, CL_TRUE, 0, 4, &r, 0, NULL, NULL);
  printf("case %d: kernel read %g\n", c, r);
  return 0;
}
