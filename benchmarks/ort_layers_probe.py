"""Per-layer time on ONNX Runtime against the model's MACs, by kind (the deployed path of ``sepconv profile``).

For each model, one ONNX Runtime session (the ``onnxruntime`` backend's export: BN folded; optimization
level "all"; ``--threads`` intra-op threads, default 1) is profiled over ``--repeats`` runs
(:func:`sepconv.engines.ort_layers.ort_layer_times`), with an unprofiled session on the same export
run interleaved with it. Printed, side by side from the same runs:

- the whole-model time per run: ONNX Runtime's ``model_run`` (median), the wall clock around
  ``session.run`` (profiled and unprofiled: the profiler's own cost), and the kernel times added up;
- the per-layer rows added up (sum of medians: layers, functional nodes, unmapped nodes) and that
  sum over the whole-model time (the target: within 20% on one thread);
- by kind: the share of the MACs (``sepconv.cost.analyze``) against the share of ONNX Runtime's time
  (a fused Conv+BN+activation node counts as its conv's kind).

The 1-minute load average before and after each model is printed: on a shared machine the whole-model
median takes every stall of every node, the per-layer medians do not, so the sum falls short of the
whole when other processes compete for the cores.

    .venv/bin/python benchmarks/ort_layers_probe.py
    .venv/bin/python benchmarks/ort_layers_probe.py --models mobilenet_v2 --repeats 50 --out probe.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import onnxruntime
import torch

from sepconv._util.io import atomic_write_text
from sepconv._util.runtime import load_average
from sepconv.cost import analyze
from sepconv.engines.ort_layers import ort_layer_times
from sepconv.engines.synthetic import lively_weights
from sepconv.models import create_model


def probe(name: str, size: int, threads: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = lively_weights(create_model(name), torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(0)))
    shape = (1, 3, size, size)
    cost = analyze(model, shape)
    load_before = load_average()
    result = ort_layer_times(model, shape, [row.name for row in cost.layers], threads=threads, repeats=repeats,
                             warmup=3, baseline=True)
    load_after = load_average()
    macs = {kind: c.macs_share for kind, c in cost.by_kind().items()}
    times = result.by_kind()
    total = result.rows_ms
    kinds = list(dict.fromkeys([*macs, *times]))
    return {
        "model": name, "input_shape": list(shape), "threads": threads, "repeats": repeats,
        "load_before": load_before, "load_after": load_after,
        "model_run_ms": result.model.median_ms, "wall_ms": result.wall.median_ms,
        "unprofiled_wall_ms": result.unprofiled.median_ms, "kernels_ms": result.nodes.median_ms,
        "rows_ms": total, "rows_over_model_run": total / result.model.median_ms,
        "rows_over_unprofiled": total / result.unprofiled.median_ms,
        "by_kind": {k: {"macs_share": macs.get(k, 0.0), "time_ms": times.get(k, 0.0),
                        "time_share": times.get(k, 0.0) / total} for k in kinds},
        "unmapped_ops": sorted({u.op_type for u in result.unmapped}),
        "result": result.to_dict(),
    }


def show(row: dict) -> None:
    print(f"\n{row['model']} {'x'.join(map(str, row['input_shape']))}, {row['threads']} thread(s), "
          f"{row['repeats']} runs, load {row['load_before']} -> {row['load_after']}")
    print(f"  whole model: model_run {row['model_run_ms']:.2f} ms, wall {row['wall_ms']:.2f} ms, "
          f"unprofiled wall {row['unprofiled_wall_ms']:.2f} ms; kernels added up {row['kernels_ms']:.2f} ms")
    print(f"  per-layer rows added up: {row['rows_ms']:.2f} ms = {row['rows_over_model_run']:.1%} of model_run, "
          f"{row['rows_over_unprofiled']:.1%} of the unprofiled run")
    print(f"  {'kind':<12} {'MACs share':>10} {'ORT ms':>8} {'ORT share':>10}")
    for kind, v in row["by_kind"].items():
        print(f"  {kind:<12} {v['macs_share']:>10.1%} {v['time_ms']:>8.3f} {v['time_share']:>10.1%}")
    print(f"  unmapped op types: {', '.join(row['unmapped_ops']) or '-'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenet_v2,mobilenet_v3_large")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, help="write every figure (and the per-layer rows) as JSON here")
    args = parser.parse_args()
    print(f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}")
    rows = []
    for name in args.models.split(","):
        rows.append(probe(name, args.size, args.threads, args.repeats))
        show(rows[-1])
    if args.out:
        atomic_write_text(args.out, json.dumps({"onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
                                                "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
