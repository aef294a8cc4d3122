/* Host-side file output: .npy arrays (NumPy format 1.0) and PNG image grids.
 * Files are written by the atomic writer of file_io.h (PATH.tmp.<pid> next to
 * the target, fsync, rename; an existing target that is not a regular file is
 * refused), and every failure goes through db_fail with a message naming the
 * path ("cannot write PATH: ..."). */
#ifndef DB_DATA_IMAGE_IO_H
#define DB_DATA_IMAGE_IO_H
#include <stdint.h>

/* NPY v1.0, '<f4' / '<i4', C order; header padded with spaces so the data
 * starts at a multiple of 64 bytes. 0 <= ndim <= 8, every shape[i] >= 0. */
void npy_write_f32(const char *path, const float *data, int ndim, const int *shape);
void npy_write_i32(const char *path, const int32_t *data, int ndim, const int *shape);

/* Validating readers (NPY versions 1-3, little-endian, C order, ndim <= 4).
 * Returns a malloc'd array (free() it; non-NULL even when empty); shape[i] for
 * i >= *ndim is set to 1. Anything unexpected -- magic, version, dict, dtype,
 * Fortran order, size -- fails naming the file. */
float *npy_read_f32(const char *path, int *ndim, int shape[4]);
int32_t *npy_read_i32(const char *path, int *ndim, int shape[4]);

/* A grid of n grayscale h x w images (row-major, values in [-1,1], clamped;
 * NaN reads as -1) as an 8-bit grayscale PNG via libpng. min(cols, n) images
 * per row, `pad` pixels of gap between neighbouring images (none around the
 * border), gaps and empty cells filled with PNG_GRID_GAP; the whole picture is
 * then upscaled by the integer factor `scale` (>= 1). Size in pixels:
 *   width  = (c*w + (c-1)*pad) * scale,   c = min(cols, n)
 *   height = (r*h + (r-1)*pad) * scale,   r = ceil(n / c)
 * A pixel value v maps to round((v + 1) * 127.5). */
#define PNG_GRID_GAP 128
void png_write_grid(const char *path, const float *images, int n, int h, int w, int cols, int pad, int scale);

#endif
