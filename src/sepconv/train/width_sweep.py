"""``sepconv sweep``: accuracy against cost over the width multiplier (and the resolution
multiplier), trained on real data.

MobileNets (Howard et al. 2017, Section 3.3, Table 6 and Figure 4) trade accuracy for
computation with the width multiplier alpha: MACs and parameters fall roughly as alpha^2; the
resolution multiplier rho (Section 4.2, Table 7 and Figure 5) is the input size, MACs falling as
rho^2 and the parameters unchanged. With ``img_sizes`` the sweep is a grid, every width at every
input size (each trained and measured at that size: ``img_size`` is both the run's training size
and the model's own input size, :data:`sepconv.models.registry.IMG_SIZE`). This
trains one model per alpha with the same recipe, then counts each one's exact MACs and
parameters (:func:`sepconv.cost.analyze`) and measures its latency (:func:`sepconv._util.timing.time_module`,
batch 1, median, all models timed one after another after all the training so they share the
machine's conditions), and gives a table, ``sweep.json`` and ``sweep.png``: the paper's
trade-off curve for the data at hand.

Each width trains into ``OUT/width-<alpha>`` (with ``img_sizes``, ``OUT/width-<alpha>-img-<size>``);
with ``resume`` a run whose directory exists is resumed (a finished one is reused as it is), so an
interrupted sweep continues.

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

__all__ = ["parse_img_sizes", "parse_widths", "save_sweep_plot", "sweep", "sweep_table"]


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


def parse_img_sizes(text: str) -> list[int]:
    """``"224,192,160,128"`` -> [224, 192, 160, 128] (positive, distinct integers, in the given order).

    Example::

        >>> parse_img_sizes("32, 24,16")
        [32, 24, 16]
    """
    parts = [v.strip() for v in str(text).split(",") if v.strip()]
    sizes = [int(v) for v in parts if v.isdigit()]
    if not parts or len(sizes) != len(parts) or any(s < 1 for s in sizes) or len(set(sizes)) != len(sizes):
        raise ArgumentError("img_sizes", f"img_sizes={text!r} must be distinct positive integers (input sides in "
                            "pixels) separated by commas, e.g. 224,192,160,128")
    return sizes


def sweep(config: TrainConfig, widths: Sequence[float], out: str | Path, *, img_sizes: Sequence[int] | None = None,
          repeats: int = 20, warmup: int = 3) -> dict[str, Any]:
    """Train ``config`` at each width in ``widths`` (and, with ``img_sizes``, at each input size:
    the resolution axis) into ``out``; count and time each model at the size it was trained at."""
    out = Path(out)
    if "width_mult" in config.model_kwargs:
        raise ValueError(f"the model spec sets width_mult={config.model_kwargs['width_mult']!r}; "
                         "the sweep sets it (give the widths with --width-mults)")
    sizes: list[int | None] = [None]
    if img_sizes is not None:
        sizes = list(img_sizes)
        if not sizes or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sizes):
            raise ArgumentError("img_sizes", f"img_sizes={img_sizes!r} must be a non-empty list of positive integers")
        fixed = config.img_size if config.img_size is not None else config.model_kwargs.get("img_size")
        if fixed is not None:
            raise ArgumentError("img_sizes", f"img_sizes={list(sizes)!r}: the run already fixes img_size={fixed!r}; "
                                "the sweep sets it (give the sizes with img_sizes only)")
    runs = []
    for w in widths:  # everything is checked before the first run trains
        for size in sizes:
            run_dir = out / (f"width-{w:g}" if size is None else f"width-{w:g}-img-{size}")
            resume = config.resume and (run_dir / STATE_FILE).is_file()
            if not config.resume and (run_dir / STATE_FILE).exists():
                raise ArgumentError("resume", f"{run_dir / STATE_FILE}: {out} already holds a sweep; pass resume=True "
                                    "to continue it, or another out directory (nothing was overwritten)")
            kwargs = {**config.model_kwargs, "width_mult": w, **({} if size is None else {"img_size": size})}
            runs.append((w, dataclasses.replace(config, model_kwargs=kwargs, out=str(run_dir), resume=resume,
                                                img_size=config.img_size if size is None else size)))
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
            p.update({"img_size": shape[-1], "params": report.params, "macs": report.macs,
                      "latency_ms": timing.median_ms, "latency_p90_ms": timing.p90_ms, "input_shape": list(shape)})
    doc = {"model": config.model, "model_kwargs": config.model_kwargs, "data": config.data, "epochs": config.epochs,
           "threads": threads, "latency": f"batch 1, median of {repeats} after {warmup} warm-up, eval mode",
           **({} if img_sizes is None else {"img_sizes": list(img_sizes)}), "points": points}
    atomic_write_text(out / "sweep.json", json.dumps(doc, indent=2) + "\n")
    save_sweep_plot(doc, out / "sweep.png")
    return doc


def _history(run_dir: str) -> list[dict[str, Any]]:
    return json.loads((Path(run_dir) / STATE_FILE).read_text())["history"]


def sweep_table(doc: dict[str, Any]) -> Any:
    """A rich table of :func:`sweep`'s document, one row per width."""
    from rich.table import Table

    grid = "img_sizes" in doc
    table = Table(title=f"{doc['model']} on {doc['data']}, {doc['epochs']} epochs per "
                        f"{'width and input size' if grid else 'width'}; latency {doc['latency']}, "
                        f"{doc['threads']} threads")
    columns = ("width", *(("input px",) if grid else ()), "params", "MACs (M)", "latency ms", "val acc",
               "EMA val acc", "train s")
    for col in columns:
        table.add_column(col, justify="right")
    for p in doc["points"]:
        ema = "-" if p["ema_val_acc"] is None else f"{p['ema_val_acc']:.4f}"
        size = (str(p["img_size"]),) if grid else ()
        table.add_row(f"{p['width_mult']:g}", *size, f"{p['params']:,}", f"{p['macs'] / 1e6:.2f}",
                      f"{p['latency_ms']:.2f}", f"{p['val_acc']:.4f}", ema, f"{p['train_seconds']:.0f}")
    return table


