/* libFuzzer harness: the run manifest reader manifest_read(dir, run_config *)
 * (models/manifest.h, included through models/diffusion.h). The input is
 * DIR/manifest.json. A manifest that reads must also survive a round trip:
 * manifest_write of what was read, read back, matches (manifest_check_match). */
#include "fuzz.h"
#include "../../models/diffusion.h"
#include <setjmp.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[4200], dir2[4200];
  fz_write_file(path, sizeof path, "manifest.json", data, size);
  snprintf(dir2, sizeof dir2, "%s/again", fz_tmpdir());
  mkdir(dir2, 0700);
  jmp_buf jb;
  db_trap_errors(&jb);
  if (!setjmp(jb)) {
    run_config rc;
    manifest_read(fz_tmpdir(), &rc);
    db_trap_errors(NULL); /* from here on a failure is a finding: it exits non-zero */
    run_config again;
    manifest_write(dir2, &rc);
    manifest_read(dir2, &again);
    manifest_check_match(&again, &rc, "round trip");
    fz_outcome("manifest_read", 0);
  } else fz_outcome("manifest_read", 1);
  db_trap_errors(NULL);
  return 0;
}
