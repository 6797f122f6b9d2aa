"""``sepconv sweep``: accuracy against cost over the width multiplier, trained on real data.

MobileNets (Howard et al. 2017, Section 3.3, Table 6 and Figure 4) trade accuracy for
computation with the width multiplier alpha: MACs and parameters fall roughly as alpha^2. This
trains one model per alpha with the same recipe, then counts each one's exact MACs and
parameters (:func:`sepconv.cost.analyze`) and measures its latency (:func:`sepconv._util.timing.time_module`,
batch 1, median, all models timed one after another after all the training so they share the
machine's conditions), and gives a table, ``sweep.json`` and ``sweep.png``: the paper's
trade-off curve for the data at hand.

Each width trains into ``OUT/width-<alpha>``; with ``resume`` a width whose run directory exists
is resumed (a finished one is reused as it is), so an interrupted sweep continues.

Example::

    >>> doc = sweep(TrainConfig("mobilenet_v2", data="digits", epochs=30), [0.25, 0.5], "runs/sweep")  # doctest: +SKIP
    >>> [p["width_mult"] for p in doc["points"]]  # doctest: +SKIP
    [0.25, 0.5]
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from .._util.checks import ArgumentError
from .._util.io import atomic_write, atomic_write_text
from .._util.runtime import threads_set_to
from .._util.timing import time_module
from ..cost import analyze
from ..resolve import resolve_model
from .loop import TrainConfig, Trainer
from .state import STATE_FILE

__all__ = ["parse_widths", "save_sweep_plot", "sweep", "sweep_table"]


def parse_widths(text: str) -> list[float]:
    """``"0.25,0.5,1"`` -> [0.25, 0.5, 1.0] (positive, distinct, in the given order).

    Example::

        >>> parse_widths("0.25, 0.5,1.0")
        [0.25, 0.5, 1.0]
    """
    try:
        widths = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        widths = []
    if not widths or any(not w > 0 for w in widths) or len(set(widths)) != len(widths):
        raise ValueError(f"width_mults={text!r} must be distinct positive numbers separated by commas, "
                         "e.g. 0.25,0.5,0.75,1.0")
    return widths


def sweep(config: TrainConfig, widths: Sequence[float], out: str | Path, *, repeats: int = 20,
          warmup: int = 3) -> dict[str, Any]:
    """Train ``config`` at each width in ``widths`` into ``out``; count and time each model."""
    out = Path(out)
    if "width_mult" in config.model_kwargs:
        raise ValueError(f"the model spec sets width_mult={config.model_kwargs['width_mult']!r}; "
                         "the sweep sets it (give the widths with --width-mults)")
    runs = []
    for w in widths:  # everything is checked before the first width trains
        run_dir = out / f"width-{w:g}"
        resume = config.resume and (run_dir / STATE_FILE).is_file()
        if not config.resume and (run_dir / STATE_FILE).exists():
            raise ArgumentError("resume", f"{run_dir / STATE_FILE}: {out} already holds a sweep; pass resume=True to "
                                "continue it, or another out directory (nothing was overwritten)")
        runs.append((w, dataclasses.replace(config, model_kwargs={**config.model_kwargs, "width_mult": w},
                                            out=str(run_dir), resume=resume)))
    points = []
    for w, run in runs:
        summary = Trainer(run).fit()
        points.append({"width_mult": w, "val_acc": summary.get("val_acc"), "ema_val_acc": summary.get("ema_val_acc"),
                       "train_seconds": sum(r["seconds"] for r in _history(run.out)),
                       "checkpoint": str(Path(run.out) / "model.safetensors")})
    # counted and timed after all training, one model after another, on the threads training used
    with threads_set_to(config.threads) if config.threads is not None else nullcontext():
        threads = torch.get_num_threads()
        for p in points:
            resolved = resolve_model(p["checkpoint"])
            model = resolved.model.eval()
            shape = resolved.shape(input_size=resolved.sidecar.train["img_size"])  # the size it was trained at
            report = analyze(model, shape)
            timing = time_module(model, torch.randn(shape), repeats=repeats, warmup=warmup)
            p.update({"params": report.params, "macs": report.macs, "latency_ms": timing.median_ms,
                      "latency_p90_ms": timing.p90_ms, "input_shape": list(shape)})
    doc = {"model": config.model, "model_kwargs": config.model_kwargs, "data": config.data, "epochs": config.epochs,
           "threads": threads, "latency": f"batch 1, median of {repeats} after {warmup} warm-up, eval mode",
           "points": points}
    atomic_write_text(out / "sweep.json", json.dumps(doc, indent=2) + "\n")
    save_sweep_plot(doc, out / "sweep.png")
    return doc


def _history(run_dir: str) -> list[dict[str, Any]]:
    return json.loads((Path(run_dir) / STATE_FILE).read_text())["history"]


def sweep_table(doc: dict[str, Any]) -> Any:
    """A rich table of :func:`sweep`'s document, one row per width."""
    from rich.table import Table

    table = Table(title=f"{doc['model']} on {doc['data']}, {doc['epochs']} epochs per width; "
                        f"latency {doc['latency']}, {doc['threads']} threads")
    for col in ("width", "params", "MACs (M)", "latency ms", "val acc", "EMA val acc", "train s"):
        table.add_column(col, justify="right")
    for p in doc["points"]:
        ema = "-" if p["ema_val_acc"] is None else f"{p['ema_val_acc']:.4f}"
        table.add_row(f"{p['width_mult']:g}", f"{p['params']:,}", f"{p['macs'] / 1e6:.2f}", f"{p['latency_ms']:.2f}",
                      f"{p['val_acc']:.4f}", ema, f"{p['train_seconds']:.0f}")
    return table


def save_sweep_plot(doc: dict[str, Any], path: str | Path) -> Path:
    """Accuracy against MACs (log scale) and against measured latency, one labelled point per width."""
    from .._util.figures import new_figure, png_bytes

    fig = new_figure((11, 4.5))
    points = doc["points"]
    for i, (key, label) in enumerate((("macs", "MACs (multiply-accumulates), log scale"),
                                      ("latency_ms", "latency (ms, batch 1)")), start=1):
        ax = fig.add_subplot(1, 2, i)
        xs, ys = [p[key] for p in points], [100 * p["val_acc"] for p in points]
        ax.plot(xs, ys, "o-")
        for p, x, y in zip(points, xs, ys, strict=True):
            ax.annotate(f"α={p['width_mult']:g}", (x, y), textcoords="offset points", xytext=(5, -12))
        if key == "macs":
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("validation top-1 accuracy (%)")
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"{doc['model']} width multiplier on {doc['data']} (cf. MobileNets, Howard et al. 2017, Fig. 4)")
    data = png_bytes(fig)
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path
