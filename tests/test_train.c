/* Training, checkpoints, resume and sampling end to end on a tiny synthetic
 * IDX dataset (8x8 images, 3 classes), so the whole suite stays fast on PoCL. */
#include "harness.h"
#include "../models/image_task.h"
#include "../data/safetensors.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[512];

static void path(char *out, const char *dir, const char *file) {
  if (snprintf(out, 1024, "%s/%s", dir, file) >= 1024) db_fail("test path too long: %s/%s", dir, file);
}

static void write_be32(FILE *f, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
  fwrite(b, 1, 4, f);
}

/* 96 images: class k has a bright bar in rows 2k..2k+2, plus noise. */
static void write_dataset(const char *dir) {
  mkdir(dir, 0755);
  char p[1024];
  int n = 96;
  path(p, dir, "train-images-idx3-ubyte");
  FILE *f = fopen(p, "wb");
  write_be32(f, 0x803); write_be32(f, (uint32_t)n); write_be32(f, 8); write_be32(f, 8);
  float noise[64];
  for (int i = 0; i < n; i++) {
    db_rng_uniform_host(noise, 64, 7, (uint64_t)i * 16, 0, 40);
    for (int r = 0; r < 8; r++)
      for (int c = 0; c < 8; c++) {
        int k = i % 3, on = r >= 2 * k && r < 2 * k + 3;
        fputc(on ? 215 + (int)noise[r * 8 + c] : (int)noise[r * 8 + c], f);
      }
  }
  fclose(f);
  path(p, dir, "train-labels-idx1-ubyte");
  f = fopen(p, "wb");
  write_be32(f, 0x801); write_be32(f, (uint32_t)n);
  for (int i = 0; i < n; i++) fputc(i % 3, f);
  fclose(f);
}

static train_opts tiny_opts(const char *out, const char *data) {
  train_opts o = {0};
  run_config_defaults(&o.rc);
  o.rc.model.img_h = o.rc.model.img_w = 8;
  o.rc.model.width = 16;
  o.rc.model.heads = 2;
  o.rc.layers = 2;
  o.rc.blocks = 2;
  o.rc.batch = 8;
  o.rc.steps = 8;
  o.rc.lr = 2e-3;
  o.rc.seed = 3;
  run_config_finish(&o.rc);
  o.out_dir = out;
  (void)data;
  o.only_block = -1;
  o.log_every = 4;
  return o;
}


static void test_loss_decreases(const char *data) {
  char out[1024];
  path(out, root, "loss");
  train_opts o = tiny_opts(out, data);
  o.rc.blocks = 1;
  o.rc.steps = 100;
  o.log_every = 10;
  run_config_finish(&o.rc);
  train_result r = image_train(th_ctx, &o, data, NULL);
  th_check(r.last_loss < 0.7 * r.first_loss, "train: 100 steps lower the loss",
           "first interval %.4f, last %.4f", r.first_loss, r.last_loss);
  printf("        loss %.4f -> %.4f over %ld steps\n", r.first_loss, r.last_loss, r.steps_run);
}

