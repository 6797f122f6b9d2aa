#!/usr/bin/env bash
# The training figures, re-measured and recorded: the digits accuracy target (mobilenet_v2 0.5, 32 px,
# >= 97% within 3 minutes), the loop-throughput ratio against a plain PyTorch loop, the width
# sweep, and the automatic speed settings (defaults against fp32 and a plain loop; accuracy over 5
# seeds). Each command is README's; outputs go to benchmarks/results/training/ (wall time and load
# average included). On 2 cores: recipe ~2 min, loop ~3 min, sweep ~8 min, speed ~17 min,
# accuracy ~8 min; all of them (the default) ~40 min.
#
#   bash benchmarks/training_targets.sh [all|recipe|loop|sweep|speed|accuracy]...
set -euo pipefail
WHAT=${*:-all}
want() { [[ " $WHAT " == *" all "* || " $WHAT " == *" $1 "* ]]; }
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=benchmarks/results/training
RUNS=$(mktemp -d)
trap 'rm -rf "$RUNS"' EXIT
mkdir -p "$OUT"
stamp() { echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"; }

if want recipe; then
{
  stamp
  echo "\$ sepconv train mobilenet_v2 --width-mult 0.5 --data digits --img-size 32 --epochs 25 --batch-size 32 --ema 0.99 --threads 1 --quiet --json"
  start=$(date +%s.%N)
  $BIN/sepconv train mobilenet_v2 --width-mult 0.5 --data digits --img-size 32 --epochs 25 --batch-size 32 \
      --ema 0.99 --threads 1 --out "$RUNS/mnv2" --quiet --json
  echo "# wall seconds, the whole command (start-up and data included): $(python3 -c "print(round($(date +%s.%N) - $start, 1))")"
  stamp
} 2>&1 | tee "$OUT/train_mnv2_digits.txt"
cp "$RUNS/mnv2/metrics.csv" "$OUT/train_mnv2_digits_metrics.csv"
fi

if want loop; then
{
  stamp
  echo "\$ python benchmarks/train_loop.py --threads 1 --epochs 6"
  $BIN/python benchmarks/train_loop.py --threads 1 --epochs 6
  echo "\$ python benchmarks/train_loop.py --threads 2 --epochs 6"
  $BIN/python benchmarks/train_loop.py --threads 2 --epochs 6
  stamp
} 2>&1 | tee "$OUT/train_loop.txt"
fi

if want sweep; then
{
  stamp
  echo "\$ sepconv sweep mobilenet_v2 --width-mults 0.25,0.5,0.75,1.0 --data digits --img-size 32 --epochs 25 --batch-size 32 --ema 0.99 --threads 1"
  COLUMNS=120 $BIN/sepconv sweep mobilenet_v2 --width-mults 0.25,0.5,0.75,1.0 --data digits --img-size 32 --epochs 25 \
      --batch-size 32 --ema 0.99 --threads 1 --out "$RUNS/sweep"
  stamp
} 2>&1 | tee "$OUT/width_sweep.txt"
cp "$RUNS/sweep/sweep.json" "$OUT/width_sweep.json"
cp "$RUNS/sweep/sweep.png" "$OUT/width_sweep.png"
fi

# sepconv train's automatic precision / channels_last / torch.compile against --precision fp32
# --no-compile --no-channels-last and a plain PyTorch loop (whole commands, interleaved rounds);
# each writes its .json and .txt into $OUT itself.
if want speed; then
  $BIN/python benchmarks/train_speed.py --rounds 2 --out "$OUT"
fi
if want accuracy; then
  $BIN/python benchmarks/train_speed.py --accuracy --seeds 5 --jobs 2 --out "$OUT"
fi
