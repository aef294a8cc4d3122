/* `dblocks train`: DiffusionBlocks training of a class-conditional DiT on
 * Fashion-MNIST (or any IDX directory), block by block; --blocks 1 is the
 * end-to-end backprop baseline trained by the same code. */
#include "../models/image_task.h"
#include "run_opts.h"
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int cmd_train(int argc, char **argv) {
  run_opts r;
  run_opts_init(&r);
  const char *device = NULL, *out = "runs/default", *data = NULL;
  int block = -1, resume = 0, ckpt_every = 1000, log_every = 10, quiet = 0, equal_steps = 0;
  cli_opt opts[RUN_OPTS_MAX + 16];
  int n = run_opts_table(&r, opts, TASK_IMAGE);
  opts[n++] = (cli_opt){"out", OPT_STR, &out, "run directory: manifest.json, block_<i>.safetensors, log.jsonl (default runs/default)"};
  opts[n++] = (cli_opt){"data", OPT_STR, &data, "directory of IDX files (default /usr/share/datasets/fashion-mnist)"};
  opts[n++] = (cli_opt){"block", OPT_INT, &block, "train block i alone (separate processes/devices/hosts, joined later)"};
  opts[n++] = (cli_opt){"resume", OPT_FLAG, &resume, "continue from the checkpoints in --out (same seed: same losses)"};
  opts[n++] = (cli_opt){"ckpt-every", OPT_INT, &ckpt_every, "steps between checkpoints (default 1000; 0 = only at the end)"};
  opts[n++] = (cli_opt){"log-every", OPT_INT, &log_every, "steps between loss reads and log lines (1..32, default 10)"};
  opts[n++] = (cli_opt){"equal-steps", OPT_FLAG, &equal_steps,
                        "--steps is the total over all blocks (each gets steps/B) instead of per block"};
  opts[n++] = (cli_opt){"quiet", OPT_FLAG, &quiet, "no progress line"};
  opts[n++] = (cli_opt){"device", OPT_STR, &device, "P:D device"};
  cli_parse("train",
            "dblocks train [options]\n"
            "  trains every block of a DiffusionBlocks DiT (sequentially by default). By default --steps counts per\n"
            "  block: B blocks of L/B layers make as many layer updates as one L-layer model (equal budget).",
            opts, n, argc, argv, NULL, NULL);
  if (log_every < 1 || log_every > TRAIN_RING / 2) db_fail("train: --log-every %d must be in 1..%d", log_every, TRAIN_RING / 2);
  if (ckpt_every < 0) db_fail("train: --ckpt-every %d must not be negative", ckpt_every);
  if (block < -1) db_fail("train: --block %d must not be negative", block);
  train_opts o = {0};
  run_config_defaults(&o.rc);
  char manifest[1024];
  snprintf(manifest, sizeof manifest, "%s/manifest.json", out);
  struct stat st;
  if ((resume || block >= 0) && stat(manifest, &st) == 0) manifest_read(out, &o.rc); /* continue its configuration */
  run_opts_apply(&r, &o.rc, "train");
  if (equal_steps) o.rc.steps /= o.rc.blocks > 0 ? o.rc.blocks : 1;
  run_config_finish(&o.rc);
  o.out_dir = out;
  o.only_block = block;
  o.resume = resume;
  o.ckpt_every = ckpt_every;
  o.log_every = log_every;
  o.progress = !quiet;
  db_ctx *ctx = db_init(device);
  const run_config *rc = &o.rc;
  printf("dblocks train on %s\n", ctx->dev.name);
  printf("  L=%d layers, B=%d block(s) of %d, width %d, %d heads, patch %d, %s partition, gamma %g, %s schedule\n",
         rc->layers, rc->blocks, rc->model.depth, rc->model.width, rc->model.heads, rc->model.patch,
         partition_name(rc->partition), rc->gamma, schedule_name(rc->schedule));
  printf("  batch %d, %d steps per block, AdamW lr %g, seed %llu -> %s\n", rc->batch, rc->steps, rc->lr,
         (unsigned long long)rc->seed, out);
  fflush(stdout);
  size_t dataset_bytes;
  train_result res = image_train(ctx, &o, data, &dataset_bytes);
  printf("done: %ld steps in %.1f s, loss %.4f -> %.4f, peak device memory %.1f MiB (%.1f MiB of it the resident "
         "dataset)\n", res.steps_run, res.seconds, res.first_loss, res.last_loss, res.peak_bytes / 1048576.0,
         dataset_bytes / 1048576.0);
  printf("checkpoints and manifest in %s/, log in %s/log.jsonl\n", out, out);
  db_shutdown(ctx);
  return 0;
}
