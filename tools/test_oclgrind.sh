#!/bin/sh
# make test-oclgrind: runs the op test suites on Oclgrind's simulated OpenCL
# device, at small shapes (DBLOCKS_TEST_SMALL=1), with its checkers on:
# out-of-bounds accesses (always), data races in local and global memory,
# reads of uninitialized memory, and OpenCL API misuse. Fails on any failing
# check and on ANY report: a line in Oclgrind's log, or an "OpenCL runtime
# error" that Oclgrind's API checks print to the suite's output (not to the
# log; no op suite makes a failing OpenCL call on purpose).
# Usage: tools/test_oclgrind.sh BUILD_DIR SUITE...   (docs/testing.md, "Oclgrind")
# SUITE as dblocks_tests takes it ("=NAME": exactly that suite).
set -u
build=$1; shift
command -v oclgrind >/dev/null 2>&1 || {
  echo "test-oclgrind: oclgrind is not installed (apt-get install oclgrind; tools/deps.sh lists it)" >&2; exit 1; }
status=0 passed=0 failed=0
for suite in "$@"; do
  name=$(echo "$suite" | tr -c 'A-Za-z0-9_\n' '_')
  log=$build/oclgrind-$name.log out=$build/oclgrind-$name.out
  rm -f "$log"
  t0=$(date +%s)
  # The kernel cache is off: Oclgrind builds every program from source (fast).
  DBLOCKS_TEST_SMALL=1 DBLOCKS_CACHE_DIR=off DBLOCKS_BIN="$PWD/$build/dblocks" \
    oclgrind --data-races --uninitialized --check-api --log "$log" "./$build/dblocks_tests" "$suite" >"$out" 2>&1
  rc=$?
  t1=$(date +%s)
  summary=$(tail -n 1 "$out")
  if ! head -n 1 "$out" | grep -q "Oclgrind"; then
    echo "test-oclgrind: $suite did not run on the Oclgrind device:"; head -n 3 "$out"; status=1; continue
  fi
  if [ "$rc" != 0 ]; then
    echo "test-oclgrind: $suite: exit status $rc, $summary"; grep -E "FAIL|error" "$out" | head -n 20; status=1
  fi
  api=$(grep -c "OpenCL runtime error detected" "$out")
  if [ "$api" != 0 ]; then
    echo "test-oclgrind: $suite: Oclgrind's API checks reported $api OpenCL errors (first ones below, all in $out)"
    grep -A 4 "OpenCL runtime error detected" "$out" | head -n 20; status=1
  fi
  if [ -s "$log" ]; then
    echo "test-oclgrind: $suite: Oclgrind reported $(grep -c '^[A-Z]' "$log") problems (first ones below, all in $log)"
    head -n 40 "$log"; status=1
  fi
  reports=no; { [ -s "$log" ] || [ "$api" != 0 ]; } && reports=yes
  echo "test-oclgrind: $suite: $summary, $([ $reports = yes ] && echo reports || echo 'no Oclgrind report'), $((t1 - t0)) s"
  p=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
  f=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
  passed=$((passed + ${p:-0})) failed=$((failed + ${f:-1}))
  [ $reports = yes ] && failed=$((failed + 1)) # a suite with an Oclgrind report counts as a failure
done
echo "$passed passed, $failed failed"
exit $status
