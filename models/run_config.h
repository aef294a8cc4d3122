/* The configuration of a DiffusionBlocks run (what its manifest records), and
 * the ONE table of run options that drives everything about it: the defaults,
 * the CLI flags of train / bench train, the manifest writer and reader, range
 * checks, and the check that a resumed run is the same run.
 *
 * To add an option: add a member to run_config and a line to RUN_FIELDS. */
#ifndef DB_RUN_CONFIG_H
#define DB_RUN_CONFIG_H
#include "dit.h"
#include "edm.h"
#include "lm_noise.h"
#include <stddef.h>

#define DB_MAX_BLOCKS 64
enum { SCHEDULE_SEQUENTIAL = 0, SCHEDULE_RANDOM = 1 };
/* What a run trains (the manifest's "task"; a manifest without one is an image run). */
enum { TASK_IMAGE = 0, TASK_LM = 1, TASK_CLASSIFY = 2 };
/* The learning rate over a block's steps: constant, or linear warm-up over the
 * first LR_WARMUP_SHARE of the steps then cosine decay to 0 (the classifier). */
enum { LR_CONSTANT = 0, LR_COSINE = 1 };
/* How the classifier's blocks draw σ inside their (overlapped) training range:
 * EDM's log-normal truncated to it, or uniform in ln σ (docs/classify.md: the
 * log-normal almost never reaches σ_max, where block 0 runs at inference). */
enum { SIGMA_LAW_LOGNORMAL = 0, SIGMA_LAW_LOGUNIFORM = 1 };
#define LR_WARMUP_SHARE 0.05
/* The language model's noise law (docs/lm_data.md): equi-difficulty (σ drawn so
 * that the posterior entropy h(σ) is uniform, blocks cut h's rise into equal
 * shares) or EDM's log-normal with the partition of --partition. */
enum { LM_NOISE_EQUIDIFF = 0, LM_NOISE_LOGNORMAL = 1 };
/* The share of h's rise the equi-difficulty blocks cover, [LM_FRAC_LO, LM_FRAC_HI]:
 * σ_min and σ_max are where h is 1 % and 99 % of the unigram entropy. */
#define LM_FRAC_LO 0.01
#define LM_FRAC_HI 0.99

typedef struct {
  int task;                   /* TASK_IMAGE, TASK_LM or TASK_CLASSIFY: which fields below apply (RUN_FIELDS' first column) */
  dit_config model;           /* one block's denoiser; model.depth = layers / blocks */
  int layers, blocks;         /* L and B */
  edm_config edm;
  edm_partition_kind partition;
  double gamma;               /* overlap of the training ranges */
  double bounds[DB_MAX_BLOCKS + 1]; /* ascending partition bounds (derived) */
  /* training: part of the configuration, so a resumed run is the same run */
  int batch;
  double lr, weight_decay, clip, label_dropout;
  uint64_t seed;
  int schedule;               /* SCHEDULE_SEQUENTIAL or SCHEDULE_RANDOM */
  int steps;                  /* optimizer steps per block (equal layer-update budget: same for every B) */
  /* language model (TASK_LM) */
  struct { int context, embed_dim, noise; } lm;
  /* classifier (TASK_CLASSIFY) */
  struct { int window, lr_schedule, sigma_law; double label_scale; } cls;
  char text[512];             /* the corpus: "kjv" or the file path(s) */
  lm_entropy_curve curve;     /* h(σ) of the corpus (equi-difficulty): in the manifest */
} run_config;

/* X(tasks, type, member, manifest section, manifest key, CLI flag or NULL, default, lo, hi, help)
 * tasks: the tasks the field belongs to (IMG image generation, LM, CLS the
 * classifier, VIS both image tasks, ALL: written, read and offered as a flag only for those).
 * type: INT (int), U64 (uint64_t), NUM (double, finite), PARTITION / SCHEDULE / NOISE / LRSCHED / SIGMALAW (enums by name).
 * lo..hi: the accepted range, inclusive, checked for flags and manifests alike.
 * A field without a flag is fixed by the data (image size, classes) or by the method (EDM). */
