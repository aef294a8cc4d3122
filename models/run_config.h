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
#include <stddef.h>

#define DB_MAX_BLOCKS 64
enum { SCHEDULE_SEQUENTIAL = 0, SCHEDULE_RANDOM = 1 };

typedef struct {
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
} run_config;

/* X(type, member, manifest section, manifest key, CLI flag or NULL, default, lo, hi, help)
 * type: INT (int), U64 (uint64_t), NUM (double, finite), PARTITION / SCHEDULE (enums by name).
 * lo..hi: the accepted range, inclusive, checked for flags and manifests alike.
 * A field without a flag is fixed by the data (image size, classes) or by the method (EDM). */
#define RUN_FIELDS(X)                                                                                                \
  X(INT, model.in_ch, "model", "in_ch", NULL, 1, 1, 64, "image channels")                                            \
  X(INT, model.img_h, "model", "img_h", NULL, 28, 1, 4096, "image height")                                          \
  X(INT, model.img_w, "model", "img_w", NULL, 28, 1, 4096, "image width")                                           \
  X(INT, model.patch, "model", "patch", "patch", 2, 1, 4096, "patch size p (default 2: 196 tokens on 28x28)")        \
  X(INT, model.width, "model", "width", "width", 384, 4, 65536, "model width C (default 384)")                        \
  X(INT, model.heads, "model", "heads", "heads", 6, 1, 1024, "attention heads (default 6)")                          \
  X(INT, layers, "model", "layers", "layers", 12, 1, 4096, "L, transformer layers in total (default 12; each block gets L/B)") \
  X(INT, blocks, "model", "blocks", "blocks", 3, 1, DB_MAX_BLOCKS,                                                     \
    "B, number of blocks (1 = end-to-end backprop baseline; default 3)")                                           \
  X(INT, model.n_classes, "model", "n_classes", NULL, 10, 1, 1000000, "classes")                                    \
  X(INT, model.freq_dim, "model", "freq_dim", NULL, 256, 2, 65536, "noise embedding frequencies")                   \
  X(NUM, edm.p_mean, "edm", "p_mean", NULL, -1.2, -20, 20, "P_mean")                                               \
  X(NUM, edm.p_std, "edm", "p_std", NULL, 1.2, 1e-6, 20, "P_std")                                                  \
  X(NUM, edm.sigma_min, "edm", "sigma_min", NULL, 0.002, 1e-12, 1e12, "sigma_min")                                 \
  X(NUM, edm.sigma_max, "edm", "sigma_max", NULL, 80, 1e-12, 1e12, "sigma_max")                                    \
  X(NUM, edm.sigma_data, "edm", "sigma_data", NULL, 0.5, 1e-12, 1e12, "sigma_data")                                \
  X(PARTITION, partition, "partition", "kind", "partition", 0, 0, 1, "equiprob | uniform noise partition (default equiprob)") \
  X(NUM, gamma, "partition", "gamma", "gamma", 0.1, 0, 10, "overlap of the blocks' training ranges (default 0.1)")  \
  X(INT, batch, "training", "batch", "batch", 256, 1, 1 << 20, "batch size (default 256)")                          \
  X(NUM, lr, "training", "lr", "lr", 2e-4, 1e-12, 10, "AdamW learning rate (default 2e-4)")                          \
  X(NUM, weight_decay, "training", "weight_decay", "weight-decay", 0, 0, 10, "AdamW decoupled weight decay (default 0)") \
  X(NUM, clip, "training", "clip", "clip", 1, 0, 1e12, "global gradient-norm clip, 0 = off (default 1)")            \
  X(NUM, label_dropout, "training", "label_dropout", "label-dropout", 0.1, 0, 1,                                     \
    "probability of the no-class label (default 0.1)")                                                              \
  X(U64, seed, "training", "seed", "seed", 0, 0, 9007199254740991.0, "seed of every random choice (default 0)")     \
  X(SCHEDULE, schedule, "training", "schedule", "schedule", 0, 0, 1, "sequential | random block order (default sequential)") \
  X(INT, steps, "training", "steps_per_block", "steps", 1000, 0, 1 << 30, "optimizer steps per block (default 1000)")

typedef enum { RF_INT, RF_U64, RF_NUM, RF_PARTITION, RF_SCHEDULE } run_field_type;
typedef struct {
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
/* Validates every field's range and the relations between them (L a multiple
 * of B, width a multiple of heads, ...), and derives model.depth and the
 * partition bounds; clear errors. */
void run_config_finish(run_config *rc);
const char *partition_name(edm_partition_kind k);
const char *schedule_name(int s);
#endif