def save_sweep_plot(doc: dict[str, Any], path: str | Path) -> Path:
    """Accuracy against MACs (log scale) and against measured latency, one labelled point per run; with
    input sizes, one line per width through its sizes."""
    from .._util.figures import new_figure, png_bytes

    fig = new_figure((11, 4.5))
    grid = "img_sizes" in doc
    lines: dict[float, list[dict[str, Any]]] = {}
    for p in doc["points"]:
        lines.setdefault(p["width_mult"] if grid else 0.0, []).append(p)
    for i, (key, axis) in enumerate((("macs", "MACs (multiply-accumulates), log scale"),
                                     ("latency_ms", "latency (ms, batch 1)")), start=1):
        ax = fig.add_subplot(1, 2, i)
        for points in lines.values():
            xs, ys = [p[key] for p in points], [100 * p["val_acc"] for p in points]
            ax.plot(xs, ys, "o-")
            for p, x, y in zip(points, xs, ys, strict=True):
                name = f"α={p['width_mult']:g}" + (f", {p['img_size']} px" if grid else "")
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, -12))
        if key == "macs":
            ax.set_xscale("log")
        ax.set_xlabel(axis)
        ax.set_ylabel("validation top-1 accuracy (%)")
        ax.grid(alpha=0.3, which="both")
    what, figs = ("width and resolution multipliers", "Figs. 4 and 5") if grid else ("width multiplier", "Fig. 4")
    fig.suptitle(f"{doc['model']} {what} on {doc['data']} (cf. MobileNets, Howard et al. 2017, {figs})")
    data = png_bytes(fig)
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path
