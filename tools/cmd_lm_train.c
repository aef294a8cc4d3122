/* `dblocks lm-train`: the block-diffusion language model (docs/lm.md) trained
 * block by block on a byte corpus (default: the King James Bible) by the one
 * training driver; --blocks 1 is the end-to-end baseline of the same code. */
#include "../models/lm_task.h"
#include "dist.h"
#include "run_opts.h"
#include <stdio.h>
#include <sys/stat.h>

int cmd_lm_train(int argc, char **argv) {
  run_opts r;
  run_opts_init(&r);
  const char *mem_limit_arg = NULL;
  const char *device = NULL, *out = "runs/lm", *text = NULL, *heldout = NULL;
  double heldout_fraction = 0.05;
  int block = -1, resume = 0, ckpt_every = 1000, log_every = 10, quiet = 0, replicas = 1, gather = 0;
  cli_opt opts[RUN_OPTS_MAX + 16];
  int n = run_opts_table(&r, opts, TASK_LM);
  opts[n++] = (cli_opt){"out", OPT_STR, &out, "run directory: manifest.json, block_<i>.safetensors, log.jsonl (default runs/lm)"};
  opts[n++] = (cli_opt){"text", OPT_STR, &text, "train on this text file instead of the King James Bible"};
  opts[n++] = (cli_opt){"heldout", OPT_STR, &heldout, "held-out text file for --text (default: its last --heldout-fraction)"};
  opts[n++] = (cli_opt){"heldout-fraction", OPT_FLOAT, &heldout_fraction, "share of --text held out when no --heldout (default 0.05)"};
  opts[n++] = (cli_opt){"block", OPT_INT, &block, "train block i alone (separate processes/devices/hosts, joined later)"};
  opts[n++] = (cli_opt){"resume", OPT_FLAG, &resume, "continue from the checkpoints in --out (same seed: same losses)"};
  opts[n++] = (cli_opt){"ckpt-every", OPT_INT, &ckpt_every, "steps between checkpoints (default 1000; 0 = only at the end)"};
  opts[n++] = (cli_opt){"log-every", OPT_INT, &log_every, "steps between loss reads and log lines (1..32, default 10)"};
  opts[n++] = (cli_opt){"quiet", OPT_FLAG, &quiet, "no progress line"};
  cli_opt dist_opts[] = {DIST_TRAIN_OPTS(replicas, gather)};
  opts[n++] = dist_opts[0];
  opts[n++] = dist_opts[1];
  opts[n++] = run_opts_mem_limit_opt(&mem_limit_arg);
  opts[n++] = (cli_opt){"device", OPT_STR, &device, "P:D device"};
  cli_parse("lm-train",
            "dblocks lm-train [options]\n"
            "  trains every block of a block-diffusion byte language model (sequentially by default); --steps\n"
            "  counts per block, so B blocks of L/B layers make as many layer updates as one L-layer model.",
            opts, n, argc, argv, NULL, NULL);
  if (log_every < 1 || log_every > TRAIN_RING / 2) db_fail("lm-train: --log-every %d must be in 1..%d", log_every, TRAIN_RING / 2);
  if (ckpt_every < 0) db_fail("lm-train: --ckpt-every %d must not be negative", ckpt_every);
  if (block < -1) db_fail("lm-train: --block %d must not be negative", block);
  if (!(heldout_fraction > 0 && heldout_fraction < 1)) db_fail("lm-train: --heldout-fraction %g must be in (0, 1)", heldout_fraction);
  if (heldout && !text) db_fail("lm-train: --heldout needs --text");
  train_opts o = {0};
  run_config_defaults_task(&o.rc, TASK_LM);
  char manifest[1024];
  snprintf(manifest, sizeof manifest, "%s/manifest.json", out);
  struct stat st;
  if ((resume || block >= 0) && stat(manifest, &st) == 0) {
    manifest_read(out, &o.rc); /* continue its configuration */
    if (o.rc.task != TASK_LM)
      db_fail("lm-train: %s is a%s %s run (use dblocks train%s)", manifest, o.rc.task == TASK_IMAGE ? "n" : "",
              task_name(o.rc.task), o.rc.task == TASK_CLASSIFY ? " --task classify" : "");
  }
  run_opts_apply(&r, &o.rc, "lm-train");
  text_corpus corpus;
  if (text) text_corpus_file(&corpus, text, heldout, heldout_fraction);
  else text_corpus_kjv(&corpus);
  snprintf(o.rc.text, sizeof o.rc.text, "%s", corpus.source);
  o.rc.curve.n = 0; /* recomputed from the corpus: a resumed run must give the same */
  lm_prepare_config(&o.rc, &corpus);
  o.only_block = block;
  o.resume = resume;
  o.ckpt_every = ckpt_every;
  o.log_every = log_every;
  char local_out[1100], devbuf[32];
  dist_train_setup(&o, "lm-train", out, replicas, gather, quiet, local_out, sizeof local_out);
  device = dist_device(device, devbuf, sizeof devbuf);
  size_t mem_limit = run_opts_mem_limit_parse(mem_limit_arg, "lm-train");
  db_ctx *ctx = db_init(device);
  if (mem_limit) db_set_mem_limit(mem_limit);
  const run_config *rc = &o.rc;
  if (dist_rank() > 0) { /* rank 0 speaks for the job */
    double t0 = db_now();
    train_task *task = lm_task_create(ctx, rc, &corpus);
    train_result res = train_run(ctx, &o, task);
    lm_task_destroy(task);
    dist_join(o.comm, &res, rc, out, local_out, gather, db_now() - t0);
    text_corpus_free(&corpus);
    db_shutdown(ctx);
    return 0;
  }
  printf("dblocks lm-train on %s\n", ctx->dev.name);
  if (dist_active())
    printf("  %d processes (mpirun): %d block group(s) of %d replica(s)%s\n", dist_size(), dist_size() / replicas,
           replicas, gather ? "; block files gathered over MPI" : "");
  printf("  corpus %s: %zu training bytes, %zu held out\n", corpus.source, corpus.n_train, corpus.n_heldout);
  printf("  L=%d layers, B=%d block(s) of %d, width %d, %d heads, context %d, d_e %d, %s noise (sigma %.3g..%.3g), "
         "gamma %g\n", rc->layers, rc->blocks, rc->model.depth, rc->model.width, rc->model.heads, rc->lm.context,
         rc->lm.embed_dim, noise_name(rc->lm.noise), rc->bounds[0], rc->bounds[rc->blocks], rc->gamma);
  printf("  batch %d sequences, %d steps per block, AdamW lr %g, seed %llu -> %s\n", rc->batch, rc->steps, rc->lr,
         (unsigned long long)rc->seed, out);
  if (db_mem_limit()) printf("  device memory limited to %.1f MiB (--mem-limit / DBLOCKS_MEM_LIMIT)\n", db_mem_limit() / 1048576.0);
  fflush(stdout);
  double t0 = db_now();
  train_task *task = lm_task_create(ctx, rc, &corpus);
  train_result res = train_run(ctx, &o, task);
  lm_task_destroy(task);
  dist_join(o.comm, &res, rc, out, local_out, gather, db_now() - t0);
  if (o.comm && o.comm->replicas > 1)
    printf("replicas: gradient allreduce %.2f s of %.1f s (%.2f ms/step: download + MPI %.2f ms + upload of %.1f MiB)\n",
           res.comm_seconds, res.seconds, 1e3 * res.comm_seconds / (res.steps_run ? res.steps_run : 1),
           1e3 * res.comm_mpi_seconds / (res.steps_run ? res.steps_run : 1),
           res.comm_bytes / 2 / (res.steps_run ? res.steps_run : 1) / 1048576.0);
  printf("done: %ld steps in %.1f s (%.0f tokens/s), loss %.4f -> %.4f nats/token, peak device memory %.1f MiB\n",
         res.steps_run, res.seconds, res.seconds > 0 ? res.steps_run * (double)rc->batch * rc->lm.context / res.seconds : 0,
         res.first_loss, res.last_loss, res.peak_bytes / 1048576.0);
  printf("checkpoints and manifest in %s/, log in %s/log.jsonl\n", out, out);
  text_corpus_free(&corpus);
  db_shutdown(ctx);
  return 0;
}
