/* Minimal reproducers of two failures of Oclgrind 21.10's --uninitialized
 * checker (Debian 12, LLVM 14) on vector shuffles, which decided how
 * cl/layernorm_modulate.cl writes its horizontal sums:
 *   cc -o /tmp/repro tests/oclgrind/shuffle_undef_repro.c -lOpenCL
 *   for c in 1 2 3 4; do oclgrind /tmp/repro $c; oclgrind --uninitialized /tmp/repro $c; done
 * x = 1, 2, ..., 16 (written whole at buffer creation), v4 = vload4(0, x),
 * v16 = vload16(0, x). Measured:
 *   1 out = v4.s0 + v4.s1                        -> 3; with --uninitialized:
 *     segmentation fault
 *   2 out = dot(v4.even + v4.odd, (float2)(1))   -> 10, no report
 *   3 out = dot(v16.s8a + v16.s9b, (float2)(1))  -> 42 (9+11+10+12); with
 *     --uninitialized: 1 report "Controlflow depends on uninitialized value"
 *     at the dot, a false one: every input lane is initialized
 *   4 v16 stored to a private float[16] with vstore16, read back a quarter
 *     at a time with vload4, each summed as in case 2 -> 136, no report
 * Case 1: LLVM's VectorCombine turns the sum of two lanes of one vector into
 *   %shift = shufflevector <4 x float> %v, <4 x float> poison, <4 x i32> <i32 1, i32 undef, i32 undef, i32 undef>
 * (OCLGRIND_DUMP_SPIR=1 shows it), and the checker (src/plugins/
 * Uninitialized.cpp, ShuffleVector) tests each mask lane against
 * llvm::Value::UndefValueVal, a value-kind number, instead of LLVM's undef
 * mask element -1, so it takes -1 for a lane index and copies shadow bytes
 * from outside the shadow value (fixed upstream only for LLVM >= 21).
 * Case 3: the sum of two stride-2 shuffles of the upper half of a float16 is
 * marked uninitialized (also for a float16 that is zero from its initializer,
 * no load involved); the lower half,
 * contiguous lanes, one shuffle alone, or float8 and float4 vectors are clean.
 * Its cause inside Oclgrind was not pinned down; case 4 avoids it. dot(t, 1)
 * is exactly t.x + t.y (x * 1 is exact) on every device, so cases 2 and 4
 * give the same sums, bit for bit, as the lane-by-lane code they replace
 * (docs/testing.md, "Oclgrind"). */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>

#define HEAD "__kernel void k(__global float *out, __global const float *x) {" \
             " float4 v4 = vload4(0, x); float16 v16 = vload16(0, x); "
static const char *src[4] = {
    HEAD "out[0] = v4.s0 + v4.s1; }",
    HEAD "out[0] = dot(v4.even + v4.odd, (float2)(1.0f)); }",
    HEAD "out[0] = dot(v16.s8a + v16.s9b, (float2)(1.0f)); }",
    HEAD "float t[16]; vstore16(v16, 0, t); float s = 0.0f;"
         " for (int q = 0; q < 4; q++) { float4 u = vload4(q, t); s += dot(u.even + u.odd, (float2)(1.0f)); }"
         " out[0] = s; }"};

int main(int argc, char **argv) {
  int c = argc > 1 ? atoi(argv[1]) : 1;
  if (c < 1 || c > 4) return 2;
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
  float x[16], r = 0;
  for (int i = 0; i < 16; i++) x[i] = (float)(i + 1);
  cl_mem bx = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof x, x, &e);
  cl_mem out = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4, NULL, &e);
  clSetKernelArg(k, 0, sizeof out, &out);
  clSetKernelArg(k, 1, sizeof bx, &bx);
  size_t g = 1;
  clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &g, 0, NULL, NULL);
  clEnqueueReadBuffer(q, out, CL_TRUE, 0, 4, &r, 0, NULL, NULL);
  printf("case %d: %g\n", c, r);
  return 0;
}
