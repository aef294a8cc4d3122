/* IDX reader (the MNIST / Fashion-MNIST format) through zlib: gzip-compressed
 * and plain files are both accepted. Every failure goes through db_fail with a
 * message naming the file. */
#ifndef DB_DATA_IDX_H
#define DB_DATA_IDX_H
#include <stdint.h>

typedef struct {
  int n, rows, cols;
  float *images;   /* (n, rows, cols), pixels mapped to [-1, 1]: idx_pixel_float(v) = v/127.5 - 1 */
  uint8_t *labels; /* (n) */
  int n_classes;   /* max label + 1 */
  uint8_t *pixels; /* (n, rows, cols) the raw bytes v of images: what the training tasks keep on the device */
} idx_dataset;

/* The one byte -> float mapping of pixels: exactly this float expression (the
 * device gather, gather_bytes_forward with div IDX_PIXEL_DIV and shift
 * IDX_PIXEL_SHIFT, gives the same floats bit for bit). */
#define IDX_PIXEL_DIV 127.5f
#define IDX_PIXEL_SHIFT (-1.0f)
static inline float idx_pixel_float(uint8_t v) { return (float)v / 127.5f - 1.0f; }

/* For a dataset built by hand from floats (synthetic sets, tests): allocates
 * d->pixels (freed by idx_free) as round((x + 1) * 127.5) clamped to 0..255,
 * and sets every image to idx_pixel_float of its byte, so host floats and the
 * device's byte copy agree. Images already on the 1/127.5 grid are unchanged;
 * others lose precision (up to 1/255). */
void idx_pixels_from_images(idx_dataset *d);

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
