"""Charts of a profile: the roofline with one point per layer, and MAC share against time share.

Left, the roofline (Williams, Waterman & Patterson 2009): log-log, arithmetic intensity (FLOPs
per byte) against achieved GFLOP/s, one point per layer that does multiply-accumulates, coloured
by kind, under the machine's two measured ceilings (streaming bandwidth x intensity, then the FP32
GEMM peak). Depthwise layers sit far left, under the bandwidth slope; pointwise and standard
convs further right. Right, per kind, the share of the model's MACs beside the share of its
measured time: the seeds' question answered in one picture.

Both render the JSON document of :func:`sepconv.profile.report.to_dict`, with matplotlib's
object API (no pyplot state, no display needed).

Example::

    >>> save_plot(doc, "profile.png")  # doc = to_dict(profile_model(...))
    PosixPath('profile.png')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._util.figures import new_figure, png_bytes
from .._util.io import atomic_write

__all__ = ["KIND_COLORS", "figure", "save_plot"]

# One colour per cost-model kind (matplotlib's tab10), the same in every chart.
KIND_COLORS = {
    "standard": "#d62728", "depthwise": "#1f77b4", "pointwise": "#2ca02c", "grouped": "#9467bd",
    "spatial": "#8c564b", "linear": "#ff7f0e", "norm": "#7f7f7f", "activation": "#bcbd22", "pool": "#17becf",
    "other": "#e377c2",
}


def figure(doc: dict[str, Any]):  # noqa: ANN201 - matplotlib.figure.Figure
    """The two charts side by side, as a ``matplotlib.figure.Figure``."""
    fig = new_figure((13, 5.2))
    roofline_axes(fig.add_subplot(1, 2, 1), doc)
    share_axes(fig.add_subplot(1, 2, 2), doc)
    model = doc["model"]
    shape = "x".join(map(str, doc["input_shape"]))
    fig.suptitle(f"{model['spec']}, input {shape}, {doc['threads']} threads — {doc['machine']['cpu']}")
    return fig


def roofline_axes(ax, doc: dict[str, Any]) -> None:  # noqa: ANN001
    machine = doc["machine"]
    peak, bandwidth = machine["peak_gflops_per_s"], machine["bandwidth_gb_per_s"]
    points = [row for row in doc["layers"] if row["flops"] > 0 and row["bytes"] > 0 and row["gflops_per_s"]]
    xs = [row["intensity_flops_per_byte"] for row in points] or [machine["ridge_flops_per_byte"]]
    lo, hi = min(xs + [machine["ridge_flops_per_byte"]]) / 3, max(xs + [machine["ridge_flops_per_byte"]]) * 3
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(grid, [min(peak, bandwidth * x) for x in grid], color="black", linewidth=1.5,
            label=f"roofline: {peak:.0f} GFLOP/s, {bandwidth:.1f} GB/s")
    ax.axvline(machine["ridge_flops_per_byte"], color="grey", linestyle=":", linewidth=1)
    for kind in _kinds(doc):
        rows = [row for row in points if row["kind"] == kind]
        if rows:
            ax.scatter([r["intensity_flops_per_byte"] for r in rows], [r["gflops_per_s"] for r in rows],
                       s=28, alpha=0.8, color=KIND_COLORS.get(kind, "#333333"), label=f"{kind} ({len(rows)})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs / byte)")
    ax.set_ylabel("achieved GFLOP/s (FLOPs = 2 x MACs)")
    skipped = len(doc["layers"]) - len(points)
    ax.set_title(f"roofline, one point per layer with MACs ({skipped} without MACs not shown)", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")


def share_axes(ax, doc: dict[str, Any]) -> None:  # noqa: ANN001
    rows = doc["by_kind"]
    xs = range(len(rows))
    colors = [KIND_COLORS.get(r["kind"], "#333333") for r in rows]
    ax.bar([x - 0.2 for x in xs], [100 * r["macs_share"] for r in rows], width=0.4, color="white",
           edgecolor=colors, hatch="///", label="share of MACs (hatched)")
    ax.bar([x + 0.2 for x in xs], [100 * r["time_share"] for r in rows], width=0.4, color=colors,
           label="share of time (filled)")
    ax.set_xticks(list(xs), [r["kind"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("% of the model")
    ax.set_title("by kind: share of MACs (hatched) against share of measured time (filled)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8)


def save_plot(doc: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`figure` as a PNG to ``path`` (atomically)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plot={str(path)!r} must end in .png")
    data = png_bytes(figure(doc))
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def _kinds(doc: dict[str, Any]) -> list[str]:
    return [row["kind"] for row in doc["by_kind"]]
