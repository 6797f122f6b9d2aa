"""Issue 14's README table: MobileNetV2 and MobileNetV3-Large by kind, eager PyTorch against ONNX
Runtime, measured in one run on one thread (batch 1, 224 px) — how much of the depthwise penalty
survives fusion. Eager rows: each layer replayed alone (a conv, its BatchNorm and its activation are
three rows) plus the functional ops; ONNX Runtime rows: its own profiler on the BN-folded export,
fused Conv+BN+activation nodes counted as their conv's kind.

    python benchmarks/profile_by_kind.py > benchmarks/results/profile/by_kind.txt
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

KINDS = ("standard", "depthwise", "pointwise", "linear", "norm", "activation", "pool", "functional", "unmapped")


def profile(model: str, engine: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "doc.json"
        subprocess.run([sys.executable, "-m", "sepconv", "profile", model, "--threads", "1", "--layers-on", engine,
                        "--json", str(out)], check=True, capture_output=True)
        return json.loads(out.read_text())


def main() -> None:
    print(f"load {os.getloadavg()[0]:.2f}; 1 thread, batch 1, 224 px")
    for model in ("mobilenet_v2", "mobilenet_v3_large"):
        docs = {engine: profile(model, engine) for engine in ("eager", "onnxruntime")}
        print(f"\n{model} (load {os.getloadavg()[0]:.2f}): eager layers+functional "
              f"{docs['eager']['timing']['accounted_time_ms']:.2f} ms, model {docs['eager']['timing']['model_time_ms']:.2f} ms; "
              f"onnxruntime {docs['onnxruntime']['timing']['engine_version']} rows "
              f"{docs['onnxruntime']['timing']['accounted_time_ms']:.2f} ms, model_run "
              f"{docs['onnxruntime']['timing']['model_time_ms']:.2f} ms")
        print("| kind | MAC share | eager time share | eager ms | ONNX Runtime time share | ONNX Runtime ms |")
        print("|---|---|---|---|---|---|")
        rows = {engine: {row["kind"]: row for row in doc["by_kind"]} for engine, doc in docs.items()}
        for kind in KINDS:
            e, o = rows["eager"].get(kind), rows["onnxruntime"].get(kind)
            if not e and not o:
                continue
            macs = (e or o)["macs_share"]
            print(f"| {kind} | {macs:.1%} | {e['time_share'] if e else 0:.1%} | {e['time_ms'] if e else 0:.2f} | "
                  f"{o['time_share'] if o else 0:.1%} | {o['time_ms'] if o else 0:.2f} |")


if __name__ == "__main__":
    main()
