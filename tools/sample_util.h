/* Sampling a run to files, shared by `sample` and `demo`. */
#ifndef DB_SAMPLE_UTIL_H
#define DB_SAMPLE_UTIL_H
#include "../models/diffusion.h"
typedef struct {
  const char *run;
  int steps, heun;
  double guidance, rho;
  int per_class;
  uint64_t seed;
  const char *png, *npy; /* NULL: inside the run directory */
} sample_request;
/* Loads every block of the run, samples per_class images of every class, writes
 * the PNG grid and the .npy files. Returns the samples (n, H, W) and labels
 * (malloc'd) through the optional out pointers. */
void sample_run(db_ctx *ctx, const sample_request *q, int verbose);
void sample_run_collect(db_ctx *ctx, const sample_request *q, int verbose, float **images, int **labels, int *n,
                        run_config *rc_out);
#endif
