/* Test runner: `dblocks_tests [filter]` runs every test whose name contains
 * filter (`=NAME`: exactly that suite), prints one line per check and ends
 * with "N passed, M failed". DBLOCKS_TEST_SMALL=1: small shapes in the suites
 * that honour it; DBLOCKS_ROW_WG: forced reduction work-group size. */
#include "harness.h"
#include <stdlib.h>
#include <string.h>

extern int th_passed, th_failed;
extern const char *th_filter;

#define TEST_SUITES(X) \
  X(runtime) X(rng) X(gemm) X(linear) X(layernorm) X(rmsnorm) X(modulate) X(gated_residual) X(activations) \
  X(bias_gelu) \
  X(layernorm_modulate) \
  X(rope) X(swiglu) X(attention) X(losses) X(embedding) X(patchify) X(window_patches) X(gather_bytes) X(glue_ops) X(reduce) X(adamw) X(params) X(dit_layer) X(dit) X(edm) X(run_config) X(data) X(formats) X(train) X(memory) X(classifier) X(class_table) X(classify) X(text) X(lm_noise) X(text_metrics) X(judge) X(lm) X(cli) X(traces) X(parallel) X(report)
/* weak: a suite whose file is missing is reported as a failure, not a link error */
#define DECLARE(s) void tests_##s(void) __attribute__((weak));
TEST_SUITES(DECLARE)

int main(int argc, char **argv) {
  th_filter = argc > 1 ? argv[1] : NULL;
  const char *small = getenv("DBLOCKS_TEST_SMALL");
  th_small = small && *small && strcmp(small, "0") != 0;
  double t0 = db_now();
  th_ctx = db_init(NULL);
  th_oclgrind = strstr(th_ctx->dev.platform_name, "Oclgrind") != NULL;
  /* On Oclgrind: the runtime's five workspaces (ops' device scratch, written
   * only by kernels) made first, at the most the small shapes ask for, so no
   * op re-creates one larger mid-run: a buffer made in a released one's slot
   * keeps its shadow state in Oclgrind 21.10's --uninitialized checker, and
   * kernel writes past the old size read back as uninitialized
   * (tests/oclgrind/released_buffer_repro.c). Fresh slots get an honest,
   * all-uninitialized shadow. Sizes measured at DBLOCKS_TEST_SMALL=1: slot 0
   * (GEMM's transposed B, attention's transposed heads) 19968 floats, 1
   * (CLBlast's temp, unused there) 0, 2 (split-K partials) 189, 3 (column-sum
   * partials) 60, 4 (reduce_sum's partials) always 256. Not more: every kernel launch under Oclgrind costs time in
   * proportion to all live device memory (1M floats per slot made the adamw
   * suite 10x slower). */
  if (th_oclgrind) {
    static const size_t ws[5] = {32768, 4096, 4096, 4096, 256};
    for (int w = 0; w < 5; w++) db_workspace(th_ctx, w, ws[w]);
  }
  printf("device: %s (%s, %s)\n", th_ctx->dev.name, th_ctx->dev.platform_name, th_ctx->dev.driver);
  if (th_ctx->row_wg_forced) printf("row-reduction work-group size forced to %zu (DBLOCKS_ROW_WG)\n", th_ctx->row_wg);
  if (th_small) printf("small shapes only (DBLOCKS_TEST_SMALL)\n");
/* filter: suites whose name contains it; "=NAME": that suite only */
#define SELECTED(s) (!th_filter || (th_filter[0] == '=' ? !strcmp(#s, th_filter + 1) : strstr(#s, th_filter) != NULL))
#define RUN(s)                                                   \
  if (SELECTED(s)) {                                             \
    printf("[%s]\n", #s);                                        \
    if (tests_##s) tests_##s();                                  \
    else th_check(0, #s, "test suite not linked into this binary"); \
  }
  TEST_SUITES(RUN)
  th_print_table();
  db_shutdown(th_ctx);
  printf("time %.1f s\n", db_now() - t0);
  printf("%d passed, %d failed\n", th_passed, th_failed);
  return th_failed ? 1 : 0;
}
