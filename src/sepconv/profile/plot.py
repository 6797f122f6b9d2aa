"""Charts of a profile: the roofline with one point per layer, and MAC share against time share.

Left, the roofline (Williams, Waterman & Patterson 2009), cache-aware (Ilic, Pratas & Sousa
2014): log-log, arithmetic intensity (FLOPs per byte) against achieved GFLOP/s, one point per layer
that does multiply-accumulates, coloured by kind, under every ceiling the machine measured: one
slope per memory level (L1, L2, L3, DRAM: bandwidth x intensity, labelled with its GB/s) and one
flat line per precision's peak (fp32, bf16, fp16, int8, labelled with its value and engine). A
point with a black rim ran above its own ceiling (its level's bandwidth, its precision's peak):
an anomaly. Depthwise layers sit far left, under the bandwidth slopes; pointwise and standard
convs further right. Right, per kind, the share of the model's MACs beside the share of its
measured time (the time of the layers, the parents' functional ops and, on an engine, the nodes
that map to no layer: those two have bars but no points, doing no MACs): the seeds' question
answered in one picture.

For a training profile a second row: the same roofline with one point per measured pass (forward,
and a convolution's input-gradient and weight-gradient passes, each timed alone), and per kind the
share of the training step's MACs against the share of its time, forward and backward apart.

Both render the JSON document of :func:`sepconv.profile.report.to_dict`, with matplotlib's
object API (no pyplot state, no display needed).

Example::

    >>> save_plot(doc, "profile.png")  # doc = to_dict(profile_model(...))
    PosixPath('profile.png')
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .._util.figures import new_figure, png_bytes
from .._util.io import atomic_write

__all__ = ["KIND_COLORS", "PASS_MARKERS", "figure", "save_plot"]

# One colour per cost-model kind (matplotlib's tab10), the same in every chart; "functional" (the
# parents' own ops) and "unmapped" (engine nodes of no layer) have bars in the share chart, no points.
KIND_COLORS = {
    "standard": "#d62728", "depthwise": "#1f77b4", "pointwise": "#2ca02c", "grouped": "#9467bd",
    "spatial": "#8c564b", "linear": "#ff7f0e", "norm": "#7f7f7f", "activation": "#bcbd22", "pool": "#17becf",
    "other": "#e377c2", "functional": "#aec7e8", "unmapped": "#c7c7c7",
}
# One marker per training pass.
PASS_MARKERS = {"forward": "o", "input_grad": "^", "weight_grad": "v"}


def figure(doc: dict[str, Any]):  # noqa: ANN201 - matplotlib.figure.Figure
    """The two charts side by side (four, in two rows, for a training profile), as a
    ``matplotlib.figure.Figure``."""
    training = bool(doc.get("training"))
    rows = 2 if training else 1
    fig = new_figure((13, 5.2 * rows))
    roofline_axes(fig.add_subplot(rows, 2, 1), doc)
    share_axes(fig.add_subplot(rows, 2, 2), doc)
    if training:
        training_roofline_axes(fig.add_subplot(rows, 2, 3), doc)
        training_share_axes(fig.add_subplot(rows, 2, 4), doc)
    model = doc["model"]
    shape = "x".join(map(str, doc["input_shape"]))
    fig.suptitle(f"{model['spec']}, input {shape}, {doc['threads']} threads — {doc['machine']['cpu']}")
    return fig


# One line style per memory level (darker = closer to the core) and one colour per precision's peak.
LEVEL_STYLES = {"L1": ("#111111", "-"), "L2": ("#444444", "--"), "L3": ("#777777", "-."), "DRAM": ("#000000", ":")}
PEAK_COLORS = {"fp32": "#000000", "bf16": "#8c2d04", "fp16": "#6a51a3", "int8": "#006d2c"}


def ceiling_lines(machine: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The measured memory levels and the available compute peaks of a document's ``machine``."""
    levels = [lv for lv in machine["levels"] if lv["bandwidth_gb_per_s"] is not None]
    peaks = [p for p in machine["peaks"] if p["gflops_per_s"] is not None]
    return levels, peaks


def level_label(level: dict[str, Any]) -> str:
    return f"{level['name']} {level['bandwidth_gb_per_s']:,.1f} GB/s"


def peak_label(peak: dict[str, Any]) -> str:
    unit = "GOP/s" if peak["precision"] == "int8" else "GFLOP/s"
    return f"{peak['precision']} {peak['gflops_per_s']:,.0f} {unit} ({peak['engine']})"


