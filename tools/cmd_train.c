/* `dblocks train`: DiffusionBlocks training on Fashion-MNIST (or any IDX
 * directory), block by block, by the one training driver: --task image (a
 * class-conditional DiT, the default) or --task classify (the block-wise
 * diffusion classifier, docs/classify.md); --blocks 1 is the end-to-end
 * backprop baseline trained by the same code. */
#include "../models/classify_task.h"
#include "../models/image_task.h"
#include "dist.h"
#include "run_opts.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --task decides which options exist, so it is read before the table is built. */
static int task_of_argv(int argc, char **argv) {
  const char *v = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--task") && i + 1 < argc) v = argv[i + 1];
    else if (!strncmp(argv[i], "--task=", 7)) v = argv[i] + 7;
  }
  if (!v || !strcmp(v, "image")) return TASK_IMAGE;
  if (!strcmp(v, "classify")) return TASK_CLASSIFY;
  if (!strcmp(v, "lm")) db_fail("train: --task lm: the language model trains with `dblocks lm-train`");
  db_fail("train: --task %s: expected image or classify", v);
}

int cmd_train(int argc, char **argv) {
  run_opts r;
  run_opts_init(&r);
  const char *mem_limit_arg = NULL;
  const char *device = NULL, *out = "runs/default", *data = NULL, *task_arg = NULL;
  int block = -1, resume = 0, ckpt_every = 1000, log_every = 10, quiet = 0, equal_steps = 0, eval_seed = 0;
  int replicas = 1, gather = 0;
  int task = task_of_argv(argc, argv);
  cli_opt opts[RUN_OPTS_MAX + 16];
  int n = run_opts_table(&r, opts, task);
  opts[n++] = (cli_opt){"task", OPT_STR, &task_arg, "image (a class-conditional DiT, default) or classify (the diffusion classifier)"};
  opts[n++] = (cli_opt){"out", OPT_STR, &out, "run directory: manifest.json, block_<i>.safetensors, log.jsonl (default runs/default)"};
  opts[n++] = (cli_opt){"data", OPT_STR, &data, "directory of IDX files (default /usr/share/datasets/fashion-mnist)"};
  opts[n++] = (cli_opt){"block", OPT_INT, &block, "train block i alone (separate processes/devices/hosts, joined later)"};
  opts[n++] = (cli_opt){"resume", OPT_FLAG, &resume, "continue from the checkpoints in --out (same seed: same losses)"};
  opts[n++] = (cli_opt){"ckpt-every", OPT_INT, &ckpt_every, "steps between checkpoints (default 1000; 0 = only at the end)"};
  opts[n++] = (cli_opt){"log-every", OPT_INT, &log_every, "steps between loss reads and log lines (1..32, default 10)"};
  opts[n++] = (cli_opt){"equal-steps", OPT_FLAG, &equal_steps,
                        "--steps is the total over all blocks (each gets steps/B) instead of per block"};
  opts[n++] = (cli_opt){"quiet", OPT_FLAG, &quiet, "no progress line"};
  cli_opt dist_opts[] = {DIST_TRAIN_OPTS(replicas, gather)};
  opts[n++] = dist_opts[0];
  opts[n++] = dist_opts[1];
  if (task == TASK_CLASSIFY)
    opts[n++] = (cli_opt){"eval-seed", OPT_INT, &eval_seed, "seed of the initial label noise of the final test (default 0)"};
  opts[n++] = run_opts_mem_limit_opt(&mem_limit_arg);
  opts[n++] = (cli_opt){"device", OPT_STR, &device, "P:D device"};
  cli_parse("train",
            "dblocks train [options]\n"
            "  trains every block of a DiffusionBlocks DiT, or with --task classify of the diffusion classifier\n"
            "  (sequentially by default). By default --steps counts per block: B blocks of L/B layers make as many\n"
            "  layer updates as one L-layer model (equal budget). `dblocks train --task classify --help` lists the\n"
            "  classifier's options and defaults.",
            opts, n, argc, argv, NULL, NULL);
  if (log_every < 1 || log_every > TRAIN_RING / 2) db_fail("train: --log-every %d must be in 1..%d", log_every, TRAIN_RING / 2);
  if (ckpt_every < 0) db_fail("train: --ckpt-every %d must not be negative", ckpt_every);
  if (block < -1) db_fail("train: --block %d must not be negative", block);
  train_opts o = {0};
  if (eval_seed < 0) db_fail("train: --eval-seed %d must not be negative", eval_seed);
  run_config_defaults_task(&o.rc, task);
  char manifest[1024];
  snprintf(manifest, sizeof manifest, "%s/manifest.json", out);
  struct stat st;
  if ((resume || block >= 0) && stat(manifest, &st) == 0) {
    manifest_read(out, &o.rc); /* continue its configuration */
    if (o.rc.task != task)
      db_fail("train: %s is a%s %s run, this is --task %s%s", manifest, o.rc.task == TASK_IMAGE ? "n" : "",
              task_name(o.rc.task), task_name(task), o.rc.task == TASK_LM ? " (use dblocks lm-train)" : "");
  }
  run_opts_apply(&r, &o.rc, "train");
  if (equal_steps) o.rc.steps /= o.rc.blocks > 0 ? o.rc.blocks : 1;
  run_config_finish(&o.rc);
  o.out_dir = out;
  o.only_block = block;
  o.resume = resume;
  o.ckpt_every = ckpt_every;
  o.log_every = log_every;
  int talk = dist_rank() == 0;
  char local_out[1100];
  dist_train_setup(&o, "train", out, replicas, gather, quiet, local_out, sizeof local_out);
  char devbuf[32];
  device = dist_device(device, devbuf, sizeof devbuf);
  size_t mem_limit = run_opts_mem_limit_parse(mem_limit_arg, "train");
  db_ctx *ctx = db_init(device);
  if (mem_limit) db_set_mem_limit(mem_limit);
  const run_config *rc = &o.rc;
  if (!talk) {
    if (!quiet) fprintf(stderr, "  rank %d of %d on %s\n", dist_rank(), dist_size(), ctx->dev.name);
    size_t dataset_bytes;
    double t0 = db_now();
    train_result res = task == TASK_CLASSIFY ? classify_train(ctx, &o, data, &dataset_bytes)
                                             : image_train(ctx, &o, data, &dataset_bytes);
    dist_join(o.comm, &res, rc, out, local_out, gather, db_now() - t0);
    db_shutdown(ctx);
    return 0;
  }
  printf("dblocks train (%s) on %s\n", task_name(task), ctx->dev.name);
  if (dist_active())
    printf("  %d processes (mpirun): %d block group(s) of %d replica(s), rank 0 on %s%s\n", dist_size(),
           dist_size() / replicas, replicas, ctx->dev.name, gather ? "; block files gathered over MPI" : "");
  if (task == TASK_CLASSIFY) {
    int w = rc->cls.window ? rc->cls.window : rc->model.patch;
    printf("  tokens: the noisy label, then one per %d x %d patch", rc->model.patch, rc->model.patch);
    if (w > rc->model.patch) printf(" holding the %d x %d window around it", w, w);
    printf("; class table rows of norm %g, sigma %s in each block's range, %s lr\n", classify_table_scale(rc),
           sigma_law_name(rc->cls.sigma_law), lr_schedule_name(rc->cls.lr_schedule));
  }
  printf("  L=%d layers, B=%d block(s) of %d, width %d, %d heads, patch %d, %s partition, gamma %g, %s schedule\n",
         rc->layers, rc->blocks, rc->model.depth, rc->model.width, rc->model.heads, rc->model.patch,
         partition_name(rc->partition), rc->gamma, schedule_name(rc->schedule));
  printf("  batch %d, %d steps per block, AdamW lr %g, seed %llu -> %s\n", rc->batch, rc->steps, rc->lr,
         (unsigned long long)rc->seed, out);
  if (db_mem_limit()) printf("  device memory limited to %.1f MiB (--mem-limit / DBLOCKS_MEM_LIMIT)\n", db_mem_limit() / 1048576.0);
  fflush(stdout);
  size_t dataset_bytes;
  double t0 = db_now();
  train_result res = task == TASK_CLASSIFY ? classify_train(ctx, &o, data, &dataset_bytes)
                                           : image_train(ctx, &o, data, &dataset_bytes);
  dist_join(o.comm, &res, rc, out, local_out, gather, db_now() - t0);
  if (o.comm && o.comm->replicas > 1)
    printf("replicas: gradient allreduce %.2f s of %.1f s (%.2f ms/step: download + MPI %.2f ms + upload of %.1f MiB)\n",
           res.comm_seconds, res.seconds, 1e3 * res.comm_seconds / (res.steps_run ? res.steps_run : 1),
           1e3 * res.comm_mpi_seconds / (res.steps_run ? res.steps_run : 1),
           res.comm_bytes / 2 / (res.steps_run ? res.steps_run : 1) / 1048576.0);
  printf("done: %ld steps in %.1f s, loss %.4f -> %.4f, peak device memory %.1f MiB (%.1f MiB of it the resident "
         "dataset)\n", res.steps_run, res.seconds, res.first_loss, res.last_loss, res.peak_bytes / 1048576.0,
         dataset_bytes / 1048576.0);
  printf("checkpoints and manifest in %s/, log in %s/log.jsonl\n", out, out);
  if (task == TASK_CLASSIFY && block < 0) { /* every block is trained: the test accuracy */
    idx_dataset test = idx_load(data, "t10k");
    classify_result cr = classify_evaluate(ctx, out, &test, (uint64_t)eval_seed, NULL);
    printf("test accuracy %.2f %% (%d images, %d Euler step(s), one per block; after each block:", 100 * cr.accuracy,
           test.n, rc->blocks);
    for (int b = 0; b < rc->blocks; b++) printf(" %.2f", 100 * cr.block_accuracy[b]);
    printf(" %%)\n");
    idx_free(&test);
  }
  db_shutdown(ctx);
  return 0;
}
