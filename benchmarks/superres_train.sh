#!/usr/bin/env bash
# Train every super-resolution model briefly on the bundled photos at x2 (one recipe for all), into runs/sr/:
# EPOCHS epochs of ~739 random 48x48 patches (batch 16: 46 steps an epoch), L1, AdamW lr 1e-3 (cosine, 1 warm-up
# epoch), no weight decay, fp32, one thread. Plus the ablation ssnet_m without its bicubic global residual.
set -euo pipefail
SEPCONV=${SEPCONV:-sepconv}
EPOCHS=${EPOCHS:-20}
for entry in ssnet_m ssnet fsrcnn espcn srcnn "ssnet_m_nores=ssnet_m:global_residual=false"; do
  dir=${entry%%=*}; spec=${entry#*=}
  echo "== $spec  load $(cut -d' ' -f1-3 /proc/loadavg)  $(date +%T)" >&2
  $SEPCONV train "$spec" --data photos --scale 2 --epochs "$EPOCHS" --batch-size 16 --img-size 48 \
      --precision fp32 --no-channels-last --no-compile --threads 1 --seed 0 --quiet --json --out "runs/sr/$dir" \
      > "runs/sr-$dir.json"
done
echo "done $(date +%T)  load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