static void test_resume_and_blocks(const char *data) {
  char a[1024], b[1024], fa[1024], fb[1024], keep[1024];
  path(a, root, "straight");
  path(b, root, "resumed");
  train_opts o = tiny_opts(a, data);
  image_train(th_ctx, &o, data, NULL);                     /* uninterrupted: 2 blocks x 8 steps */
  train_opts p = tiny_opts(b, data);
  p.max_steps_this_run = 5;                  /* stops inside block 0 */
  image_train(th_ctx, &p, data, NULL);
  path(fb, b, "block_0.safetensors");
  st_file mid = st_read(fb);
  th_check(mid.n > 0 && !strcmp(st_meta(&mid, "steps_done"), "5"), "train: an interrupted run checkpoints where it stopped",
           "steps_done %s", st_meta(&mid, "steps_done"));
  st_free(&mid);
  p.max_steps_this_run = 0;
  p.resume = 1;
  image_train(th_ctx, &p, data, NULL);                     /* continues to the end */
  int same = 1;
  for (int i = 0; i < 2; i++) {
    char name[64];
    snprintf(name, sizeof name, "block_%d.safetensors", i);
    path(fa, a, name);
    path(fb, b, name);
    same &= th_same_file(fa, fb);
  }
  th_check(same, "train: resume gives bit-identical checkpoints to the uninterrupted run", "files differ");

  /* --block 1 alone leaves block 0 untouched, bit for bit */
  path(fa, a, "block_0.safetensors");
  path(keep, root, "block_0.copy");
  th_copy_file(fa, keep);
  path(fb, a, "block_1.safetensors");
  char keep1[1024];
  path(keep1, root, "block_1.copy");
  th_copy_file(fb, keep1);
  train_opts q = tiny_opts(a, data);
  q.rc.steps = 12;
  q.only_block = 1;
  q.resume = 1;
  image_train(th_ctx, &q, data, NULL);
  th_check(th_same_file(fa, keep), "train: --block 1 leaves block 0's file bit-for-bit unchanged", "block 0 changed");
  th_check(!th_same_file(fb, keep1), "train: --block 1 did train block 1", "block 1 unchanged");

  /* checkpoint round trip */
  dit_block blk;
  dit_block_create(th_ctx, &blk, o.rc.model, "rt");
  int steps = block_load(th_ctx, a, 0, &blk.ps);
  char rt[1024];
  path(rt, root, "rt");
  mkdir(rt, 0755);
  block_save(th_ctx, rt, 0, &blk.ps, steps, NULL, 0);
  dit_block blk2;
  dit_block_create(th_ctx, &blk2, o.rc.model, "rt2");
  block_load(th_ctx, rt, 0, &blk2.ps);
  int eq = 1;
  for (int i = 0; i < blk.ps.n; i++) {
    size_t n = db_numel(blk.ps.p[i]);
    float *x = db_malloc(n * 4), *y = db_malloc(n * 4);
    db_download(th_ctx, blk.ps.p[i], x);
    db_download(th_ctx, blk2.ps.p[i], y);
    eq &= !memcmp(x, y, n * 4);
    free(x); free(y);
  }
  th_check(eq && steps == 8, "checkpoint: save/load round trip is bit-exact", "differs (steps %d)", steps);
  dit_block_destroy(&blk);
  dit_block_destroy(&blk2);

  /* sampling is deterministic for a seed */
  dit_block bl[2];
  for (int i = 0; i < 2; i++) { dit_block_create(th_ctx, &bl[i], o.rc.model, "s"); block_load(th_ctx, a, i, &bl[i].ps); }
  int labels[4] = {0, 1, 2, 10};
  float s1[256], s2[256], s3[256];
  sampler_opts so = {6, 7.0, 1, 2.0, 11, 3};
  sample_images(th_ctx, bl, &o.rc, labels, 4, so, s1);
  so.chunk = 4;
  sample_images(th_ctx, bl, &o.rc, labels, 4, so, s2);
  so.seed = 12;
  sample_images(th_ctx, bl, &o.rc, labels, 4, so, s3);
  int finite = 1;
  for (int i = 0; i < 256; i++) finite &= isfinite(s1[i]);
  th_check(finite && !memcmp(s1, s2, sizeof s1), "sample: same seed, same images (whatever the chunking)", "differ");
  th_check(memcmp(s1, s3, sizeof s1) != 0, "sample: another seed, other images", "same");
  for (int i = 0; i < 2; i++) dit_block_destroy(&bl[i]);
}