#define RUN_FIELDS(X)                                                                                                \
  X(VIS, INT, model.in_ch, "model", "in_ch", NULL, 1, 1, 64, "image channels")                                            \
  X(VIS, INT, model.img_h, "model", "img_h", NULL, 28, 1, 4096, "image height")                                          \
  X(VIS, INT, model.img_w, "model", "img_w", NULL, 28, 1, 4096, "image width")                                           \
  X(VIS, INT, model.patch, "model", "patch", "patch", 2, 1, 4096, "patch size p (default 2: 196 tokens on 28x28)")        \
  X(ALL, INT, model.width, "model", "width", "width", 384, 4, 65536, "model width C (default 384)")                        \
  X(ALL, INT, model.heads, "model", "heads", "heads", 6, 1, 1024, "attention heads (default 6)")                          \
  X(ALL, INT, layers, "model", "layers", "layers", 12, 1, 4096, "L, transformer layers in total (default 12; each block gets L/B)") \
  X(ALL, INT, blocks, "model", "blocks", "blocks", 3, 1, DB_MAX_BLOCKS,                                                     \
    "B, number of blocks (1 = end-to-end backprop baseline; default 3)")                                           \
  X(VIS, INT, model.n_classes, "model", "n_classes", NULL, 10, 1, 1000000, "classes")                                    \
  X(ALL, INT, model.freq_dim, "model", "freq_dim", NULL, 256, 2, 65536, "noise embedding frequencies")                   \
  X(ALL, NUM, edm.p_mean, "edm", "p_mean", NULL, -1.2, -20, 20, "P_mean")                                               \
  X(ALL, NUM, edm.p_std, "edm", "p_std", NULL, 1.2, 1e-6, 20, "P_std")                                                  \
  X(ALL, NUM, edm.sigma_min, "edm", "sigma_min", NULL, 0.002, 1e-12, 1e12, "sigma_min")                                 \
  X(ALL, NUM, edm.sigma_max, "edm", "sigma_max", NULL, 80, 1e-12, 1e12, "sigma_max")                                    \
  X(ALL, NUM, edm.sigma_data, "edm", "sigma_data", NULL, 0.5, 1e-12, 1e12, "sigma_data")                                \
  X(ALL, PARTITION, partition, "partition", "kind", "partition", 0, 0, 1, "equiprob | uniform noise partition (default equiprob)") \
  X(ALL, NUM, gamma, "partition", "gamma", "gamma", 0.1, 0, 10, "overlap of the blocks' training ranges (default 0.1)")  \
  X(ALL, INT, batch, "training", "batch", "batch", 256, 1, 1 << 20, "batch size (default 256)")                          \
  X(ALL, NUM, lr, "training", "lr", "lr", 2e-4, 1e-12, 10, "AdamW learning rate (default 2e-4)")                          \
  X(ALL, NUM, weight_decay, "training", "weight_decay", "weight-decay", 0, 0, 10, "AdamW decoupled weight decay (default 0)") \
  X(ALL, NUM, clip, "training", "clip", "clip", 1, 0, 1e12, "global gradient-norm clip, 0 = off (default 1)")            \
  X(IMG, NUM, label_dropout, "training", "label_dropout", "label-dropout", 0.1, 0, 1,                                     \
    "probability of the no-class label (default 0.1)")                                                              \
  X(ALL, U64, seed, "training", "seed", "seed", 0, 0, 9007199254740991.0, "seed of every random choice (default 0)")     \
  X(ALL, SCHEDULE, schedule, "training", "schedule", "schedule", 0, 0, 1, "sequential | random block order (default sequential)") \
  X(ALL, INT, steps, "training", "steps_per_block", "steps", 1000, 0, 1 << 30, "optimizer steps per block (default 1000)") \
  X(LM, INT, lm.context, "lm", "context", "context", 256, 2, 1 << 20, "T, tokens (bytes) per training sequence (default 256)") \
  X(LM, INT, lm.embed_dim, "lm", "embed_dim", "embed-dim", 64, 1, 65536, "d_e, width of the fixed diffusion embedding (default 64)") \
  X(LM, NOISE, lm.noise, "lm", "noise", "noise", 0, 0, 1, "equidiff | lognormal noise law (default equidiff)") \
  X(CLS, INT, cls.window, "classify", "window", "window", 15, 0, 64,                                                     \
    "pixels per token side: the window centred on each patch (0 = the patch alone; default 15)")                     \
  X(CLS, NUM, cls.label_scale, "classify", "label_scale", "label-scale", 0, 0, 1e6,                                    \
    "norm of each row of the fixed class table, 0 = sigma_data*sqrt(width): coordinates of RMS sigma_data (default 0)") \
  X(CLS, SIGMALAW, cls.sigma_law, "classify", "sigma_law", "sigma-law", 1, 0, 1,                                        \
    "lognormal | loguniform: how a block draws sigma inside its training range (default loguniform)")              \
  X(CLS, LRSCHED, cls.lr_schedule, "training", "lr_schedule", "lr-schedule", 1, 0, 1,                                     \
    "constant | cosine (5 % warm-up, then cosine to 0 over --steps; default cosine)")

