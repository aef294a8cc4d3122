/* Fréchet distance between Gaussians fitted to feature vectors (the FID
 * formula, with our classifier's features instead of Inception's).
 * Pure C, double precision, no OpenCL:
 *   d² = |mu1 - mu2|² + tr(S1) + tr(S2) - 2 tr((S1^½ S2 S1^½)^½)
 * S1^½ comes from a symmetric eigen-decomposition (cyclic Jacobi) of S1 with
 * tiny negative eigenvalues clamped to 0; S1^½ S2 S1^½ is symmetric PSD, so
 * the trace of its square root is the sum of the square roots of its
 * (clamped) eigenvalues. This equals tr((S1 S2)^½) of the usual formula. */
#ifndef DB_FRECHET_H
#define DB_FRECHET_H

/* x: (n, d) row-major floats, n >= 2. mu: (d); cov: (d, d), unbiased (n - 1). */
void feature_stats(const float *x, int n, int d, double *mu, double *cov);

/* The squared Fréchet distance (what FID reports); rounding below 0 is
 * clamped to 0. NaN or Inf anywhere in mu1, cov1, mu2, cov2 (e.g. statistics of
 * features that hold NaN) returns NaN -- never a number, in particular never a
 * "perfect" 0: callers check isfinite() on the result. */
double frechet_distance(const double *mu1, const double *cov1, const double *mu2, const double *cov2, int d);

/* Eigen-decomposition of the symmetric d x d matrix a (row-major; only read):
 * eigenvalues w (d), eigenvectors as the columns of v (d x d, row-major), so
 * a = v diag(w) v^T. Cyclic Jacobi; exposed for tests. */
void sym_eigen(const double *a, int d, double *w, double *v);

#endif
