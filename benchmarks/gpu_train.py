"""Training on a CUDA GPU: depthwise against dense convolution, precisions and layouts, one step of
MobileNetV2 and VGG16.

1. **Depthwise 3x3 against cuDNN's dense 3x3 of the same shape** (N, C, H, W, stride 1, "same"
   padding), forward and forward + backward, for fp32, fp16 and bf16 autocast, NCHW and
   channels_last: time per call (CUDA events, median of repeated calls after warm-up), the MACs
   each does (dense: C x more) and the achieved GMAC/s. The question of this project on a GPU:
   the depthwise conv does 1/C of the work, is it 1/C of the time?
2. **One training step** (forward, loss, backward, AdamW step; fp16 with a gradient scaler) of
   MobileNetV2 and VGG16 at 224 px, batch 64, 1000 classes, for each precision and layout:
   ms per step and images/s, and the speed-up of each setting over fp32 NCHW.

Run it on a machine with a CUDA GPU (under 5 minutes; results printed and saved as JSON)::

    .venv/bin/python benchmarks/gpu_train.py [--json benchmarks/results/training/gpu_train.json]

Without a CUDA device it says so and exits with status 1, measuring nothing (no test depends on
it). ``--cpu-dry-run`` runs the same code on the CPU at toy sizes, to check the script itself;
its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sepconv.models import create_model

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
LAYOUTS = ("nchw", "channels_last")
CONV_SHAPES = [  # (N, C, H, W): MobileNetV2's depthwise layers at 224 px, batch 64
    (64, 96, 112, 112), (64, 144, 56, 56), (64, 192, 28, 28), (64, 384, 14, 14), (64, 960, 7, 7)]
DRY_SHAPES = [(2, 8, 8, 8)]


class Timer:
    """Median milliseconds of ``fn()`` after warm-up: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device, warmup: int, repeats: int) -> None:
        self.device, self.warmup, self.repeats = device, warmup, repeats

    def __call__(self, fn) -> float:
        for _ in range(self.warmup):
            fn()
        times = []
        for _ in range(self.repeats):
            if self.device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                began = time.perf_counter()
                fn()
                times.append(1000 * (time.perf_counter() - began))
        return statistics.median(times)


def autocast(device: torch.device, precision: str):
    dtype = PRECISIONS[precision]
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def supported(device: torch.device, precision: str) -> bool:
    if precision == "bf16":
        return torch.cuda.is_bf16_supported() if device.type == "cuda" else True
    return precision != "fp16" or device.type == "cuda"


def conv_rows(device: torch.device, shapes: list[tuple[int, int, int, int]], timer: Timer) -> list[dict]:
    rows = []
    for n, c, h, w in shapes:
        for precision in PRECISIONS:
            if not supported(device, precision):
                continue
            for layout in LAYOUTS:
                fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
                row = {"shape": [n, c, h, w], "precision": precision, "layout": layout}
                for kind, groups in (("depthwise", c), ("dense", 1)):
                    conv = nn.Conv2d(c, c, 3, padding=1, groups=groups, bias=False).to(device, memory_format=fmt)
                    x = torch.randn(n, c, h, w, device=device).contiguous(memory_format=fmt).requires_grad_()
                    macs = n * h * w * c * 9 * (1 if kind == "depthwise" else c)

                    def forward() -> None:
                        with torch.no_grad(), autocast(device, precision):
                            conv(x)

                    def both() -> None:
                        x.grad = conv.weight.grad = None  # no accumulation: each call does one backward's work
                        with autocast(device, precision):
                            y = conv(x)
                        y.backward(torch.ones_like(y))

                    fwd, fwd_bwd = timer(forward), timer(both)
                    row[kind] = {"fwd_ms": fwd, "fwd_bwd_ms": fwd_bwd, "macs": macs,
                                 "fwd_gmacs_per_s": macs / fwd / 1e6, "fwd_bwd_gmacs_per_s": 3 * macs / fwd_bwd / 1e6}
                d, s = row["depthwise"], row["dense"]
                row["time_ratio_fwd"] = d["fwd_ms"] / s["fwd_ms"]  # depthwise time / dense time
                row["time_ratio_fwd_bwd"] = d["fwd_bwd_ms"] / s["fwd_bwd_ms"]
                rows.append(row)
                print(f"{n}x{c}x{h}x{w} {precision:4s} {layout:13s} depthwise {d['fwd_ms']:7.3f} / "
                      f"{d['fwd_bwd_ms']:7.3f} ms, dense {s['fwd_ms']:7.3f} / {s['fwd_bwd_ms']:7.3f} ms (fwd / fwd+bwd): "
                      f"depthwise takes {row['time_ratio_fwd']:.2f}x / {row['time_ratio_fwd_bwd']:.2f}x the dense time "
                      f"for 1/{c} of its MACs", flush=True)
    return rows


def step_rows(device: torch.device, models: list[str], size: int, batch: int, timer: Timer) -> list[dict]:
    rows = []
    for name in models:
        for precision in PRECISIONS:
            if not supported(device, precision):
                continue
            for layout in LAYOUTS:
                torch.manual_seed(0)
                model = create_model(name, num_classes=1000).to(device).train()
                fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
                model = model.to(memory_format=fmt)
                x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
                y = torch.randint(0, 1000, (batch,), device=device)
                opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
                scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

                def step() -> None:
                    with autocast(device, precision):
                        logits = model(x)
                    loss = F.cross_entropy(logits.float(), y)
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()

                ms = timer(step)
                rows.append({"model": name, "precision": precision, "layout": layout, "size": size, "batch": batch,
                             "ms_per_step": ms, "images_per_s": batch / ms * 1000})
                print(f"{name:13s} {precision:4s} {layout:13s} {ms:8.2f} ms/step {batch / ms * 1000:8.0f} images/s",
                      flush=True)
        base = next(r["ms_per_step"] for r in rows if r["model"] == name and r["precision"] == "fp32"
                    and r["layout"] == "nchw")
        for r in rows:
            if r["model"] == name:
                r["speedup_vs_fp32_nchw"] = base / r["ms_per_step"]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--models", default="mobilenet_v2,vgg16")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cpu-dry-run", action="store_true", help="toy sizes on the CPU: checks the script only")
    args = parser.parse_args()
    if args.cpu_dry_run:
        device, shapes, size, batch, timer = torch.device("cpu"), DRY_SHAPES, 32, 2, Timer(torch.device("cpu"), 1, 2)
    else:
        if not torch.cuda.is_available():
            print(f"gpu_train.py: no CUDA device here (torch {torch.__version__}, "
                  f"torch.cuda.is_available() is False); nothing measured. Run it on a machine with an NVIDIA GPU.",
                  file=sys.stderr)
            return 1
        device, shapes, size, batch = torch.device("cuda"), CONV_SHAPES, args.size, args.batch
        timer = Timer(device, warmup=5, repeats=args.repeats)
        torch.backends.cudnn.benchmark = True
    began = time.perf_counter()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run: figures mean nothing)"
    print(f"# {gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
          f"{torch.backends.cudnn.version() if device.type == 'cuda' else None}", flush=True)
    convs = conv_rows(device, shapes, timer)
    steps = step_rows(device, [m.strip() for m in args.models.split(",")], size, batch, timer)
    doc = {"device": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
           "timing": f"median of {timer.repeats} after {timer.warmup} warm-up calls"
                     + (", CUDA events" if device.type == "cuda" else ", perf_counter"),
           "conv": convs, "train_step": steps, "seconds": time.perf_counter() - began}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    print(f"# {doc['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
