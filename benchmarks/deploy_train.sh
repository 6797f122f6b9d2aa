#!/usr/bin/env bash
# Train the models benchmarks/deploy.py --optimize times, on the bundled digits at the size they are
# timed at (224 px), one thread, fp32, no torch.compile (issue 15's recipe). Usage:
#   bash benchmarks/deploy_train.sh [RUNS_DIR]      # default runs/deploy; each model resumes if interrupted
# Epochs are what one session's time allowed on a 2-core machine; the accuracy each reached is in
# RUNS_DIR/<model>/metrics.json and in benchmarks/results/deploy/optimize.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/deploy}
SEPCONV=${SEPCONV:-.venv/bin/sepconv}
train() {  # name epochs
  local name=$1 epochs=$2 out="$RUNS/$1"
  local resume=()
  [ -f "$out/state.json" ] && resume=(--resume)
  "$SEPCONV" train "$name:num_classes=10" --data digits --img-size 224 --epochs "$epochs" --batch-size 32 \
    --precision fp32 --no-compile --threads "${THREADS:-1}" --quiet --out "$out" "${resume[@]}"
}
train mobilenet_v3_small 8
train mobilenet_v2 4
train mobilenet_v3_large 5
train mobilenet_v1 4