static void test_errors(const char *data) {
  char a[1024], f0[1024], f1[1024], c0[1024], c1[1024], man[1024], cm[1024];
  path(a, root, "straight");
  path(f0, a, "block_0.safetensors");
  path(f1, a, "block_1.safetensors");
  path(c0, root, "e0.copy");
  path(c1, root, "e1.copy");
  path(man, a, "manifest.json");
  path(cm, root, "manifest.copy");
  th_copy_file(f0, c0);
  th_copy_file(f1, c1);
  th_copy_file(man, cm);

  train_opts o = tiny_opts(a, data);
  o.rc.steps = 20;
  TH_EXPECT_ERROR("train: existing checkpoints without --resume are refused", "pass --resume", image_train(th_ctx, &o, data, NULL));
  train_opts w = tiny_opts(a, data);
  w.rc.model.width = 24;
  run_config_finish(&w.rc);
  w.resume = 1;
  TH_EXPECT_ERROR("train: manifest/config mismatch names the option", "--width is 16 there but 24 here", image_train(th_ctx, &w, data, NULL));
  train_opts m = tiny_opts(a, "/nonexistent/dataset");
  m.resume = 1;
  TH_EXPECT_ERROR("train: a missing dataset is a clear error", "/nonexistent/dataset", image_train(th_ctx, &m, "/nonexistent/dataset", NULL));

  /* truncated checkpoint */
  size_t n;
  char *bytes = th_slurp(f0, &n);
  FILE *f = fopen(f0, "wb");
  fwrite(bytes, 1, n / 2, f);
  fclose(f);
  free(bytes);
  train_opts r = tiny_opts(a, data);
  r.rc.steps = 20;
  r.resume = 1;
  TH_EXPECT_ERROR("train: a truncated checkpoint is a clear error", "truncated", image_train(th_ctx, &r, data, NULL));
  th_check(th_same_file(f1, c1) && th_same_file(man, cm), "train: a failed resume leaves the other checkpoints intact", "changed");
  th_copy_file(c0, f0);
  /* corrupt manifest */
  f = fopen(man, "wb");
  fputs("{\"format\": \"dblocks-diffusionblocks-1\", \"model\": {", f);
  fclose(f);
  TH_EXPECT_ERROR("train: a corrupt manifest is a clear error", "manifest.json: not valid JSON", image_train(th_ctx, &r, data, NULL));
  th_check(th_same_file(f0, c0) && th_same_file(f1, c1), "train: a corrupt manifest leaves the checkpoints intact", "changed");
  th_copy_file(cm, man);
  /* a checkpoint of the wrong shape */
  train_opts s = tiny_opts(a, data);
  dit_block wide;
  dit_config wc = s.rc.model;
  wc.width = 24;
  dit_block_create(th_ctx, &wide, wc, "wide");
  TH_EXPECT_ERROR("checkpoint: shape mismatch names the tensor", "x_embedder.proj.weight", block_load(th_ctx, a, 0, &wide.ps));
  dit_block_destroy(&wide);
}


/* (block, step, loss) of every line of DIR/log.jsonl, one "b s loss" per line into out. */
static int log_triples(const char *dir, char *out, size_t n) {
  char p[1024];
  path(p, dir, "log.jsonl");
  FILE *f = fopen(p, "r");
  if (!f) return -1;
  char line[1024];
  int lines = 0;
  out[0] = 0;
  while (fgets(line, sizeof line, f)) {
    int b = -1, s = -1;
    char loss[64] = "";
    const char *pb = strstr(line, "\"block\": "), *ps = strstr(line, "\"step\": "), *pl = strstr(line, "\"loss\": ");
    if (pb) b = atoi(pb + 9);
    if (ps) s = atoi(ps + 8);
    if (pl) sscanf(pl + 8, "%63[^,]", loss);
    size_t len = strlen(out);
    snprintf(out + len, n - len, "%d %d %s\n", b, s, loss);
    lines++;
  }
  fclose(f);
  return lines;
}

/* Defect: a kill -9 after a log line but before the next checkpoint made the
 * resumed log repeat that line. A resumed log must read as the uninterrupted one. */
static void test_log_after_kill(const char *data) {
  char a[1024], b[1024], f0[1024], keep[1024];
  path(a, root, "log-straight");
  path(b, root, "log-killed");
  train_opts o = tiny_opts(a, data);
  o.log_every = 2;
  o.ckpt_every = 4;
  image_train(th_ctx, &o, data, NULL);
  train_opts k = tiny_opts(b, data);
  k.log_every = 2;
  k.ckpt_every = 4;
  k.max_steps_this_run = 4;                  /* checkpoint of block 0 at step 4 */
  image_train(th_ctx, &k, data, NULL);
  path(f0, b, "block_0.safetensors");
  path(keep, root, "log-killed-block0-at-4");
  th_copy_file(f0, keep);
  k.resume = 1;
  k.max_steps_this_run = 2;                  /* logs step 6 of block 0 ... */
  image_train(th_ctx, &k, data, NULL);
  th_copy_file(keep, f0);                       /* ... and is killed before the checkpoint at step 8 */
  char lp[1024];
  path(lp, b, "log.jsonl");
  FILE *f = fopen(lp, "a");
  fputs("{\"block\": 0, \"step\": 7, \"lo", f); /* torn by the kill */
  fclose(f);
  k.max_steps_this_run = 0;
  image_train(th_ctx, &k, data, NULL);       /* resume to the end */
  static char want[8192], got[8192];
  int nw = log_triples(a, want, sizeof want), ng = log_triples(b, got, sizeof got);
  th_check(nw > 0 && nw == ng && !strcmp(want, got),
           "train: log.jsonl after kill + resume has the uninterrupted run's lines, none twice, no torn line",
           "uninterrupted (%d lines):\n%sresumed (%d lines):\n%s", nw, want, ng, got);
}

