/* The class-embedding table of the block-wise classifier (METHOD.md §8,
 * issue 10): the diffusion space in which labels are denoised. Every block
 * must use the same one (the z that block i hands to block i+1 is expressed
 * in it), so it is not learned: K orthonormal rows of width d from a seeded
 * generator, scaled by `scale`. Pure host C. */
#ifndef DB_CLASS_TABLE_H
#define DB_CLASS_TABLE_H
#include "../runtime/base.h"
#include <stdint.h>

/* E (K x d, row-major): Gram-Schmidt (twice, for accuracy) on seeded standard
 * normal rows, each row then scaled to norm `scale`. K <= d (else rows cannot
 * be orthogonal: db_fail), K >= 1, scale > 0. Deterministic for a seed. */
void class_table_orthonormal(float *E, int K, int d, double scale, uint64_t seed);
#endif
