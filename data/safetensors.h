/* Checkpoint files: safetensors (https://huggingface.co/docs/safetensors)
 * restricted to float32 tensors of rank 0..4. Pure C, no OpenCL; the header
 * is JSON through jansson, files are written by the atomic writer of
 * file_io.h.
 *
 * Layout: u64 little-endian header length N; N bytes of JSON
 *   {"__metadata__":{"k":"v",...},
 *    "name":{"dtype":"F32","shape":[d0,...],"data_offsets":[begin,end]}, ...}
 * padded with spaces so that N is a multiple of 8; then the data buffer with
 * the tensors contiguous, in the order given to st_write, little-endian F32.
 * Offsets are relative to the start of the buffer.
 *
 * Every failure is a db_fail whose message starts "checkpoint PATH: ". */
#ifndef DB_SAFETENSORS_H
#define DB_SAFETENSORS_H
#include "file_io.h" /* atomic_write_file, read_text_file: older callers get them from here */
#include <stddef.h>

#define ST_MAX_HEADER (100u * 1000u * 1000u) /* bytes of JSON header accepted by st_read */

typedef struct {
  const char *name; /* unique, not "__metadata__" */
  int ndim;         /* 0..4; 0 is a scalar (one element) */
  int shape[4];
  const float *data;
} st_tensor_in;

/* Write tensors (in this order) and metadata atomically (atomic_open of
 * file_io.h: PATH.tmp.<pid> is written, flushed, fsynced and renamed over
 * PATH, then the directory is fsynced). On any failure the temporary file is
 * removed and an existing PATH is left untouched. Names and metadata keys must
 * be unique, valid UTF-8 without NUL; metadata values are UTF-8 strings.
 * meta_kv: NULL or n_meta (key, value) string pairs, i.e. 2*n_meta pointers. */
void st_write(const char *path, const st_tensor_in *tensors, int n, const char *const *meta_kv, int n_meta);

typedef struct {
  char *name;
  int ndim;
  int shape[4];
  float *data;  /* numel floats; never NULL (a 1-float allocation if numel is 0) */
  size_t numel;
} st_tensor;

typedef struct {
  st_tensor *tensors; /* in the order of their data offsets (= st_write order) */
  int n;
  char **meta_kv;     /* n_meta (key, value) pairs: 2*n_meta strings */
  int n_meta;
} st_file;

/* Read and validate a whole file: a regular file; header length <= ST_MAX_HEADER
 * and within the file; a valid JSON object without duplicate keys (jansson,
 * JSON_REJECT_DUPLICATES); "__metadata__", if present, an object of strings;
 * every other entry dtype "F32", 0..4
 * non-negative integer dims, data_offsets [begin,end] with end-begin = 4*numel;
 * the tensors tile the buffer exactly (no overlap, no gap); file size is
 * exactly 8 + N + buffer size (catches truncation and trailing bytes). */
st_file st_read(const char *path);
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */
const char *st_meta(const st_file *f, const char *key);       /* NULL if absent */
void st_free(st_file *f);                                      /* zeroes *f */

#endif
