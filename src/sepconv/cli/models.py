"""``sepconv models``: every registered model with its parameters and MACs beside the paper's."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from ..models.provenance import provenance_of
from ..models.registry import list_models, model_entry, paper_figures

TITLE = "sepconv model zoo"
MACS = "MACs = multiply-accumulates of Conv2d + Linear, batch 1"


def default_specs() -> list[str]:
    """Every registered model, then every other configuration its papers print figures for."""
    specs = []
    for name in list_models():
        specs.append(name)
        for fig in model_entry(name).figures:
            if fig.kwargs:
                specs.append(f"{name}:" + ",".join(f"{k}={_spec_value(v)}" for k, v in fig.kwargs.items()))
    return specs


def _spec_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def zoo_rows(specs: list[str] | None = None) -> list[dict[str, Any]]:
    """Params and Conv2d + Linear MACs of each model at its default input, with the paper's.

    ``specs`` are zoo model references (:func:`sepconv.resolve.resolve_model`): names with optional
    arguments (``mobilenet_v1:width_mult=0.5``), or checkpoints of zoo models. The input is the
    resolver's (the model's own channels and ``img_size``); the paper's figures are those printed
    for the configuration the arguments build, compared argument by argument
    (:func:`sepconv.models.paper_figures`).
    """
    from ..cost import analyze
    from ..resolve import resolve_model

    rows = []
    for spec in specs or default_specs():
        resolved = resolve_model(spec)
        provenance = provenance_of(resolved.model)
        if provenance is None:
            raise ValueError(f"model={spec!r} is no zoo model: sepconv models compares zoo models with their papers")
        entry, shape = model_entry(provenance.model), resolved.input_shape
        report = analyze(resolved.model, shape)
        fig = None if provenance.separation else paper_figures(provenance.model, provenance.kwargs)
        paper_params, paper_macs = (fig.params, fig.macs) if fig else (None, None)
        rows.append({
            "model": spec,
            "paper": entry.paper,
            "input_size": shape[-1],
            "in_chans": shape[1],
            "params": report.params,
            "macs": report.macs,
            "paper_params": paper_params,
            "paper_macs": paper_macs,
            "paper_source": fig.source if fig else None,
            "params_diff_pct": _diff(report.params, paper_params),
            "macs_diff_pct": _diff(report.macs, paper_macs),
        })
    return rows


def _diff(ours: float, paper: float | None) -> float | None:
    return None if paper is None else round(100.0 * (ours - paper) / paper, 2)


def _fmt(value: float | None, scale: float, unit: str) -> str:
    return "—" if value is None else f"{value / scale:,.6g}{unit}"  # as printed: 0.99M, 4,866M


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}%"


def sources(rows: list[dict[str, Any]]) -> list[str]:
    """The distinct sources of the paper figures, in order of first use; row references are 1-based."""
    out: list[str] = []
    for r in rows:
        if r["paper_source"] and r["paper_source"] not in out:
            out.append(r["paper_source"])
    return out


def tables(rows: list[dict[str, Any]], width: int | None = None) -> list[Table]:
    """The zoo as one table, or, when ``width`` columns cannot hold it, as two (parameters, then
    MACs), so that no model name or count is cut; only a spec too long for even those folds onto
    a second line. ``ref`` numbers the figure sources listed by :func:`sources`."""
    refs = sources(rows)
    ref = [str(refs.index(r["paper_source"]) + 1) if r["paper_source"] else "" for r in rows]
    params = [("params", [f"{r['params']:,}" for r in rows]),
              ("paper", [_fmt(r["paper_params"], 1e6, "M") for r in rows]),
              ("Δ", [_pct(r["params_diff_pct"]) for r in rows])]
    macs = [("MACs", [f"{r['macs']:,}" for r in rows]),
            ("paper", [_fmt(r["paper_macs"], 1e6, "M") for r in rows]),
            ("Δ", [_pct(r["macs_diff_pct"]) for r in rows])]
    lead = [("model", [r["model"] for r in rows]), ("input", [str(r["input_size"]) for r in rows])]
    tail = [("ref", ref)]
    one = [_table(f"{TITLE} ({MACS})", lead + params + macs + tail)]
    two = [_table(f"{TITLE}: parameters", lead + params + tail), _table(MACS, lead + macs + tail)]
    if width is None or _fits(one, width):
        return one
    if _fits(two, width):
        return two
    return [_table(f"{TITLE}: parameters", lead + params + tail, fold_names=True),
            _table(MACS, lead + macs + tail, fold_names=True)]


def _fits(group: list[Table], width: int) -> bool:
    return all(Console(width=10_000).measure(t).maximum <= width for t in group)


def _table(title: str, columns: list[tuple[str, list[str]]], fold_names: bool = False) -> Table:
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
              padding=(0, 1), collapse_padding=True)
    for header, _ in columns:
        # numbers never wrap; a model spec does only when nothing else fits (``fold_names``)
        t.add_column(header, justify="left" if header == "model" else "right", overflow="fold",
                     no_wrap=not (fold_names and header == "model"))
    for cells in zip(*(values for _, values in columns)):
        t.add_row(*cells)
    return t


def run(args: argparse.Namespace) -> int:
    rows = zoo_rows(args.names or None)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console = Console()
    for t in tables(rows, console.width):
        console.print(t)
    for i, source in enumerate(sources(rows), start=1):
        console.print(f"[{i}] {source}", highlight=False, markup=False)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the model zoo with params and MACs against the papers",
                              description="Every registered model at its default input size: parameters and "
                                          "Conv2d + Linear MACs, beside the paper's figures and the difference.")
    p.add_argument("names", nargs="*", metavar="MODEL",
                   help="only these models, with arguments if wanted (mobilenet_v1:width_mult=0.5); "
                        "default: every model and the paper-table rows it reproduces")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
