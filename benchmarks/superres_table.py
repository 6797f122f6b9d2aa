"""The super-resolution table: params, MACs and eager batch-1 latency of a 360x640 -> 720x1280 (x2) upscale,
and PSNR/SSIM on the held-out photos (from the runs train_all.sh wrote), against bicubic.

    python table.py runs/sr            # markdown on stdout, JSON beside it (runs/sr/table.json)

Latency: eager PyTorch fp32, batch 1, one thread (sepconv._util.runtime.threads_set_to), median of REPEATS
runs after one warm-up, models interleaved round by round; the 1-minute load average is printed with it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from sepconv._util.runtime import load_average, threads_set_to
from sepconv._util.timing import Timing
from sepconv.cost import analyze
from sepconv.models import model_entry
from sepconv.resolve import resolve_model
from sepconv.train.loop import evaluate

MODELS = ("ssnet_m", "ssnet", "fsrcnn", "espcn", "srcnn", "ssnet_m_nores")  # run directories
LR, SCALE = (360, 640), 2
REPEATS = int(os.environ.get("REPEATS", "3"))


def main(root: str) -> int:
    rows, timed = {}, {}
    load_before = load_average()
    for name in MODELS:
        if not (Path(root) / name).is_dir():
            continue
        result = evaluate(Path(root) / name, precision="fp32")
        resolved = resolve_model(Path(root) / name)
        net, provenance = resolved.model.eval(), resolved.sidecar.provenance
        upsampled = model_entry(provenance.model).sr_input == "upsampled"
        shape = (1, 1, LR[0] * SCALE, LR[1] * SCALE) if upsampled else (1, 1, *LR)
        report = analyze(net, shape)
        spec = provenance.model + "".join(f":{k}={v}" for k, v in provenance.kwargs.items() if k != "scale")
        rows[name] = {"model": spec, "input": "x".join(map(str, shape)), "params": report.params,
                      "macs": report.macs, **{k: result[k] for k in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")},
                      "per_image": result["per_image"]}
        timed[name] = (net, torch.rand(shape))
    samples: dict[str, list[float]] = {n: [] for n in timed}

    with threads_set_to(1), torch.inference_mode():
        for net, x in timed.values():  # warm-up
            net(x)
        for _ in range(REPEATS):  # interleaved rounds
            for name, (net, x) in timed.items():
                began = time.perf_counter()
                net(x)
                samples[name].append((time.perf_counter() - began) * 1e3)
    load_after = load_average()
    for name in timed:
        rows[name]["eager_ms"] = Timing.from_samples(samples[name]).median_ms
        rows[name]["eager_samples_ms"] = samples[name]
    doc = {"rows": list(rows.values()), "threads": 1, "batch": 1, "dtype": "fp32", "repeats": REPEATS,
           "load_average": [load_before, load_after], "torch": torch.__version__}
    (Path(root) / "table.json").write_text(json.dumps(doc, indent=1) + "\n")
    print("| model | input (1 x C x H x W) | params | MACs (360x640 -> 720x1280) | eager batch-1 ms (1 thread) | "
          "fastest deploy path ms | PSNR dB (bicubic) | SSIM (bicubic) |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for r in rows.values():
        print(f"| {r['model']} | {r['input']} | {r['params']:,} | {r['macs'] / 1e9:.2f}G | {r['eager_ms']:,.0f} | "
              f"(lead) | {r['psnr']:.2f} ({r['bicubic_psnr']:.2f}) | {r['ssim']:.4f} ({r['bicubic_ssim']:.4f}) |")
    print(f"\nload average {load_before:.2f} before, {load_after:.2f} after; torch {torch.__version__}", file=sys.stderr)
    print("\nper held-out photo (PSNR dB / SSIM; bicubic the same for every model):")
    first = next(iter(rows.values()))
    names = [p["image"] for p in first["per_image"]]
    print("| model | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    print("| bicubic | " + " | ".join(f"{p['bicubic_psnr']:.2f} / {p['bicubic_ssim']:.4f}"
                                      for p in first["per_image"]) + " |")
    for r in rows.values():
        print(f"| {r['model']} | " + " | ".join(f"{p['psnr']:.2f} / {p['ssim']:.4f}" for p in r["per_image"]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "runs/sr"))
