"""A run's per-epoch metrics as ``metrics.csv``, ``metrics.json`` and a training-curve PNG.

Rows are plain dicts (one per epoch, the same keys in every row); each file is rewritten whole
and atomically, from the history kept in the checkpoint state, so a resumed run's files are
those of an uninterrupted one. The training loop writes the CSV and JSON after every epoch and
the PNG (a second of matplotlib on a small CPU) at the end of a run and at most once a minute.

Example::

    >>> rows = [{"epoch": 1, "train_loss": 2.1, "val_loss": 1.9, "train_acc": 0.3, "val_acc": 0.4}]
    >>> write_metrics(tmp_path, rows)  # doctest: +SKIP
    [PosixPath('.../metrics.csv'), PosixPath('.../metrics.json'), PosixPath('.../curve.png')]
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._util.io import atomic_write, atomic_write_text

__all__ = ["plot_curves", "write_metrics"]


def write_metrics(out: str | Path, rows: Sequence[dict[str, Any]], title: str = "", plot: bool = True) -> list[Path]:
    """Write ``rows`` to ``out``/metrics.csv, metrics.json and (with ``plot``) curve.png; return the paths."""
    out = Path(out)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "metrics.csv", buffer.getvalue())
    atomic_write_text(out / "metrics.json", json.dumps(list(rows), indent=1) + "\n")
    if not plot:
        return [out / "metrics.csv", out / "metrics.json"]
    plot_curves(rows, out / "curve.png", title)
    return [out / "metrics.csv", out / "metrics.json", out / "curve.png"]


def plot_curves(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss (left) and accuracy (right; PSNR for a super-resolution run's rows) against epoch:
    train (loss with label smoothing; L1 for super-resolution), validation, and the EMA weights'
    validation when there are any."""
    from .._util.figures import new_figure, png_bytes

    fig = new_figure((10, 4))
    epochs = [r["epoch"] for r in rows]
    second = "psnr" if rows and "val_psnr" in rows[0] else "acc"
    labels = {"loss": "L1 loss" if second == "psnr" else "cross-entropy loss", "acc": "top-1 accuracy",
              "psnr": "PSNR (dB; val: Y, border cropped)"}
    for i, metric in enumerate(("loss", second), start=1):
        ax = fig.add_subplot(1, 2, i)
        for prefix, style in (("train", "-"), ("val", "-"), ("ema_val", "--")):
            key = f"{prefix}_{metric}"
            if rows and key in rows[0]:
                ax.plot(epochs, [r[key] for r in rows], style, marker="o", markersize=3, label=prefix.replace("_", " "))
        ax.set_xlabel("epoch")
        if metric == "psnr" and rows and "val_bicubic_psnr" in rows[0]:
            ax.plot(epochs, [r["val_bicubic_psnr"] for r in rows], ":", label="val bicubic")
        ax.set_ylabel(labels[metric])
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    data = png_bytes(fig)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