/* Defect: a killed writer's block_<i>.safetensors.tmp.<pid> stayed forever. */
static void test_stale_temporaries(const char *data) {
  char a[1024], dead[1024], live[1024], other[1024], man[1024];
  path(a, root, "straight");
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, NULL, 0);                     /* pid now names no process */
  char name[128];
  snprintf(name, sizeof name, "block_1.safetensors.tmp.%d", (int)pid);
  path(dead, a, name);
  snprintf(name, sizeof name, "manifest.json.tmp.%d", (int)pid);
  path(man, a, name);
  snprintf(name, sizeof name, "block_1.safetensors.tmp.%d", (int)getppid()); /* a live writer's (not ours: we write that name) */
  path(live, a, name);
  snprintf(name, sizeof name, "block_0.safetensors.tmp.%d", (int)pid);     /* a block this run does not train */
  path(other, a, name);
  const char *paths[] = {dead, man, live, other};
  for (int i = 0; i < 4; i++) {
    FILE *f = fopen(paths[i], "w");
    fputs("partial", f);
    fclose(f);
  }
  train_opts q = tiny_opts(a, data);
  q.rc.steps = 14;
  q.only_block = 1;
  q.resume = 1;
  image_train(th_ctx, &q, data, NULL);
  struct stat st;
  th_check(stat(dead, &st) != 0 && stat(man, &st) != 0,
           "train: --resume removes the temporaries a killed writer left (block_1, manifest)", "still there: %s", dead);
  th_check(stat(live, &st) == 0 && stat(other, &st) == 0,
           "train: a live writer's temporary and other blocks' temporaries are left alone", "removed");
  unlink(live);
  unlink(other);
}

/* Defect: --schedule random read the loss (a host wait) and logged every step, ignoring --log-every. */
static void test_random_schedule_log_every(const char *data) {
  char a[1024];
  path(a, root, "random");
  train_opts o = tiny_opts(a, data);
  o.rc.schedule = SCHEDULE_RANDOM;
  o.log_every = 4;
  run_config_finish(&o.rc);
  train_result r = image_train(th_ctx, &o, data, NULL);
  static char got[8192];
  int lines = log_triples(a, got, sizeof got);
  /* 16 steps read 4 at a time: 4 reads, each at most one line per block. Blocks are drawn uniformly each
   * step, so their final step counts vary but add up to 16. */
  int last[2] = {0, 0}, b, st;
  for (const char *p = got; sscanf(p, "%d %d", &b, &st) == 2; p = strchr(p, '\n') + 1)
    if (b == 0 || b == 1) last[b] = st;
  th_check(r.steps_run == 16 && lines >= 2 && lines <= 8 && last[0] + last[1] == 16,
           "train: --schedule random reads losses every --log-every steps (<= 8 lines for 16 steps)", "%d lines:\n%s",
           lines, got);
}

void tests_train(void) {
  snprintf(root, sizeof root, "%s/dblocks-train-test-%d", getenv("DBLOCKS_CACHE_DIR") ? getenv("DBLOCKS_CACHE_DIR") : "/tmp",
           (int)getpid());
  mkdir(root, 0755);
  char data[1024];
  path(data, root, "data");
  write_dataset(data);
  test_loss_decreases(data);
  test_resume_and_blocks(data);
  test_errors(data);
  test_stale_temporaries(data);
  test_log_after_kill(data);
  test_random_schedule_log_every(data);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) printf("        could not remove %s\n", root);
}
