#!/usr/bin/env bash
# Issue 7's figures, re-measured and recorded: the digits accuracy target (mobilenet_v2 0.5, 32 px,
# >= 97% within 3 minutes), the loop-throughput ratio against a plain PyTorch loop, and the width
# sweep. Each command is README's; outputs go to benchmarks/results/training/ (wall time and load
# average included). About 15 minutes on 2 cores.
#
#   bash benchmarks/training_targets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=benchmarks/results/training
RUNS=$(mktemp -d)
trap 'rm -rf "$RUNS"' EXIT
mkdir -p "$OUT"
stamp() { echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"; }

{
  stamp
  echo "\$ sepconv train mobilenet_v2 --width-mult 0.5 --data digits --img-size 32 --epochs 25 --batch-size 32 --ema 0.99 --channels-last --threads 1 --quiet --json"
  start=$(date +%s.%N)
  $BIN/sepconv train mobilenet_v2 --width-mult 0.5 --data digits --img-size 32 --epochs 25 --batch-size 32 \
      --ema 0.99 --channels-last --threads 1 --out "$RUNS/mnv2" --quiet --json
  echo "# wall seconds, the whole command (start-up and data included): $(python3 -c "print(round($(date +%s.%N) - $start, 1))")"
  stamp
} 2>&1 | tee "$OUT/train_mnv2_digits.txt"
cp "$RUNS/mnv2/metrics.csv" "$OUT/train_mnv2_digits_metrics.csv"

{
  stamp
  echo "\$ python benchmarks/train_loop.py --threads 1 --epochs 6"
  $BIN/python benchmarks/train_loop.py --threads 1 --epochs 6
  echo "\$ python benchmarks/train_loop.py --threads 2 --epochs 6"
  $BIN/python benchmarks/train_loop.py --threads 2 --epochs 6
  stamp
} 2>&1 | tee "$OUT/train_loop.txt"

{
  stamp
  echo "\$ sepconv sweep mobilenet_v2 --width-mults 0.25,0.5,0.75,1.0 --data digits --img-size 32 --epochs 25 --batch-size 32 --ema 0.99 --channels-last --threads 1"
  COLUMNS=120 $BIN/sepconv sweep mobilenet_v2 --width-mults 0.25,0.5,0.75,1.0 --data digits --img-size 32 --epochs 25 \
      --batch-size 32 --ema 0.99 --channels-last --threads 1 --out "$RUNS/sweep"
  stamp
} 2>&1 | tee "$OUT/width_sweep.txt"
cp "$RUNS/sweep/sweep.json" "$OUT/width_sweep.json"
cp "$RUNS/sweep/sweep.png" "$OUT/width_sweep.png"