def _ceilings(ax, machine: dict[str, Any], xs: list[float]) -> None:  # noqa: ANN001
    """Every measured ceiling over the intensities ``xs``, log-log, each line labelled (its label,
    and a text beside it): each memory level's slope up to the highest peak, each peak flat from
    where the fastest level meets it."""
    levels, peaks = ceiling_lines(machine)
    top = max(p["gflops_per_s"] for p in peaks) if peaks else None
    fastest = max(lv["bandwidth_gb_per_s"] for lv in levels)
    ridges = [p["gflops_per_s"] / lv["bandwidth_gb_per_s"] for p in peaks for lv in levels]
    lo, hi = min(xs + ridges + [1.0]) / 3, max(xs + ridges + [1.0]) * 3
    for i, lv in enumerate(levels):
        bandwidth = lv["bandwidth_gb_per_s"]
        end = hi if top is None else min(hi, top / bandwidth)
        color, style = LEVEL_STYLES.get(lv["name"], ("#333333", "-"))
        ax.plot([lo, end], [bandwidth * lo, bandwidth * end], color=color, linestyle=style, linewidth=1.3,
                label=level_label(lv))
        at = min(lo * 1.3 * 2.5**i, end / 4)  # staggered along the slopes, so that close levels' labels do not meet
        # Along its slope: a direction of (1, bandwidth) in data coordinates, rotated with the log axes.
        ax.text(at, bandwidth * at * 1.05, level_label(lv), fontsize=7, color=color, ha="left", va="bottom",
                rotation=math.degrees(math.atan2(bandwidth, 1.0)), rotation_mode="anchor", transform_rotates_text=True)
    for p in peaks:
        start = max(lo, p["gflops_per_s"] / fastest)
        color = PEAK_COLORS.get(p["precision"], "#333333")
        ax.plot([start, hi], [p["gflops_per_s"]] * 2, color=color, linestyle="-", linewidth=1.3, label=peak_label(p))
        ax.text(hi / 1.15, p["gflops_per_s"] * 1.08, peak_label(p), fontsize=7, color=color, ha="right", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOPs / byte)")
    ax.set_ylabel("achieved GFLOP/s (FLOPs = 2 x MACs)")
    ax.grid(True, which="both", alpha=0.25)


def _legends(ax, kinds_title: str, ncol: int = 1) -> None:  # noqa: ANN001
    """The points' legend (kinds), lower right; the ceilings are labelled on their lines."""
    points = ax.collections
    ax.legend(points, [c.get_label() for c in points], fontsize=7, loc="lower right", ncol=ncol, title=kinds_title,
              title_fontsize=7)


def _edges(rows: list[dict[str, Any]], color: str) -> list[str]:
    """A black rim for a point above its ceiling, its own colour otherwise (matplotlib's alpha would
    make a "none" edge visible)."""
    return ["black" if row.get("above_ceiling") else color for row in rows]


def roofline_axes(ax, doc: dict[str, Any]) -> None:  # noqa: ANN001
    points = [row for row in doc["layers"] if row["flops"] > 0 and row["bytes"] > 0 and row["gflops_per_s"]]
    _ceilings(ax, doc["machine"], [row["intensity_flops_per_byte"] for row in points])
    for kind in _kinds(doc):
        rows = [row for row in points if row["kind"] == kind]
        if rows:
            ax.scatter([r["intensity_flops_per_byte"] for r in rows], [r["gflops_per_s"] for r in rows],
                       s=28, alpha=0.8, color=KIND_COLORS.get(kind, "#333333"), edgecolors=_edges(rows, KIND_COLORS.get(kind, "#333333")),
                       linewidths=1.2, label=f"{kind} ({len(rows)})")
    skipped = len(doc["layers"]) - len(points)
    above = sum(1 for row in doc["layers"] if row.get("above_ceiling"))
    ax.set_title(f"cache-aware roofline: a point per layer with MACs ({skipped} without not shown)\n"
                 f"{above} layers above their ceiling (black rim)", fontsize=9)
    _legends(ax, "layers by kind")


def training_roofline_axes(ax, doc: dict[str, Any]) -> None:  # noqa: ANN001
    """One point per timed training pass with MACs: colour the kind, marker the pass."""
    points = [(row["kind"], name, row[name]) for row in doc["training"]["layers"] for name in PASS_MARKERS
              if row[name] is not None and row[name]["macs"] > 0 and row[name]["bytes"] > 0
              and row[name]["gflops_per_s"]]
    _ceilings(ax, doc["machine"], [p["intensity_flops_per_byte"] for _, _, p in points])
    for kind in dict.fromkeys(kind for kind, _, _ in points):
        for name, marker in PASS_MARKERS.items():
            mine = [p for k, n, p in points if k == kind and n == name]
            if mine:
                ax.scatter([p["intensity_flops_per_byte"] for p in mine], [p["gflops_per_s"] for p in mine], s=28,
                           alpha=0.8, marker=marker, color=KIND_COLORS.get(kind, "#333333"), edgecolors=_edges(mine, KIND_COLORS.get(kind, "#333333")),
                           linewidths=1.2, label=f"{kind} {name.replace('_', '-')} ({len(mine)})")
    ax.set_title("training roofline: forward (o), input-gradient (^) and weight-gradient (v) passes\n"
                 "black rim: above its ceiling", fontsize=9)
    _legends(ax, "passes by kind", ncol=2)


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


def training_share_axes(ax, doc: dict[str, Any]) -> None:  # noqa: ANN001
    """Per kind: share of the training step's MACs against share of its time, forward and backward."""
    rows = doc["training"]["by_kind"]
    xs = range(len(rows))
    colors = [KIND_COLORS.get(r["kind"], "#333333") for r in rows]
    bars = (("forward_macs_share", "///", "white", "forward MACs (hatched)"),
            ("forward_time_share", None, None, "forward time (filled)"),
            ("backward_macs_share", "xxx", "white", "backward MACs (cross-hatched)"),
            ("backward_time_share", None, None, "backward time (filled, lighter)"))
    for i, (key, hatch, face, label) in enumerate(bars):
        ax.bar([x - 0.3 + 0.2 * i for x in xs], [100 * r[key] for r in rows], width=0.2, hatch=hatch,
               color=face or colors, edgecolor=colors, alpha=0.55 if key == "backward_time_share" else 1.0,
               label=label)
    ax.set_xticks(list(xs), [r["kind"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("% of the training step")
    ax.set_title("training by kind: share of MACs against share of time, forward then backward", fontsize=10)
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
