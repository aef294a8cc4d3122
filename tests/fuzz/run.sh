#!/bin/sh
# Runs parser fuzzers for a bounded time each (make fuzz):
#   run.sh FUZZ_BUILD SECONDS TARGET...
# FUZZ_BUILD/fuzz_TARGET on the corpus FUZZ_BUILD/corpus/TARGET (which grows:
# libFuzzer adds every input that finds new coverage), crashing inputs to
# FUZZ_BUILD/crashes/TARGET-*, the whole log to FUZZ_BUILD/logs/TARGET.log.
# Extra libFuzzer flags for every target: FUZZ_FLAGS; for one: FUZZ_FLAGS_TARGET;
# ASAN_OPTIONS for one: FUZZ_ASAN_TARGET (appended to ASAN_OPTIONS).
# Exits non-zero if any fuzzer found something.
set -u
b=$1 secs=$2
shift 2
mkdir -p "$b/crashes" "$b/logs"
failed=""
for t in "$@"; do
  mkdir -p "$b/corpus/$t"
  eval "extra=\${FUZZ_FLAGS_$t:-} asan=\${FUZZ_ASAN_$t:-}"
  log="$b/logs/$t.log"
  printf '%-12s %4s s ... ' "$t" "$secs"
  # shellcheck disable=SC2086
  if ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}$asan" "$b/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$b/crashes/$t-" \
       ${FUZZ_FLAGS:-} $extra "$b/corpus/$t" > "$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "ok: $runs runs, $rate exec/s, $cov, corpus $(ls "$b/corpus/$t" | wc -l) files"
  else
    echo "FOUND SOMETHING (log: $log)"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz: |dblocks: error)|Test unit written|artifact_prefix' "$log" | head -8
    failed="$failed $t"
  fi
done
[ -z "$failed" ] || { echo "fuzzers with findings:$failed (reproduce: $b/fuzz_NAME FILE)"; exit 1; }
