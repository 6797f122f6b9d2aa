"""Separation demonstration (GitHub issue 8): a trained standard-conv MobileNetV1, separated in
closed form at depth multipliers 1, 2 and 4 (and, for contrast, spatially k x 1 + 1 x k at rank 24) --
what it costs in accuracy and gains in speed.

One run, one table:

1. train ``mobilenet_v1`` with ``conv="standard"`` (the paper's "Conv MobileNet", Table 4) at
   width 0.25 on the bundled digits at 32 px with the training loop (``sepconv.train``);
2. for each depth multiplier d, replace its 13 body 3x3 convs by depthwise(d) + pointwise
   (``sepconv.separate``; the 1-channel stem stays standard, as in MobileNet) and measure top-1
   accuracy on the validation split: right after the closed-form separation, after re-estimating
   BatchNorm statistics on 256 training images, and after a short fine-tune by distillation from
   the original model through the training loop;
3. count params and MACs (``sepconv.cost``) and time every model side by side at batch 1, at the
   trained 32 px and at 224 px (the same weights: the head pools globally): interleaved rounds,
   each timing every model in turn, the median of all samples reported. At 32 px with width 0.25
   every layer is tiny and per-call overhead, not MACs, sets the time; at 224 px the MACs start
   to count.

    .venv/bin/python benchmarks/separation_demo.py                      # about 5 minutes on 2 cores
    .venv/bin/python benchmarks/separation_demo.py --json benchmarks/results/separation_demo.json

Units: MACs are multiply-accumulates per image (FLOPs = 2 x MACs); latency is milliseconds per
image at batch 1, median, with the thread count in the title.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from sepconv._util.timing import time_module
from sepconv.cost import analyze
from sepconv.separation import separate
from sepconv.separation.finetune import Distillation
from sepconv.separation.recalibrate import recalibrate_bn
from sepconv.train import TrainConfig, Trainer

MODEL, KWARGS, DATA, SIZE = "mobilenet_v1", {"conv": "standard", "width_mult": 0.25}, "digits", 32


def body(name: str, conv: torch.nn.Conv2d) -> bool:
    """The 13 body convs; the stem (1 input channel) stays a standard conv."""
    return name.startswith("blocks.")


def latencies(models: dict[str, torch.nn.Module], x: torch.Tensor, rounds: int, repeats: int) -> dict[str, float]:
    """Median ms per call, every model timed in each round in turn (side by side)."""
    samples: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for name, model in models.items():
            samples[name] += time_module(model, x, repeats=repeats, warmup=1).samples_ms
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=10, help="training epochs of the standard model (default 10)")
    ap.add_argument("--finetune", type=int, default=2, help="distillation epochs per separated model (default 2)")
    ap.add_argument("--multipliers", default="1,2,4", help="depth multipliers (default 1,2,4)")
    ap.add_argument("--spatial-ranks", default="24",
                    help="ranks r of k x 1 + 1 x k spatial separation, for contrast ('' for none; default 24)")
    ap.add_argument("--lr", type=float, default=0.01, help="fine-tune learning rate (default 0.01)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for timing (default 1)")
    ap.add_argument("--rounds", type=int, default=10, help="timing rounds (default 10, 10 calls each)")
    ap.add_argument("--big", type=int, default=224, help="second input size for latency (default 224)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    multipliers = [int(v) for v in args.multipliers.split(",")]
    ranks = [int(v) for v in args.spatial_ranks.split(",") if v]
    began = time.perf_counter()

    print(f"training {MODEL} {KWARGS} on {DATA} at {SIZE} px for {args.epochs} epochs", file=sys.stderr)
    trainer = Trainer(TrainConfig(MODEL, KWARGS, data=DATA, epochs=args.epochs, img_size=SIZE, progress=False))
    trainer.fit()
    teacher = trainer.model.eval()
    distill = Distillation(teacher, DATA, img_size=SIZE, epochs=args.finetune, lr=args.lr)
    calibration = distill.calibration(256)
    rows = [{"model": "standard conv (trained)", "d": None, "acc_trained": distill.accuracy(teacher)}]
    models = {rows[0]["model"]: teacher}
    forms = [(f"depthwise-separable d={d}", d, {"to": "depthwise", "depth_multiplier": d}) for d in multipliers]
    forms += [(f"spatial 3x1+1x3 r={r}", r, {"to": "spatial", "rank": r}) for r in ranks]
    for label, d, how in forms:
        print(f"separating: {label}", file=sys.stderr)
        student, report = separate(teacher, layers=body, calibration=calibration, **how)
        row = {"model": label, "d": d, "form": how["to"], "acc_separated": distill.accuracy(student),
               "output_error": report.output_error,
               "weight_error_mean": statistics.mean(r.weight_error for r in report.separated)}
        recalibrate_bn(student, calibration)
        row["acc_bn"] = distill.accuracy(student)
        row["acc_finetuned"] = float(distill.finetune(student)["val_acc"])
        rows.append(row)
        models[row["model"]] = student.eval()

    torch.set_num_threads(args.threads)
    x = calibration[:1]
    big = torch.randn(1, x.shape[1], args.big, args.big, generator=torch.Generator().manual_seed(0))
    ms, ms_big = latencies(models, x, args.rounds, repeats=10), latencies(models, big, args.rounds, repeats=3)
    for row in rows:
        model = models[row["model"]]
        row.update(params=analyze(model, x).params, macs=analyze(model, x).macs, latency_ms=ms[row["model"]],
                   macs_big=analyze(model, big).macs, latency_ms_big=ms_big[row["model"]])
    load = os.getloadavg()[0]
    seconds = time.perf_counter() - began

    base = rows[0]
    title = (f"{MODEL} width 0.25, conv=standard, trained {args.epochs} epochs on {DATA} ({SIZE} px), separated "
             f"in closed form; fine-tune {args.finetune} epochs; latency ms at batch 1, {args.threads} thread(s) (speed-up)")
    t = Table(title=title, caption=f"top-1 on the {len(trainer.data.val)} validation digits; MACs per image; "
                                   f"load average {load:.1f}; {seconds:.0f} s in all")
    for col in ("model", "params", f"MACs {SIZE}px", f"ms {SIZE}px", f"MACs {args.big}px", f"ms {args.big}px",
                "w err", "acc", "after separation", "+ BN re-est.", "after fine-tune"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for row in rows:
        pct = lambda k: f"{row[k]:.1%}" if k in row else ""  # noqa: E731
        speed = lambda k: f" ({base[k] / row[k]:.2f}x)" if row["d"] else ""  # noqa: E731
        t.add_row(row["model"], f"{row['params'] / 1e6:.3f}M", f"{row['macs'] / 1e6:.2f}M",
                  f"{row['latency_ms']:.3f}{speed('latency_ms')}", f"{row['macs_big'] / 1e6:.0f}M",
                  f"{row['latency_ms_big']:.2f}{speed('latency_ms_big')}",
                  f"{row['weight_error_mean']:.1%}" if "weight_error_mean" in row else "",
                  pct("acc_trained") if row["d"] is None else f"{base['acc_trained']:.1%}",
                  pct("acc_separated"), pct("acc_bn"), pct("acc_finetuned"))
    Console(width=170).print(t)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"threads": args.threads, "epochs": args.epochs, "finetune_epochs": args.finetune, "lr": args.lr,
                "load_average": load, "seconds": seconds, "torch": torch.__version__}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