typedef enum { RF_INT, RF_U64, RF_NUM, RF_PARTITION, RF_SCHEDULE, RF_NOISE, RF_LRSCHED, RF_SIGMALAW } run_field_type;
enum { RF_IMG = 1, RF_LM = 2, RF_CLS = 4, RF_VIS = RF_IMG | RF_CLS, RF_ALL = 7 };
typedef struct {
  int tasks;                  /* a set of RF_IMG, RF_LM, RF_CLS */
  run_field_type type;
  size_t offset;              /* of the member in run_config */
  const char *member;         /* "model.width": for messages */
  const char *section, *key;  /* where the manifest keeps it */
  const char *flag;           /* CLI option name without "--", or NULL */
  double dflt, lo, hi;
  const char *help;
} run_field;

extern const run_field run_fields[];
extern const int run_field_count;

/* The value of field f of rc as a double (enums as their index), and back. */
double run_field_get(const run_config *rc, const run_field *f);
void run_field_set(run_config *rc, const run_field *f, double v);
/* The enum's names ("equiprob", "uniform"), or NULL for other types. */
const char *const *run_field_names(const run_field *f);
/* How messages name a field: "--lr", or "image height" for one without a flag. */
void run_field_label(const run_field *f, char *out, size_t n);
/* Parses text as field f's type and range (enum names, finite numbers,
 * integers); fails naming `where` (e.g. "--lr", "manifest runs/x/manifest.json"). */
double run_field_parse(const run_field *f, const char *text, const char *where);
/* Fails naming the field and `where` unless v is of the field's type and in range. */
void run_field_check(const run_field *f, double v, const char *where);

/* Defaults from the table: Fashion-MNIST 1x28x28, 10 classes, patch 2, width
 * 384, 6 heads, L = 12, B = 3, equi-probability, γ = 0.1, batch 256, AdamW
 * 2e-4, wd 0, clip 1, label dropout 0.1, sequential, 1000 steps per block. */
void run_config_defaults(run_config *rc);
/* The defaults of a task: run_config_defaults, then for TASK_LM the language
 * model's (width 256, 4 heads, L = 8, B = 4, batch 32, lr 3e-4, clip 1,
 * log-normal centre P_mean = +1.0: the text's noise, not the images'); for
 * TASK_CLASSIFY the classifier's (patch 7 with 15-pixel windows, width 64, 4
 * heads, L = 12, B = 3, batch 128, lr 1e-3, weight decay 0.05, cosine,
 * σ uniform in ln σ, class table rows of norm σ_data·√width). */
void run_config_defaults_task(run_config *rc, int task);
/* 1 if field f belongs to rc's task. */
int run_field_applies(const run_config *rc, const run_field *f);
const char *task_name(int task);
const char *noise_name(int noise);
const char *lr_schedule_name(int s);
const char *sigma_law_name(int s);
/* The learning rate of step `step` (0-based) of a block: rc->lr scaled by the schedule. */
double run_lr_at(const run_config *rc, int step);
/* Validates every field's range and the relations between them (L a multiple
 * of B, width a multiple of heads, ...), and derives model.depth and the
 * partition bounds; clear errors. */
void run_config_finish(run_config *rc);
const char *partition_name(edm_partition_kind k);
const char *schedule_name(int s);
#endif
