#!/bin/sh
# Reproduces the CPU rows of docs/results.md: equal layer-update budget
# (--steps per block), Fashion-MNIST, a small DiT sized for a 2-core CPU.
# usage: tools/results_cpu.sh [OUTDIR] [STEPS] [LR]    (after `make`)
set -e
OUT=${1:-runs/results-cpu}
STEPS=${2:-250}
LR=${3:-3e-3}
BIN=${DBLOCKS:-build/dblocks}
COMMON="--width 64 --heads 4 --patch 4 --layers 12 --batch 64 --lr $LR --steps $STEPS --quiet --ckpt-every 0"
mkdir -p "$OUT"
run() { # name, extra train flags
  name=$1; shift
  if [ ! -f "$OUT/$name/block_0.safetensors" ]; then
    t0=$(date +%s)
    $BIN train --out "$OUT/$name" $COMMON "$@" > "$OUT/$name.train.txt"
    echo $(( $(date +%s) - t0 )) > "$OUT/$name.wall"
  fi
  $BIN sample --run "$OUT/$name" --per-class 20 --seed 1 > "$OUT/$name.sample.txt"
}
run b1 --blocks 1
run b3 --blocks 3
run b4 --blocks 4
run b3-uniform --blocks 3 --partition uniform
run b3-gamma0 --blocks 3 --gamma 0
for name in b1 b3 b4 b3-uniform b3-gamma0; do
  $BIN eval --samples "$OUT/$name/samples.npy" --json "$OUT/$name.metrics.json" > "$OUT/$name.eval.txt"
  printf '%-12s wall %6ss  %s  %s\n' "$name" "$(cat "$OUT/$name.wall")" "$(grep -o 'peak device memory [0-9.]* MiB' "$OUT/$name.train.txt")" "$(cat "$OUT/$name.metrics.json")"
done
