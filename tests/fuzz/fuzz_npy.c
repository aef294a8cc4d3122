/* libFuzzer harness: the .npy readers npy_read_f32 and npy_read_i32
 * (data/image_io.h). The input is the file; both readers see it (one of them
 * always fails on the dtype). On success the reported shape must account for
 * every element returned, and every element is read. */
#include "fuzz.h"
#include "../../data/image_io.h"
#include <setjmp.h>

static void check_shape(const void *a, int nd, const int shape[4]) {
  FZ_CHECK(a != NULL);
  FZ_CHECK(nd >= 0 && nd <= 4);
  size_t numel = 1;
  for (int i = 0; i < 4; i++) {
    FZ_CHECK(shape[i] >= 0);
    if (i >= nd) FZ_CHECK(shape[i] == 1);
    numel *= (size_t)shape[i];
  }
  fz_touch(a, numel * 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  fz_write_file(path, sizeof path, "input.npy", data, size);
  jmp_buf jb;
  db_trap_errors(&jb);
  if (!setjmp(jb)) {
    int nd = -1, shape[4] = {-1, -1, -1, -1};
    float *a = npy_read_f32(path, &nd, shape);
    check_shape(a, nd, shape);
    free(a);
    fz_outcome("npy_read_f32", 0);
  } else fz_outcome("npy_read_f32", 1);
  if (!setjmp(jb)) {
    int nd = -1, shape[4] = {-1, -1, -1, -1};
    int32_t *a = npy_read_i32(path, &nd, shape);
    check_shape(a, nd, shape);
    free(a);
    fz_outcome("npy_read_i32", 0);
  } else fz_outcome("npy_read_i32", 1);
  db_trap_errors(NULL);
  return 0;
}
