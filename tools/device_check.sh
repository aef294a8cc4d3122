#!/bin/bash
# The GPU check, run on a lent device machine (../shared/device/README.md):
#     . .gpu/env.sh && bash tools/device_check.sh OUT [test|bench|suites|lm|classify]...
# .gpu/ must also hold the runtime and -dev packages of libjansson, libpng,
# zlib and dataset-fashion-mnist (apt-get download them into .gpu/ beside the
# OpenCL ones): that machine reaches no package registry. Each step is capped
# by `timeout`, so one hang cannot eat the lease; logs land in OUT.
set -u
out=${1:?usage: device_check.sh OUT [test|bench|suites|lm|classify]...}; shift
steps=${*:-test bench}
mkdir -p "$out" /usr/share/datasets
ln -sfn /tmp/ocl/usr/share/datasets/fashion-mnist /usr/share/datasets/fashion-mnist
clinfo -l > "$out/clinfo.txt" 2>&1
mkdir -p build && touch build/.deps-ok   # packages come from .gpu, not apt
t0=$(date +%s)
make -j16 > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
build/dblocks devices
export DBLOCKS_CACHE_DIR=$PWD/build/kernel-cache POCL_CACHE_DIR=$PWD/build/pocl-cache
for s in $steps; do
  t0=$(date +%s)
  case $s in
    test)  # the whole suite on the GPU (the default device), as make test runs it
      timeout 240 make test > "$out/test.log" 2>&1; echo "test: rc $? in $(( $(date +%s) - t0 )) s"
      grep -E "FAIL|passed, " "$out/test.log" | tail -30 ;;
    bench) # first-use tuning, then the op and training benchmarks at the GPU shapes
      timeout 90 build/dblocks tune --seconds 0.05 > "$out/tune.log" 2>&1; echo "tune: rc $?"
      tail -15 "$out/tune.log"
      timeout 100 build/dblocks bench ops --seconds 0.1 --json "$out/ops.json" > "$out/ops.txt" 2>&1
      echo "bench ops: rc $?"; cat "$out/ops.txt"
      timeout 120 build/dblocks bench train --seconds 0.3 --json "$out/train.json" > "$out/train.txt" 2>&1
      echo "bench train: rc $?"; cat "$out/train.txt" ;;
    suites) # only the suites named in SUITES (default: the language model's), one log
      for t in ${SUITES:-rope swiglu glue_ops attention rmsnorm lm run_config}; do
        DBLOCKS_TUNE=off timeout ${SUITE_TIMEOUT:-120} build/dblocks_tests "$t" >> "$out/suites.log" 2>&1
        echo "suite $t: rc $?, $(tail -1 "$out/suites.log")"
      done
      grep -E "FAIL" "$out/suites.log" | head -20 ;;
    lm)    # the language model at the paper's shape: training step B=1 vs one block, generation tokens/s
      timeout 300 build/dblocks bench lm --json "$out/lm.json" > "$out/lm.txt" 2>&1
      echo "bench lm: rc $?"; cat "$out/lm.txt" ;;
    classify) # issue 10: its suites on the GPU, then B = 3 and B = 1 at the PyTorch reference's shape
      # (ViT d = 192, 6 heads, patch 4, 12 layers, batch 128; CLS_STEPS per block, default 6 epochs)
      for t in window_patches classify; do
        DBLOCKS_TUNE=off timeout 120 build/dblocks_tests "=$t" >> "$out/classify_suites.log" 2>&1
        echo "suite $t: rc $?, $(tail -1 "$out/classify_suites.log")"
      done
      grep -E "FAIL" "$out/classify_suites.log" | head -20
      for B in ${CLS_BLOCKS:-3 1}; do
        DBLOCKS_TUNE=off timeout ${CLS_TIMEOUT:-220} build/dblocks train --task classify --width 192 --heads 6 --patch 4 \
          --window 0 --layers 12 --blocks $B --steps ${CLS_STEPS:-2814} --log-every 30 --quiet --out runs/gpu-cls-b$B \
          > "$out/cls-b$B.txt" 2>&1
        echo "classify B=$B: rc $?"; tail -4 "$out/cls-b$B.txt"
      done ;;
  esac
  echo "$s: $(( $(date +%s) - t0 )) s"
done
