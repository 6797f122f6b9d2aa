"""Several models side by side: one summary document, table, chart and page from their profiles.

:func:`summary_dict` reads the JSON documents of :func:`sepconv.profile.report.to_dict` (one per
model, profiled on one machine at one input) and keeps, per model, what answers "which trains
(or runs) faster, and why": params, forward MACs, training MACs, the depthwise layers' share of
the MACs and of the measured time, peak memory of the eager fp32 training step, and the step time
and images/s of every backend and precision at the largest batch. For inference profiles (no
``training``) the same columns come from the inference half: MACs and time of the forward, the
backends' latency and samples/s, no memory.

Example::

    >>> summary = summary_dict([doc_vgg, doc_mnv1], ["vgg16.json", "mobilenet_v1.json"])  # doctest: +SKIP
    >>> [row["spec"] for row in summary["models"]]  # doctest: +SKIP
    ['vgg16', 'mobilenet_v1']
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from rich.table import Table

from .._util.figures import new_figure, png_bytes
from .._util.io import atomic_write, atomic_write_text
from .._util.version import __version__
from .html import CSS, rich_table_html
from .numbers import cell
from .plot import KIND_COLORS

__all__ = ["SUMMARY", "file_stems", "render_summary_html", "save_summary_html", "save_summary_plot", "summary_dict",
           "summary_figure", "summary_table"]

SUMMARY = "summary"  # the stem of the summary's files in an output directory


def file_stems(specs: Sequence[str]) -> list[str]:
    """A file name stem per model spec, safe on every file system and unique (never ``summary``).

    Example::

        >>> file_stems(["mobilenet_v1", "mobilenet_v1:conv=standard", "runs/a/model.safetensors", "summary"])
        ['mobilenet_v1', 'mobilenet_v1-conv=standard', 'runs_a_model.safetensors', 'summary-2']
    """
    stems: list[str] = []
    for spec in specs:
        stem = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", spec.replace(":", "-")).strip("._") or "model"
        candidate, n = stem, 1
        while candidate in stems or candidate == SUMMARY:
            n += 1
            candidate = f"{stem}-{n}"
        stems.append(candidate)
    return stems


def _depthwise_shares(doc: dict[str, Any]) -> tuple[float, float]:
    """The depthwise layers' share of the MACs and of the measured time (training step if profiled)."""
    if doc.get("training"):
        kinds = doc["training"]["by_kind"]
        dw = [row for row in kinds if row["kind"] == "depthwise"]
        macs = sum(row["forward_macs_share"] + row["backward_macs_share"] for row in dw)
        time_ = sum(row["forward_time_share"] + row["backward_time_share"] for row in dw)
        return macs, time_
    dw = [row for row in doc["by_kind"] if row["kind"] == "depthwise"]
    return sum(row["macs_share"] for row in dw), sum(row["time_share"] for row in dw)


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows at the largest batch: training steps, or the inference backends."""
    if doc.get("training"):
        rows = doc["training"]["steps"]
        keep = [(r["backend"], r["precision"], r["status"], r["median_ms"], r["images_per_s"], r["peak_memory_bytes"])
                for r in rows if r["batch"] == max(x["batch"] for x in rows)]
    else:
        rows = doc["backends"]
        keep = [(r["backend"], "fp32", r["status"], r["median_ms"], r["samples_per_s"], None)
                for r in rows if r["batch"] == max(x["batch"] for x in rows)]
    batch = max(r["batch"] for r in rows) if rows else None
    return [{"backend": b, "precision": p, "batch": batch, "status": s, "median_ms": ms, "images_per_s": ips,
             "peak_memory_bytes": mem} for b, p, s, ms, ips, mem in keep]


def summary_dict(docs: Sequence[dict[str, Any]], documents: Sequence[str | None] | None = None) -> dict[str, Any]:
    """The summary document of several profiles (``documents``: the stem of each one's files,
    ``<stem>.json``/``.png``/``.html`` beside the summary's, or None)."""
    if not docs:
        raise ValueError("docs=[] must hold at least one profile document")
    documents = list(documents) if documents is not None else [None] * len(docs)
    if len(documents) != len(docs):
        raise ValueError(f"documents: {len(documents)} names for {len(docs)} profile documents")
    first = docs[0]
    models = []
    for doc, name in zip(docs, documents):
        training = doc.get("training")
        steps = _steps(doc)
        eager = next((s for s in steps if (s["backend"], s["precision"]) == ("eager", "fp32")), None)
        macs_share, time_share = _depthwise_shares(doc)
        models.append({
            "spec": doc["model"]["spec"], "description": doc["model"]["description"], "document": name,
            "params": doc["model"]["params"], "macs": doc["model"]["macs"],
            "training_macs": training["macs"] if training else None,
            "depthwise_macs_share": macs_share, "depthwise_time_share": time_share,
            "peak_memory_bytes": eager["peak_memory_bytes"] if eager else None,
            "steps": steps,
        })
    return {
        "schema_version": first["schema_version"], "sepconv_version": __version__,
        "input_shape": first["input_shape"], "batch": first["batch"], "threads": first["threads"],
        "train": all(doc.get("training") for doc in docs), "machine": first["machine"], "models": models,
    }


def _columns(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (backend, precision) that some model has, in the order first met."""
    return list(dict.fromkeys((s["backend"], s["precision"]) for row in summary["models"] for s in row["steps"]))


def summary_table(summary: dict[str, Any]) -> Table:
    """One row per model: params, MACs, depthwise shares, peak memory, each backend's time and images/s."""
    what = "training step" if summary["train"] else "forward"
    batch = next((s["batch"] for row in summary["models"] for s in row["steps"]), summary["batch"])
    table = Table(title=f"Side by side: {what} per model (input {'x'.join(map(str, summary['input_shape']))}, "
                        f"backends at batch {batch}, {summary['threads']} threads)",
                  caption="MMACs: one training step (forward + input gradients + weight gradients) when trained, "
                          "else one forward; dw = depthwise layers' share of those MACs and of the measured layer "
                          "time; peak MB: the eager fp32 step's; each backend: median ms per step (images/s)")
    heads = ["model", "params", "MMACs", "dw MAC share", "dw time share", "peak MB"]
    columns = _columns(summary)
    heads += [f"{backend} {precision}" for backend, precision in columns]
    for head in heads:
        table.add_column(head, justify="left" if head == "model" else "right")
    for row in summary["models"]:
        macs = row["training_macs"] if summary["train"] else row["macs"]
        cells = [row["spec"], f"{row['params']:,}", f"{macs / 1e6:,.1f}", f"{100 * row['depthwise_macs_share']:.1f}%",
                 f"{100 * row['depthwise_time_share']:.1f}%",
                 cell(None if row["peak_memory_bytes"] is None else row["peak_memory_bytes"] / 1e6, ",.1f")]
        by_column = {(s["backend"], s["precision"]): s for s in row["steps"]}
        for column in columns:
            s = by_column.get(column)
            if s is None:
                cells.append("—")
            elif s["status"] != "ok":
                cells.append(s["status"])
            else:
                cells.append(f"{s['median_ms']:,.1f} ({s['images_per_s']:,.1f})")
        table.add_row(*cells)
    return table


def summary_figure(summary: dict[str, Any]):  # noqa: ANN201 - matplotlib.figure.Figure
    """Left, images/s per model for each backend and precision; right, the depthwise share of the
    MACs against its share of the time, per model."""
    fig = new_figure((13, 5.2))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    models, columns = summary["models"], _columns(summary)
    width = 0.8 / max(1, len(columns))
    for i, column in enumerate(columns):
        values = []
        for row in models:
            s = {(x["backend"], x["precision"]): x for x in row["steps"]}.get(column)
            values.append(s["images_per_s"] if s and s["status"] == "ok" else 0.0)
        left.bar([m + i * width - 0.4 + width / 2 for m in range(len(models))], values, width=width,
                 label=" ".join(column))
    left.set_xticks(range(len(models)), [row["spec"] for row in models], rotation=20, ha="right")
    left.set_ylabel("images/s" if summary["train"] else "samples/s")
    left.set_title(("training step" if summary["train"] else "forward") + " throughput per backend", fontsize=10)
    left.legend(fontsize=8)
    left.grid(True, axis="y", alpha=0.25)
    xs = range(len(models))
    right.bar([x - 0.2 for x in xs], [100 * row["depthwise_macs_share"] for row in models], width=0.4, color="white",
              edgecolor=KIND_COLORS["depthwise"], hatch="///", label="depthwise share of MACs (hatched)")
    right.bar([x + 0.2 for x in xs], [100 * row["depthwise_time_share"] for row in models], width=0.4,
              color=KIND_COLORS["depthwise"], label="depthwise share of time (filled)")
    right.set_xticks(list(xs), [row["spec"] for row in models], rotation=20, ha="right")
    right.set_ylabel("% of the model")
    right.set_title("depthwise layers: share of MACs against share of measured time", fontsize=10)
    right.legend(fontsize=8)
    right.grid(True, axis="y", alpha=0.25)
    fig.suptitle(f"{len(models)} models, input {'x'.join(map(str, summary['input_shape']))}, {summary['threads']} "
                 f"threads — {summary['machine']['cpu']}")
    return fig


def save_summary_plot(summary: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`summary_figure` as a PNG to ``path`` (atomically)."""
    path = Path(path)
    data = png_bytes(summary_figure(summary))
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def render_summary_html(summary: dict[str, Any], charts: bool = True) -> str:
    """The summary as one self-contained page: the table, the chart, a link to each model's page
    (``<document>.html``, beside the summary) when there is one."""
    rows = []
    for row in summary["models"]:
        page = None if row["document"] is None else f"{row['document']}.html"
        label = escape(row["spec"])
        rows.append(f'<li><a href="{escape(page)}">{label}</a></li>' if page else f"<li>{label}</li>")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>sepconv profile: {len(summary['models'])} models</title><style>{CSS}</style></head><body>",
             f"<h1>sepconv profile: {len(summary['models'])} models side by side</h1>",
             rich_table_html(summary_table(summary))]
    if charts:
        image = base64.b64encode(png_bytes(summary_figure(summary))).decode("ascii")
        parts.append(f'<img alt="throughput and depthwise shares per model" src="data:image/png;base64,{image}">')
    parts += ["<h2>Each model</h2>", f"<ul>{''.join(rows)}</ul>",
              f"<p class=\"note\">sepconv {escape(str(summary['sepconv_version']))}, JSON schema "
              f"{summary['schema_version']}.</p>", "</body></html>"]
    return "\n".join(parts) + "\n"


def save_summary_html(summary: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`render_summary_html` to ``path`` (atomically)."""
    path = Path(path)
    atomic_write_text(path, render_summary_html(summary))
    return path
