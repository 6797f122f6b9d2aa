#!/usr/bin/env bash
# Train the models benchmarks/deploy.py --optimize times, on the bundled digits at the size they are
# timed at (224 px; Xception 299 px), no torch.compile, fp32 unless PRECISION says (issue 15). Usage:
#   bash benchmarks/deploy_train.sh [RUNS_DIR] [MODEL...]  # default runs/deploy, every model; each resumes
#   THREADS=2 bash benchmarks/deploy_train.sh runs/deploy xception   # one model, two threads (default 1)
#   PRECISION=bf16 THREADS=2 bash benchmarks/deploy_train.sh runs/deploy # bf16 autocast (fp32 weights; default fp32)
# Epochs are what one session's time allowed on a 2-core machine; the accuracy each reached is in
# RUNS_DIR/<model>/metrics.json, and for the recorded runs in benchmarks/results/deploy/ (README says which).
# Xception: about 22 minutes an epoch at 299 px in fp32 on two threads of an AVX2 CPU (41 on one);
# with bf16 autocast on a CPU with AMX, about 6. The recorded runs are named in README.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/deploy}
SEPCONV=${SEPCONV:-.venv/bin/sepconv}
shift || true
ONLY=("$@")
train() {  # name epochs [img_size]
  local name=$1 epochs=$2 size=${3:-224} out="$RUNS/$1"
  if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " == *" $name "* ]]; then return 0; fi
  local resume=()
  [ -f "$out/state.json" ] && resume=(--resume)
  "$SEPCONV" train "$name:num_classes=10" --data digits --img-size "$size" --epochs "$epochs" --batch-size 32 \
    --precision "${PRECISION:-fp32}" --no-compile --threads "${THREADS:-1}" --quiet --out "$out" "${resume[@]}"
}
train mobilenet_v3_small 8
train mobilenet_v2 4
train mobilenet_v3_large 5
train mobilenet_v1 4
train xception 4 299
