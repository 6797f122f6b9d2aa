"""How the eager parts add up to the whole model (issue 14, part 3): per model, the layers replayed
alone, the functional ops the parents run, the layers timed in place and the page faults, through
`sepconv.profile.layers.time_layers` and `LayerProfile.addup` (batch 1, 224 px, one thread).

    python benchmarks/profile_addup.py [ROUNDS] [MODEL ...] > benchmarks/results/profile/addup/run.txt

Recorded runs: benchmarks/results/profile/addup/ (run_final_malloc.txt with MALLOC_MMAP_THRESHOLD_=268435456
MALLOC_TRIM_THRESHOLD_=1073741824).
"""
import sys

import torch

from sepconv._util.runtime import cores, load_average, threads_set_to
from sepconv.cost import analyze
from sepconv.models import create_model
from sepconv.profile.layers import time_layers

repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 20
for spec in sys.argv[2:] or ["mobilenet_v2", "mobilenet_v3_large"]:
    torch.manual_seed(0)
    model = create_model(spec).eval()
    x = torch.randn(1, 3, 224, 224)
    names = [row.name for row in analyze(model, x).layers]
    before = load_average()
    with threads_set_to(1):
        p = time_layers(model, x, names, repeats=repeats, warmup=2)
    after = load_average()
    a = p.addup(load=after, cores=cores(), threads=1)
    kinds = {}
    for op in p.functional:
        kinds[op.kind] = kinds.get(op.kind, 0.0) + op.timing.median_ms
    print(f"== {spec} 1x3x224x224, 1 thread, {len(p.model.samples_ms)} rounds, load {before} -> {after} on {cores()} cores")
    print(f"model {p.model.median_ms:.2f} ms | layers {p.layers_ms:.2f} ({p.layers_ms / p.model.median_ms:.0%}) | "
          f"functional {p.functional_ms:.2f} ms in {len(p.functional)} ops {dict((k, round(v, 3)) for k, v in kinds.items())} | "
          f"layers+functional {p.accounted_ms:.2f} ({p.accounted_ms / p.model.median_ms:.0%}) | "
          f"in-model layers {p.in_model_ms:.2f} | instrumented forward {p.instrumented.median_ms:.2f} | "
          f"page faults: model run {p.model_faults}, all replays {p.replay_faults}")
    print(a.text)
