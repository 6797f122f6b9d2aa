"""Batch-1 latency of the super-resolution models at a 360x640 -> 720x1280 upscale: eager PyTorch
against ONNX Runtime (sepconv's export, `sepconv.engines.runner`), one thread, each model's own
input shape (SRCNN takes the bicubic-upscaled 720x1280 image). Latency does not depend on the
weights, so the models are freshly built. Prints a table and writes benchmarks/results/superres/latency.json.

    python benchmarks/superres_latency.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from sepconv import create_model
from sepconv.engines.runner import time_backends
from sepconv.models import list_models, model_entry

OUT = Path(__file__).parent / "results" / "superres" / "latency.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = []
    load_before = os.getloadavg()[0]
    began = time.time()
    for name in list_models(task="super_resolution"):
        model = create_model(name, scale=2).eval()
        up = model_entry(name).sr_input == "upsampled"
        shape = (1, 1, 720, 1280) if up else (1, 1, 360, 640)
        results = time_backends(model, shape, ["eager", "onnxruntime"], [1], repeats=args.repeats, warmup=1,
                                threads=args.threads)
        row = {"model": name, "input_shape": list(shape)}
        for r in results:
            row[r.backend] = {"status": r.status, "median_ms": r.median_ms, "p90_ms": r.p90_ms,
                              "max_abs_diff": r.max_abs_diff, "error": r.error}
        rows.append(row)
        print(f"{name:8s} {'x'.join(map(str, shape)):14s} eager {row['eager']['median_ms']:9.1f} ms   "
              f"onnxruntime {row['onnxruntime']['median_ms'] or float('nan'):9.1f} ms", flush=True)
    doc = {"threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
           "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
           "seconds": round(time.time() - began, 1), "rows": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"load average {load_before:.2f} -> {doc['load_average_after']:.2f}; wrote {OUT}")


if __name__ == "__main__":
    main()
