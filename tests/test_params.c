/* Parameter sets on flat buffers (models/params.h): the layout (decayed
 * tensors first, aligned views, zero padding), one fill zeroes every
 * gradient, and the set's AdamW (two launches over the flat ranges) equals
 * the per-tensor AdamW. */
#include "harness.h"
#include "../models/params.h"
#include <stdlib.h>

static const int shapes[][2] = {{7, 5}, {3, 0}, {33, 0}, {4, 9}, {1, 0}, {16, 17}};
enum { NT = 6 };

static void make_set(param_set *ps) {
  param_set_init(ps, th_ctx, "test");
  for (int i = 0; i < NT; i++) {
    char name[32];
    snprintf(name, sizeof name, "t%d", i);
    param_add(ps, name, shapes[i][1] ? 2 : 1, shapes[i], shapes[i][1] != 0);
  }
  param_set_commit(ps);
}

static void fill_random(db_tensor *t, int n, uint64_t seed) {
  for (int i = 0; i < n; i++) db_rng_uniform(th_ctx, t[i], seed, (uint64_t)i << 24, -1, 1);
}

static void test_layout(void) {
  param_set ps;
  make_set(&ps);
  int ok = ps.n == NT, decay_first = 1, aligned = 1, same_buffer = 1;
  for (int i = 0; i < NT; i++) {
    aligned &= ps.offset[i] % PARAM_ALIGN == 0;
    same_buffer &= ps.p[i].mem == ps.flat_p.mem && ps.p[i].offset == ps.flat_p.offset + ps.offset[i] * 4;
    decay_first &= ps.decay[i] ? ps.offset[i] < ps.decay_end : ps.offset[i] >= ps.decay_end;
    for (int j = 0; j < NT; j++) /* no overlap */
      if (i != j && ps.offset[i] <= ps.offset[j] && ps.offset[j] < ps.offset[i] + db_numel(ps.p[i])) ok = 0;
  }
  th_check(ok && aligned && same_buffer && decay_first && ps.total >= param_set_numel(&ps),
           "params: one flat buffer, aligned non-overlapping views, decayed tensors first", "layout wrong");
  TH_EXPECT_ERROR("params: param_add after the layout is fixed is refused", "already laid out",
                  param_add(&ps, "late", 1, (int[]){3}, 0));
  param_set_free(&ps);
  param_set bare;
  param_set_init(&bare, th_ctx, "bare");
  param_add(&bare, "x", 1, (int[]){4}, 0);
  TH_EXPECT_ERROR("params: training state before the layout is refused", "param_set_commit first",
                  param_set_alloc_training(&bare));
  param_set_free(&bare);
}

static void test_zero_and_adamw(void) {
  param_set ps;
  make_set(&ps);
  param_set_alloc_training(&ps);
  fill_random(ps.g, NT, 5);
  param_set_zero_grads(&ps);
  float *flat = db_malloc(ps.total * sizeof *flat);
  db_download(th_ctx, ps.flat_g, flat);
  int zero = 1;
  for (size_t i = 0; i < ps.total; i++) zero &= flat[i] == 0.0f;
  th_check(zero, "params: param_set_zero_grads zeroes every gradient (one fill)", "non-zero left");

  /* the same step per tensor on copies, against the set's flat step */
  db_arena *a = db_arena_new(th_ctx, "params test copies");
  db_tensor P[NT], G[NT], M[NT], V[NT];
  int decay[NT];
  fill_random(ps.p, NT, 6);
  fill_random(ps.g, NT, 7);
  for (int i = 0; i < NT; i++) {
    P[i] = db_alloc(a, DB_F32, ps.p[i].ndim, ps.p[i].shape);
    G[i] = db_alloc(a, DB_F32, ps.p[i].ndim, ps.p[i].shape);
    M[i] = db_alloc(a, DB_F32, ps.p[i].ndim, ps.p[i].shape);
    V[i] = db_alloc(a, DB_F32, ps.p[i].ndim, ps.p[i].shape);
    db_copy(th_ctx, P[i], ps.p[i]);
    db_copy(th_ctx, G[i], ps.g[i]);
    db_zero(th_ctx, M[i]);
    db_zero(th_ctx, V[i]);
    decay[i] = ps.decay[i];
  }
  db_tensor normsq = db_new(a, 1, 1, 0, 0, 0);
  adamw_config cfg = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.0f}; /* no clipping: each element's update is independent */
  for (int step = 1; step <= 3; step++) {
    param_set_adamw(&ps, cfg, step);
    adamw_update(th_ctx, P, G, M, V, decay, NT, normsq, cfg, step);
  }
  int same = 1;
  for (int i = 0; i < NT; i++) {
    size_t n = db_numel(P[i]);
    float *x = db_malloc(n * 4), *y = db_malloc(n * 4);
    db_download(th_ctx, P[i], x);
    db_download(th_ctx, ps.p[i], y);
    same &= !memcmp(x, y, n * 4);
    free(x); free(y);
  }
  th_check(same, "params: the set's AdamW over two flat ranges equals per-tensor AdamW bit for bit (3 steps, decay mixed)",
           "differs");
  db_download(th_ctx, ps.flat_p, flat);
  int pad_zero = 1;
  for (int i = 0; i < NT; i++) { /* the padding after each tensor stays zero */
    size_t end = ps.offset[i] + db_numel(ps.p[i]), next = (end + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
    for (size_t k = end; k < next; k++) pad_zero &= flat[k] == 0.0f;
  }
  th_check(pad_zero, "params: the padding between views stays zero through AdamW", "padding changed");
  /* with clipping the flat norm equals the per-tensor norm up to summation order */
  cfg.clip = 0.5f;
  param_set_adamw(&ps, cfg, 4);
  adamw_update(th_ctx, P, G, M, V, decay, NT, normsq, cfg, 4);
  float n1, n2;
  db_download(th_ctx, ps.normsq, &n1);
  db_download(th_ctx, normsq, &n2);
  th_check(fabsf(n1 - n2) <= 1e-5f * n2, "params: the flat gradient norm is the sum over the tensors", "%g vs %g", n1, n2);
  free(flat);
  db_arena_free(a);
  param_set_free(&ps);
}

void tests_params(void) {
  test_layout();
  test_zero_and_adamw();
}
