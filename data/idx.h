/* IDX reader (the MNIST / Fashion-MNIST format) through zlib: gzip-compressed
 * and plain files are both accepted. Every failure goes through db_fail with a
 * message naming the file. */
#ifndef DB_DATA_IDX_H
#define DB_DATA_IDX_H
#include <stdint.h>

typedef struct {
  int n, rows, cols;
  float *images;   /* (n, rows, cols), pixels mapped to [-1, 1]: v/127.5 - 1 */
  uint8_t *labels; /* (n) */
  int n_classes;   /* max label + 1 */
} idx_dataset;

/* "/usr/share/datasets/fashion-mnist" (Debian package dataset-fashion-mnist) */
const char *idx_default_dir(void);

/* split "train" -> DIR/train-images-idx3-ubyte(.gz) + DIR/train-labels-idx1-ubyte(.gz);
 * "test" (or "t10k") -> DIR/t10k-... The .gz name is preferred when both exist.
 * Checks: magic 0x00000803 (images) / 0x00000801 (labels), non-zero dimensions,
 * a non-zero label count equal to the image count, exactly as many data bytes
 * as the header promises. Memory grows with the data actually read (at most
 * twice that), never with what the header promises: a tiny file whose header
 * claims gigabytes fails quickly as "truncated", without a huge allocation. */
idx_dataset idx_load(const char *dir, const char *split);
void idx_free(idx_dataset *d); /* frees and zeroes; safe on a zeroed struct */

#endif
