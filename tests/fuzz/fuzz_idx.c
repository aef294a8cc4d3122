/* libFuzzer harness: the IDX reader idx_load (data/idx.h), which takes a
 * directory and a split. The input carries both files:
 *   u16 little-endian L, then L bytes of DIR/train-labels-idx1-ubyte, then the
 *   rest: DIR/train-images-idx3-ubyte
 * (L is cut to what is there). Either file may be plain or gzip-compressed:
 * the reader goes through gzopen, which takes both whatever the name. The
 * reader allocates only as the data arrives, never from the header's promise,
 * so a short input claiming 2^31 x 65535 x 65535 pixels must fail cheaply
 * (libFuzzer's malloc and RSS limits would report it otherwise).
 * On success every pixel and label is read and the label range checked. */
#include "fuzz.h"
#include "../../data/idx.h"
#include <setjmp.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t nl = size >= 2 ? (size_t)(data[0] | data[1] << 8) : 0, off = size >= 2 ? 2 : size;
  if (nl > size - off) nl = size - off;
  char images[4200], labels[4200];
  fz_write_file(labels, sizeof labels, "train-labels-idx1-ubyte", data + off, nl);
  fz_write_file(images, sizeof images, "train-images-idx3-ubyte", data + off + nl, size - off - nl);
  jmp_buf jb;
  db_trap_errors(&jb);
  if (!setjmp(jb)) {
    idx_dataset d = idx_load(fz_tmpdir(), "train");
    FZ_CHECK(d.n > 0 && d.rows > 0 && d.cols > 0 && d.images && d.labels);
    FZ_CHECK(d.n_classes >= 1 && d.n_classes <= 256);
    for (int i = 0; i < d.n; i++) FZ_CHECK(d.labels[i] < d.n_classes);
    size_t px = (size_t)d.n * d.rows * d.cols;
    for (size_t i = 0; i < px; i++) FZ_CHECK(d.images[i] >= -1.0f && d.images[i] <= 1.0f);
    idx_free(&d);
    fz_outcome("idx_load", 0);
  } else fz_outcome("idx_load", 1);
  db_trap_errors(NULL);
  return 0;
}
