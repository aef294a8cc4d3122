/* Dataset and image file I/O: the real Fashion-MNIST (a declared dependency:
 * absent means FAIL, not skip), synthetic IDX files (gzip and plain) and their
 * error messages, .npy round trips and header bytes, PNG grids read back. */
#include "harness.h"
#include "../data/idx.h"
#include "../data/image_io.h"
#include <png.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static const char *tmpdir; /* th_tmpdir_make */


/* ---------------------------------------------------------------- real data */
static void check_real_split(const char *dir, const char *split, int want_n) {
  char name[200];
  idx_dataset d = idx_load(dir, split);
  snprintf(name, sizeof name, "data: Fashion-MNIST %s: %d images of 28x28, 10 classes", split, want_n);
  th_check(d.n == want_n && d.rows == 28 && d.cols == 28 && d.n_classes == 10, name, "n %d, %dx%d, %d classes",
           d.n, d.rows, d.cols, d.n_classes);
  int count[256] = {0}, even = 1;
  for (int i = 0; i < d.n; i++) count[d.labels[i]]++;
  for (int c = 0; c < 10; c++) even &= count[c] == want_n / 10;
  snprintf(name, sizeof name, "data: Fashion-MNIST %s: labels 0..9, %d of each", split, want_n / 10);
  th_check(even, name, "counts %d %d %d %d %d %d %d %d %d %d", count[0], count[1], count[2], count[3], count[4],
           count[5], count[6], count[7], count[8], count[9]);
  float lo = 1e30f, hi = -1e30f;
  int bad = 0;
  size_t total = (size_t)d.n * d.rows * d.cols;
  for (size_t i = 0; i < total; i++) {
    float v = d.images[i];
    if (!(v >= -1.0f && v <= 1.0f)) bad++;
    /* every value is exactly b/127.5 - 1 for a byte b */
    float b = (v + 1.0f) * 127.5f;
    if (fabsf(b - roundf(b)) > 1e-3f) bad++;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  snprintf(name, sizeof name, "data: Fashion-MNIST %s: pixels span exactly [-1, 1]", split);
  th_check(!bad && lo == -1.0f && hi == 1.0f, name, "min %.9g max %.9g, %d values off the byte grid", lo, hi, bad);
  idx_free(&d);
}

/* ---------------------------------------------------------------- synthetic IDX */
static void put_be32(unsigned char *b, uint32_t v) {
  b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v;
}

/* An IDX file: header (magic, dims) then `len` data bytes, gzip or plain. */
static void write_idx(const char *path, int gz, uint32_t magic, int ndims, const uint32_t *dims,
                      const unsigned char *data, size_t len) {
  unsigned char h[16];
  put_be32(h, magic);
  for (int i = 0; i < ndims; i++) put_be32(h + 4 + 4 * i, dims[i]);
  size_t hl = 4 + 4 * (size_t)ndims;
  if (gz) {
    gzFile f = gzopen(path, "wb");
    if (!f) { perror(path); return; }
    gzwrite(f, h, (unsigned)hl);
    if (len) gzwrite(f, data, (unsigned)len);
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return; }
    fwrite(h, 1, hl, f);
    if (len) fwrite(data, 1, len, f);
    fclose(f);
  }
}

enum { SN = 7, SR = 5, SC = 3 };
static unsigned char s_pix[SN * SR * SC], s_lab[SN];

/* A synthetic split in DIR: images (n, rows, cols) and n_lab labels; images_len
 * / labels_len bytes of data actually written (to make truncated files). */
static void make_split(const char *dir, const char *prefix, int gz, uint32_t n_img, uint32_t n_lab,
                       size_t images_len, size_t labels_len) {
  char p[600];
  uint32_t d3[3] = {n_img, SR, SC};
  snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
  write_idx(p, gz, 0x803, 3, d3, s_pix, images_len);
  snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
  write_idx(p, gz, 0x801, 1, &n_lab, s_lab, labels_len);
}

