/* libFuzzer harness: the safetensors reader st_read (data/safetensors.h). The
 * input is the file. On success every tensor's shape must match its element
 * count, every element is read, and st_find / st_meta find every name and key. */
#include "fuzz.h"
#include "../../data/safetensors.h"
#include <setjmp.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200];
  fz_write_file(path, sizeof path, "input.safetensors", data, size);
  jmp_buf jb;
  db_trap_errors(&jb);
  if (!setjmp(jb)) {
    st_file f = st_read(path);
    FZ_CHECK(f.n >= 0 && f.n_meta >= 0);
    for (int i = 0; i < f.n; i++) {
      const st_tensor *t = &f.tensors[i];
      FZ_CHECK(t->name && t->data && t->ndim >= 0 && t->ndim <= 4);
      size_t numel = 1;
      for (int d = 0; d < t->ndim; d++) {
        FZ_CHECK(t->shape[d] >= 0);
        numel *= (size_t)t->shape[d];
      }
      FZ_CHECK(numel == t->numel);
      fz_touch(t->data, t->numel * sizeof *t->data);
      FZ_CHECK(st_find(&f, t->name) != NULL);
    }
    for (int i = 0; i < f.n_meta; i++) {
      FZ_CHECK(f.meta_kv[2 * i] && f.meta_kv[2 * i + 1]);
      FZ_CHECK(st_meta(&f, f.meta_kv[2 * i]) != NULL);
    }
    st_free(&f);
    fz_outcome("st_read", 0);
  } else fz_outcome("st_read", 1);
  db_trap_errors(NULL);
  return 0;
}
