"""Issue 14's third-party target: other people's models, classified and accounted for.

Runs `sepconv.profile.profile_model` (eager, one thread, 1x3x224x224) on six models sepconv does not
define — timm's efficientnet_b0, tf_mobilenetv3_large_100, mobilenetv4_conv_small, convnext_atto and
torchvision's shufflenet_v2_x1_0, regnet_x_400mf (random weights) — and prints, per model: the layers
(replayed alone) plus the functional ops the parents' forwards run, against the whole model timed in
the same rounds (target: within 15%), the layers timed in place, the kinds, and every row classified
by fallback (by the aten ops it ran, or not at all) with its module type. timm and torchvision are not
sepconv dependencies: run it in a scratch environment, which it records:

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1 timm \\
        numpy rich matplotlib onnx onnxruntime safetensors scikit-learn
    PYTHONPATH=src /tmp/tv/bin/python benchmarks/profile_third_party.py > benchmarks/results/profile/third_party.txt
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from sepconv.profile import profile_model, to_dict

OUT = Path(__file__).parent / "results" / "profile" / "third_party.json"
TOLERANCE = 0.15


def build(name: str) -> torch.nn.Module:
    library, _, model = name.partition(":")
    if library == "timm":
        import timm

        return timm.create_model(model, pretrained=False)
    import torchvision

    return getattr(torchvision.models, model)(weights=None)


MODELS = ["timm:efficientnet_b0", "timm:tf_mobilenetv3_large_100", "timm:mobilenetv4_conv_small",
          "timm:convnext_atto", "torchvision:shufflenet_v2_x1_0", "torchvision:regnet_x_400mf"]


def main() -> int:
    import timm
    import torchvision

    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "timm": timm.__version__,
                "torchvision": torchvision.__version__}
    print(f"versions: {versions}; 1 thread, 1x3x224x224, eager, random weights")
    docs, misses = [], 0
    for name in MODELS:
        torch.manual_seed(0)
        model = build(name).eval()
        load_before = os.getloadavg()[0]
        began = time.time()
        doc = to_dict(profile_model(model, (1, 3, 224, 224), spec=name, description=name, threads=1, repeats=20,
                                    budget_s=40.0))
        t = doc["timing"]
        accounted = t["layers_time_ms"] + t["functional_time_ms"]
        ratio = accounted / t["model_time_ms"]
        fallback = doc["fallback"]
        unknown = [row for row in fallback if row["kind_source"] == "none"]
        ok = abs(ratio - 1) <= TOLERANCE
        misses += (not ok) + len(unknown)
        print(f"\n== {name}: {doc['model']['params']:,} params, {doc['model']['macs'] / 1e6:,.1f}M MACs "
              f"({time.time() - began:.0f} s, load {load_before:.2f} -> {os.getloadavg()[0]:.2f})")
        print(f"   layers {t['layers_time_ms']:.2f} ms + functional ops {t['functional_time_ms']:.2f} ms "
              f"({len(doc['functional'])} ops) = {accounted:.2f} ms against the model's {t['model_time_ms']:.2f} ms: "
              f"{ratio:.0%} -> {'within' if ok else 'OUTSIDE'} {TOLERANCE:.0%}; in place {t['in_model_time_ms']:.2f} ms")
        print(f"   {t['addup']}")
        print("   by kind: " + ", ".join(f"{k['kind']} {k['time_share']:.1%}" for k in doc["by_kind"]))
        types = sorted({(row["type"], row["kind"], row["kind_source"]) for row in fallback})
        print(f"   fallback rows: {len(fallback)} ({len(unknown)} not classified at all): "
              + ("; ".join(f"{tp} -> {kind} (by {src})" for tp, kind, src in types) or "none"))
        docs.append({"model": name, "ratio": ratio, "within": ok, "timing": t, "by_kind": doc["by_kind"],
                     "fallback": fallback, "functional_ops": len(doc["functional"])})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"versions": versions, "tolerance": TOLERANCE, "models": docs}, indent=2) + "\n")
    print(f"\nmisses (outside {TOLERANCE:.0%}, or rows not classified at all): {misses}; wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