static int matches_synthetic(idx_dataset d, int invert) {
  if (d.n != SN || d.rows != SR || d.cols != SC || d.n_classes != 10) return 0;
  for (int i = 0; i < SN * SR * SC; i++) {
    unsigned b = invert ? 255 - s_pix[i] : s_pix[i];
    if (d.images[i] != (float)b / 127.5f - 1.0f) return 0;
  }
  for (int i = 0; i < SN; i++)
    if (d.labels[i] != (invert ? 9 - s_lab[i] : s_lab[i])) return 0;
  return 1;
}

static void test_idx_synthetic(void) {
  for (int i = 0; i < SN * SR * SC; i++) s_pix[i] = (unsigned char)(i * 37 + 11);
  s_pix[0] = 0; s_pix[1] = 255;
  for (int i = 0; i < SN; i++) s_lab[i] = (unsigned char)((i * 3) % 10);
  s_lab[SN - 1] = 9;

  const char *dirs[] = {"gz", "plain"};
  for (int gz = 1; gz >= 0; gz--) {
    const char *dir = th_tpath(dirs[!gz]);
    mkdir(dir, 0777);
    make_split(dir, "train", gz, SN, SN, sizeof s_pix, sizeof s_lab);
    make_split(dir, "t10k", gz, SN, SN, sizeof s_pix, sizeof s_lab);
    char name[160];
    for (int s = 0; s < 2; s++) {
      idx_dataset d = idx_load(dir, s ? "test" : "train");
      snprintf(name, sizeof name, "data: idx %s %s round trip (values, labels, shape, n_classes)",
               gz ? "gzip" : "plain", s ? "test" : "train");
      th_check(matches_synthetic(d, 0), name, "n %d %dx%d classes %d, or values differ", d.n, d.rows, d.cols,
               d.n_classes);
      idx_free(&d);
    }
  }

  /* both present: the .gz file wins */
  {
    const char *dir = th_tpath("both");
    mkdir(dir, 0777);
    make_split(dir, "train", 1, SN, SN, sizeof s_pix, sizeof s_lab);
    unsigned char pix[sizeof s_pix], lab[sizeof s_lab];
    memcpy(pix, s_pix, sizeof pix); memcpy(lab, s_lab, sizeof lab);
    for (size_t i = 0; i < sizeof s_pix; i++) s_pix[i] = 255 - s_pix[i];
    for (size_t i = 0; i < sizeof s_lab; i++) s_lab[i] = 9 - s_lab[i];
    make_split(dir, "train", 0, SN, SN, sizeof s_pix, sizeof s_lab);
    memcpy(s_pix, pix, sizeof pix); memcpy(s_lab, lab, sizeof lab);
    idx_dataset d = idx_load(dir, "train");
    th_check(matches_synthetic(d, 0), "data: idx prefers the .gz file when both exist", "read the plain file");
    idx_free(&d);
    /* and the plain one alone is read when the .gz disappears */
    char p[600];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir); remove(p);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir); remove(p);
    d = idx_load(dir, "train");
    th_check(matches_synthetic(d, 1), "data: idx falls back to the plain file", "values differ");
    idx_free(&d);
  }

  /* errors, each naming the file */
  for (int gz = 1; gz >= 0; gz--) {
    const char *ext = gz ? ".gz" : "";
    char dir[400], name[200], needle[1200];
    snprintf(dir, sizeof dir, "%s/bad%s", tmpdir, gz ? "gz" : "plain");
    mkdir(dir, 0777);
    const char *kind = gz ? "gzip" : "plain";

    /* wrong magic: labels file written where the images file should be */
    char p[600];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte%s", dir, ext);
    uint32_t one = SN;
    make_split(dir, "train", gz, SN, SN, sizeof s_pix, sizeof s_lab);
    write_idx(p, gz, 0x801, 1, &one, s_lab, sizeof s_lab);
    snprintf(name, sizeof name, "data: idx (%s) wrong magic names the file", kind);
    snprintf(needle, sizeof needle, "train-images-idx3-ubyte%s: bad magic 0x00000801", ext);
    TH_EXPECT_ERROR(name, needle, { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
    /* wrong magic in the labels file */
    make_split(dir, "train", gz, SN, SN, sizeof s_pix, sizeof s_lab);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte%s", dir, ext);
    write_idx(p, gz, 0x12345678, 1, &one, s_lab, sizeof s_lab);
    snprintf(name, sizeof name, "data: idx (%s) wrong labels magic names the file", kind);
    snprintf(needle, sizeof needle, "train-labels-idx1-ubyte%s: bad magic 0x12345678", ext);
    TH_EXPECT_ERROR(name, needle, { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });

    /* truncated images / labels */
    make_split(dir, "train", gz, SN, SN, sizeof s_pix - 10, sizeof s_lab);
    snprintf(name, sizeof name, "data: idx (%s) truncated images file names the file", kind);
    snprintf(needle, sizeof needle, "train-images-idx3-ubyte%s: truncated", ext);
    TH_EXPECT_ERROR(name, needle, { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
    make_split(dir, "train", gz, SN, SN, sizeof s_pix, sizeof s_lab - 1);
    snprintf(name, sizeof name, "data: idx (%s) truncated labels file names the file", kind);
    snprintf(needle, sizeof needle, "train-labels-idx1-ubyte%s: truncated", ext);
    TH_EXPECT_ERROR(name, needle, { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
    /* a header cut short */
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte%s", dir, ext);
    write_idx(p, gz, 0x801, 0, NULL, NULL, 0);
    snprintf(name, sizeof name, "data: idx (%s) truncated header names the file", kind);
    TH_EXPECT_ERROR(name, needle, { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
    /* trailing bytes */
    make_split(dir, "train", gz, SN - 1, SN - 1, sizeof s_pix, SN - 1);
    snprintf(name, sizeof name, "data: idx (%s) data beyond the header's count names the file", kind);
    snprintf(needle, sizeof needle, "train-images-idx3-ubyte%s: unexpected data", ext);
    TH_EXPECT_ERROR(name, needle, { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });

    /* count mismatch names both files */
    make_split(dir, "train", gz, SN, SN - 1, sizeof s_pix, SN - 1);
    snprintf(name, sizeof name, "data: idx (%s) label/image count mismatch names both files", kind);
    snprintf(needle, sizeof needle, "train-images-idx3-ubyte%s has 7 images but %s/train-labels-idx1-ubyte%s has 6",
             ext, dir, ext);
    TH_EXPECT_ERROR(name, needle, { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
    /* zero sizes */
    make_split(dir, "train", gz, 0, 0, 0, 0);
    snprintf(name, sizeof name, "data: idx (%s) zero image count names the file", kind);
    snprintf(needle, sizeof needle, "train-images-idx3-ubyte%s: zero-sized", ext);
    TH_EXPECT_ERROR(name, needle, { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
    make_split(dir, "train", gz, SN, 0, sizeof s_pix, 0);
    snprintf(name, sizeof name, "data: idx (%s) zero label count names the file", kind);
    snprintf(needle, sizeof needle, "train-labels-idx1-ubyte%s: label count is 0", ext);
    TH_EXPECT_ERROR(name, needle, { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
  }

  /* a gzip stream cut off mid-way */
  {
    const char *dir = th_tpath("cut");
    mkdir(dir, 0777);
    unsigned char big[20000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)((i * 2654435761u) >> 13);
    char p[600];
    uint32_t d3[3] = {20, 20, 50}, nl = 20;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(p, 1, 0x803, 3, d3, big, sizeof big);
    struct stat st;
    stat(p, &st);
    (void)!truncate(p, st.st_size / 2);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx(p, 1, 0x801, 1, &nl, s_lab, 0);
    TH_EXPECT_ERROR("data: idx cut-off gzip stream is reported as truncated", "train-images-idx3-ubyte.gz: truncated",
                    { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
  }

  /* missing files and directories */
  {
    const char *dir = th_tpath("empty");
    mkdir(dir, 0777);
    TH_EXPECT_ERROR("data: idx missing images file names it", "empty/train-images-idx3-ubyte.gz not found",
                    { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
    TH_EXPECT_ERROR("data: idx missing dataset hints at the package", "install dataset-fashion-mnist (make deps) or pass --data DIR",
                    { idx_dataset d = idx_load(dir, "test"); idx_free(&d); });
    make_split(dir, "train", 1, SN, SN, sizeof s_pix, sizeof s_lab);
    char p[600];
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir);
    remove(p);
    TH_EXPECT_ERROR("data: idx missing labels file names it", "train-labels-idx1-ubyte.gz not found",
                    { idx_dataset d = idx_load(dir, "train"); idx_free(&d); });
    TH_EXPECT_ERROR("data: idx missing directory names it", "nonexistent/t10k-images-idx3-ubyte.gz",
                    { idx_dataset d = idx_load(th_tpath("nonexistent"), "test"); idx_free(&d); });
    TH_EXPECT_ERROR("data: idx unknown split", "unknown split 'val'",
                    { idx_dataset d = idx_load(dir, "val"); idx_free(&d); });
  }
}

/* A 40-byte IDX file whose header promises 2,560,000 images of 28x28 (8 GB as
 * floats) must fail as truncated without allocating what the header promises:
 * idx_load runs in a child process whose address space may grow by only
 * 256 MiB (RLIMIT_AS), so an up-front allocation of the promised size fails
 * there ("out of memory") instead of being hidden by overcommit. */
static void test_idx_huge_header(void) {
  for (int gz = 1; gz >= 0; gz--) {
    const char *ext = gz ? ".gz" : "";
    char dir[400], p[600], name[200], needle[300];
    snprintf(dir, sizeof dir, "%s/huge%s", tmpdir, gz ? "gz" : "plain");
    mkdir(dir, 0777);
    uint32_t d3[3] = {2560000, 28, 28};
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte%s", dir, ext);
    write_idx(p, gz, 0x803, 3, d3, s_pix, 24);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte%s", dir, ext);
    write_idx(p, gz, 0x801, 1, d3, s_lab, SN);
    snprintf(needle, sizeof needle, "train-images-idx3-ubyte%s: truncated: header promises 2007040000 data bytes, file has 24", ext);
    snprintf(name, sizeof name, "data: idx (%s) header promising 8 GB on a tiny file fails as truncated, within a 256 MiB address-space limit",
             gz ? "gzip" : "plain");
    int fd[2];
    if (pipe(fd)) { th_check(0, name, "pipe failed"); continue; }
    fflush(stdout);
    fflush(stderr);
    double t0 = db_now();
    pid_t pid = fork();
    if (pid == 0) { /* the child: no OpenCL, only idx_load, then _exit */
      close(fd[0]);
      alarm(60);
      char msg[2048] = "";
      long vm_pages = 0;
      FILE *f = fopen("/proc/self/statm", "r");
      if (!f || fscanf(f, "%ld", &vm_pages) != 1) vm_pages = -1;
      if (f) fclose(f);
      int code = 3;
      struct rlimit lim;
      if (vm_pages > 0) {
        lim.rlim_cur = lim.rlim_max = (rlim_t)vm_pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
      }
      if (vm_pages <= 0 || setrlimit(RLIMIT_AS, &lim) != 0) snprintf(msg, sizeof msg, "cannot set RLIMIT_AS");
      else {
        jmp_buf trap;
        db_trap_errors(&trap);
        if (setjmp(trap) == 0) {
          idx_dataset d = idx_load(dir, "train");
          idx_free(&d);
          code = 1;
          snprintf(msg, sizeof msg, "no error");
        } else {
          code = strstr(db_last_error(), needle) ? 0 : 2;
          snprintf(msg, sizeof msg, "%s", db_last_error());
        }
      }
      if (write(fd[1], msg, strlen(msg))) {}
      _exit(code);
    }
    close(fd[1]);
    char msg[2048] = "";
    ssize_t len = pid > 0 ? read(fd[0], msg, sizeof msg - 1) : -1;
    msg[len > 0 ? len : 0] = 0;
    close(fd[0]);
    int st = 0;
    if (pid > 0) waitpid(pid, &st, 0);
    double dt = db_now() - t0;
    th_check(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && dt < 10, name,
             "child %s %d after %.1f s; expected an error containing \"%s\", got: %s",
             WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), dt, needle, msg);
  }
}

/* ---------------------------------------------------------------- npy */
static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) { *len = 0; return NULL; }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = db_malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  b[*len] = 0;
  fclose(f);
  return b;
}

static void put_file(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f) { fwrite(b, 1, n, f); fclose(f); }
}

/* header well formed: magic, v1.0, length, 64-byte alignment, dict text */
static int npy_header_ok(const unsigned char *b, size_t len, const char *dict, size_t data_bytes, char *why,
                         size_t nwhy) {
  if (len < 10 || memcmp(b, "\x93NUMPY\x01\x00", 8)) { snprintf(why, nwhy, "magic/version"); return 0; }
  size_t hl = b[8] | (size_t)b[9] << 8, start = 10 + hl;
  if (start % 64) { snprintf(why, nwhy, "data starts at %zu", start); return 0; }
  if (len != start + data_bytes) { snprintf(why, nwhy, "file %zu bytes, want %zu", len, start + data_bytes); return 0; }
  if (b[start - 1] != '\n') { snprintf(why, nwhy, "no final newline"); return 0; }
  size_t dl = strlen(dict);
  if (hl < dl + 1 || memcmp(b + 10, dict, dl)) { snprintf(why, nwhy, "dict %.*s", (int)hl, (const char *)b + 10); return 0; }
  for (size_t i = 10 + dl; i < start - 1; i++)
    if (b[i] != ' ') { snprintf(why, nwhy, "padding byte %zu is 0x%02x", i, b[i]); return 0; }
  return 1;
}

static void test_npy(void) {
  struct { int ndim; int shape[4]; const char *dict; } cases[] = {
    {2, {3, 5}, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }"},
    {1, {1}, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"},
    {3, {2, 3, 4}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }"},
    {4, {2, 1, 7, 33}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 7, 33), }"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t n = 1;
    for (int i = 0; i < cases[c].ndim; i++) n *= cases[c].shape[i];
    float *x = db_malloc(n * sizeof *x);
    db_rng_normal_host(x, n, 77 + c, 0);
    if (n > 3) { x[1] = -0.0f; x[2] = INFINITY; x[3] = 1e-42f; /* denormal */ }
    const char *p = th_tpath("a.npy");
    npy_write_f32(p, x, cases[c].ndim, cases[c].shape);
    size_t len;
    unsigned char *b = slurp(p, &len);
    char why[300] = "unreadable", name[200];
    snprintf(name, sizeof name, "data: npy header for %s", strstr(cases[c].dict, "'shape'"));
    th_check(b && npy_header_ok(b, len, cases[c].dict, n * 4, why, sizeof why), name, "%s", why);
    int nd = -1, sh[4] = {0};
    float *y = npy_read_f32(p, &nd, sh);
    int same = nd == cases[c].ndim && !memcmp(x, y, n * 4) && b && !memcmp(b + len - n * 4, x, n * 4);
    for (int i = 0; i < 4; i++) same &= sh[i] == (i < nd ? cases[c].shape[i] : 1);
    snprintf(name, sizeof name, "data: npy %d-D f32 write/read is bit-exact", cases[c].ndim);
    th_check(same, name, "ndim %d shape %d %d %d %d", nd, sh[0], sh[1], sh[2], sh[3]);
    free(b); free(x); free(y);
  }

  /* int32 */
  int32_t iv[6] = {0, -1, 2147483647, -2147483647 - 1, 42, 7};
  int ish[2] = {2, 3};
  const char *p = th_tpath("i.npy");
  npy_write_i32(p, iv, 2, ish);
  size_t len;
  unsigned char *b = slurp(p, &len);
  char why[300] = "unreadable";
  th_check(b && npy_header_ok(b, len, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 24, why, sizeof why),
           "data: npy i32 header", "%s", why);
  int nd, sh[4];
  int32_t *ir = npy_read_i32(p, &nd, sh);
  th_check(nd == 2 && sh[0] == 2 && sh[1] == 3 && !memcmp(ir, iv, sizeof iv), "data: npy i32 round trip", "differ");
  free(ir);
  TH_EXPECT_ERROR("data: npy reading i32 as f32 fails naming the file", "i.npy: not a valid .npy file for this reader: dtype '<i4'",
                  { float *q = npy_read_f32(p, &nd, sh); free(q); });

  /* file mode is not mkstemp's 0600 */
  struct stat st;
  stat(p, &st);
  mode_t um = umask(0);
  umask(um);
  th_check((st.st_mode & 0777) == (0666 & ~um), "data: npy file gets the usual permissions (0666 & ~umask)",
           "mode %o, umask %o", (unsigned)(st.st_mode & 0777), (unsigned)um);

  /* corrupted files: each fails naming the file */
  const char *q = th_tpath("bad.npy");
  unsigned char *c = db_malloc(len);
  memcpy(c, b, len); c[1] = 'X'; put_file(q, c, len);
  TH_EXPECT_ERROR("data: npy bad magic", "bad.npy: not a valid .npy file for this reader: bad magic", { free(npy_read_i32(q, &nd, sh)); });
  put_file(q, b, len - 1);
  TH_EXPECT_ERROR("data: npy truncated data", "bad.npy: not a valid .npy file for this reader: truncated", { free(npy_read_i32(q, &nd, sh)); });
  put_file(q, b, 30);
  TH_EXPECT_ERROR("data: npy truncated header", "bad.npy: not a valid .npy file for this reader: truncated header", { free(npy_read_i32(q, &nd, sh)); });
  memcpy(c, b, len); memcpy(strstr((char *)c + 10, "False"), "True ", 5); put_file(q, c, len);
  TH_EXPECT_ERROR("data: npy Fortran order refused", "bad.npy: not a valid .npy file for this reader: Fortran order", { free(npy_read_i32(q, &nd, sh)); });
  memcpy(c, b, len); memcpy(strstr((char *)c + 10, "(2, 3)"), "(2, 4)", 6); put_file(q, c, len);
  TH_EXPECT_ERROR("data: npy shape/size mismatch", "bad.npy: not a valid .npy file for this reader: truncated", { free(npy_read_i32(q, &nd, sh)); });
  memcpy(c, b, len); c[6] = 9; put_file(q, c, len);
  TH_EXPECT_ERROR("data: npy unknown version", "bad.npy: not a valid .npy file for this reader: unsupported format version 9.0", { free(npy_read_i32(q, &nd, sh)); });
  TH_EXPECT_ERROR("data: npy missing file", "missing.npy: cannot open", { free(npy_read_f32(th_tpath("missing.npy"), &nd, sh)); });
  free(c);
  free(b);

  /* hand-written headers from other writers: numpy's own spacing, keys reordered */
  {
    const char *h = "{'shape': (3,), 'fortran_order': False, 'descr': '<f4'}";
    unsigned char buf[128 + 12];
    size_t hl = 118;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)hl; buf[9] = 0;
    memset(buf + 10, ' ', hl);
    memcpy(buf + 10, h, strlen(h));
    buf[10 + hl - 1] = '\n';
    float v[3] = {1.5f, -2.25f, 3.0f};
    memcpy(buf + 128, v, 12);
    put_file(q, buf, sizeof buf);
    float *r = npy_read_f32(q, &nd, sh);
    th_check(nd == 1 && sh[0] == 3 && !memcmp(r, v, 12), "data: npy reader accepts reordered keys", "differ");
    free(r);
  }
  TH_EXPECT_ERROR("data: npy write to a missing directory names the path", "nodir/x.npy",
                  { float z = 0; int s1 = 1; npy_write_f32(th_tpath("nodir/x.npy"), &z, 1, &s1); });
}

/* ---------------------------------------------------------------- png */
static void test_png(void) {
  enum { N = 12, H = 28, W = 28, COLS = 5, PAD = 2, SCALE = 2 };
  const int GW = (COLS * W + (COLS - 1) * PAD) * SCALE, GH = (3 * H + 2 * PAD) * SCALE; /* 296 x 176 */
  float *img = db_malloc(sizeof(float) * N * H * W);
  for (int k = 0; k < N; k++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        int b = (k * 31 + y * 7 + x * 3) % 256;
        img[(k * H + y) * W + x] = -1.0f + 2.0f * (float)b / 255.0f;
      }
  /* clamping: above 1, below -1, NaN */
  img[(3 * H + 0) * W + 0] = 2.5f;
  img[(3 * H + 0) * W + 1] = -7.0f;
  img[(3 * H + 0) * W + 2] = NAN;
  const char *p = th_tpath("grid.png");
  png_write_grid(p, img, N, H, W, COLS, PAD, SCALE);

  size_t len;
  unsigned char *b = slurp(p, &len);
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  int ok = b && len > 33 && !memcmp(b, sig, 8);
  th_check(ok, "data: png file starts with the PNG signature", "bad signature (%zu bytes)", len);
  unsigned iw = 0, ih = 0;
  if (ok) {
    ok = !memcmp(b + 8, "\0\0\0\x0dIHDR", 8);
    iw = (unsigned)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
    ih = (unsigned)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
    ok &= iw == (unsigned)GW && ih == (unsigned)GH && b[24] == 8 && b[25] == 0;
  }
  th_check(ok, "data: png IHDR is 296 x 176, 8-bit grayscale", "IHDR %u x %u depth %d type %d", iw, ih,
           b && len > 25 ? b[24] : -1, b && len > 25 ? b[25] : -1);
  free(b);

  png_image pi;
  memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  unsigned char *px = NULL;
  int read_ok = png_image_begin_read_from_file(&pi, p);
  if (read_ok) {
    pi.format = PNG_FORMAT_GRAY;
    px = db_malloc(PNG_IMAGE_SIZE(pi));
    read_ok = png_image_finish_read(&pi, NULL, px, 0, NULL);
  }
  th_check(read_ok && (int)pi.width == GW && (int)pi.height == GH, "data: png reads back with libpng", "%s",
           pi.message);
  if (read_ok) {
    /* the whole picture against an independent expectation */
    int bad = 0, first = -1;
    for (int y = 0; y < GH; y++)
      for (int x = 0; x < GW; x++) {
        int uy = y / SCALE, ux = x / SCALE, ty = uy / (H + PAD), tx = ux / (W + PAD);
        int iy = uy % (H + PAD), ix = ux % (W + PAD), k = ty * COLS + tx, want;
        if (iy >= H || ix >= W || k >= N) want = PNG_GRID_GAP;
        else if (k == 3 && iy == 0 && ix < 3) want = ix == 0 ? 255 : 0;
        else want = (k * 31 + iy * 7 + ix * 3) % 256;
        if (px[y * GW + x] != want) { bad++; if (first < 0) first = y * GW + x; }
      }
    th_check(!bad, "data: png pixels match the grid layout (values, gaps, empty cells, clamping)",
             "%d pixels differ, first at (%d, %d): %d", bad, first % GW, first / GW, first >= 0 ? px[first] : -1);
    /* a few positions by hand */
    int k7x = (7 % COLS) * (W + PAD) * SCALE, k7y = (7 / COLS) * (H + PAD) * SCALE; /* image 7 at (2, 1) */
    th_check(px[0] == 0 && px[1] == 0 && px[GW] == 0 &&                   /* image 0, pixel (0,0): byte 0 */
             px[W * SCALE] == PNG_GRID_GAP &&                            /* first gap column */
             px[(k7y + 2 * SCALE) * GW + k7x + 5 * SCALE + 1] == (7 * 31 + 2 * 7 + 5 * 3) % 256 &&
             px[(GH - 1) * GW + GW - 1] == PNG_GRID_GAP &&               /* empty cell of the last row */
             px[(3 * (W + PAD) * SCALE)] == 255,                         /* clamped 2.5 */
             "data: png spot checks", "px[0]=%d gap=%d", px[0], px[W * SCALE]);
  }
  free(px);
  png_image_free(&pi);

  /* fewer images than columns: the grid narrows to n */
  png_write_grid(p, img, 2, H, W, 8, 1, 1);
  b = slurp(p, &len);
  iw = b && len > 24 ? ((unsigned)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19]) : 0;
  ih = b && len > 24 ? ((unsigned)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23]) : 0;
  th_check(iw == 57 && ih == 28, "data: png grid of 2 images with cols 8 is 57 x 28", "%u x %u", iw, ih);
  free(b);

  TH_EXPECT_ERROR("data: png write to a missing directory names the path", "nodir/g.png",
                  png_write_grid(th_tpath("nodir/g.png"), img, N, H, W, COLS, PAD, SCALE));
  TH_EXPECT_ERROR("data: png bad arguments name the path", "g.png: bad grid arguments",
                  png_write_grid(th_tpath("g.png"), img, N, H, W, COLS, PAD, 0));
  /* never replace a directory (or a device: rename would swap it for a file) */
  mkdir(th_tpath("adir.png"), 0777);
  TH_EXPECT_ERROR("data: png refuses to replace a directory, naming it", "adir.png: it exists and is not a regular file",
                  png_write_grid(th_tpath("adir.png"), img, N, H, W, COLS, PAD, SCALE));

  /* real write errors mid-file: with a file size limit (and SIGXFSZ ignored)
   * writes fail with EFBIG; libpng's error goes through its setjmp handler */
  {
    enum { BN = 400 };
    float *big = db_malloc(sizeof(float) * BN * H * W);
    db_rng_uniform_host(big, (size_t)BN * H * W, 5, 0, -1, 1); /* noise: compresses badly */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
      TH_EXPECT_ERROR("data: png write error (file size limit) goes through libpng's handler, naming the path",
                      "big.png: libpng: Write Error", png_write_grid(th_tpath("big.png"), big, BN, H, W, 20, 2, 1));
      int shp[3] = {BN, H, W};
      TH_EXPECT_ERROR("data: npy write error (file size limit) names the path", "big.npy: File too large",
                      npy_write_f32(th_tpath("big.npy"), big, 3, shp));
      setrlimit(RLIMIT_FSIZE, &old);
      th_check(access(th_tpath("big.png"), F_OK) != 0 && access(th_tpath("big.npy"), F_OK) != 0,
               "data: failed writes leave no file behind", "big.png or big.npy exists");
    } else {
      th_check(0, "data: setrlimit(RLIMIT_FSIZE)", "failed");
    }
    signal(SIGXFSZ, prev);
    free(big);
  }
  free(img);
}

void tests_data(void) {
  tmpdir = th_tmpdir_make("data");
  if (!tmpdir) return;

  const char *dir = idx_default_dir();
  struct stat st;
  if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
    check_real_split(dir, "train", 60000);
    check_real_split(dir, "test", 10000);
  } else {
    th_check(0, "data: Fashion-MNIST is installed", "%s not found: install the Debian package dataset-fashion-mnist "
             "(`make deps`); it is a declared dependency, so its absence is a failure", dir);
  }
  test_idx_synthetic();
  test_idx_huge_header();
  test_npy();
  test_png();

  /* nothing but our own files, and no leftover temporaries */
  char cmd[600];
  snprintf(cmd, sizeof cmd, "find %s -name '*.tmp.*' | grep -q .", tmpdir);
  th_check(system(cmd) != 0, "data: no temporary files left behind", "found *.tmp.* under %s", tmpdir);
  th_tmpdir_remove();
}
