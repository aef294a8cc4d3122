/* A DiffusionBlocks model as a whole, one include for the four parts:
 *   run_config.h  the configuration and the one table of run options
 *   manifest.h    DIR/manifest.json, written and read from that table
 *   checkpoint.h  DIR/block_<i>.safetensors
 *   sampler.h     the sampler that calls, at each noise level, the block that owns it
 * (docs/method.md §1, §6). */
#ifndef DB_DIFFUSION_H
#define DB_DIFFUSION_H
#include "checkpoint.h"
#include "manifest.h"
#include "run_config.h"
#include "sampler.h"
#endif
