"""``sepconv models``: every registered model with its parameters and MACs beside the paper's."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from .registry import create_model, list_models, model_entry, parse_spec


def default_specs() -> list[str]:
    """Every registered model, then every other row of its paper's tables that it can build."""
    specs = []
    for name in list_models():
        specs += [name] + [f"{name}:{variant}" for variant in model_entry(name).variants]
    return specs


def zoo_rows(specs: list[str] | None = None) -> list[dict[str, Any]]:
    """Params and Conv2d + Linear MACs of each model at its default resolution, with the paper's.

    ``specs`` are names with optional arguments (``mobilenet_v1:width_mult=0.5``); the paper's
    figures are shown for the default configuration and for the table rows the entry lists.
    """
    from ..cost import analyze

    rows = []
    for spec in specs or default_specs():
        name, kwargs = parse_spec(spec)
        entry = model_entry(name)
        model = create_model(name, **kwargs)
        report = analyze(model, (1, 3, entry.input_size, entry.input_size))
        suffix = spec.partition(":")[2]
        paper_params, paper_macs = (entry.paper_params, entry.paper_macs) if not suffix else \
            entry.variants.get(suffix, (None, None))
        rows.append({
            "model": spec,
            "paper": entry.paper,
            "input_size": entry.input_size,
            "params": report.params,
            "macs": report.macs,
            "paper_params": paper_params,
            "paper_macs": paper_macs,
            "params_diff_pct": _diff(report.params, paper_params),
            "macs_diff_pct": _diff(report.macs, paper_macs),
        })
    return rows


def _diff(ours: float, paper: float | None) -> float | None:
    return None if paper is None else round(100.0 * (ours - paper) / paper, 2)


def _fmt(value: float | None, scale: float, unit: str) -> str:
    return "—" if value is None else f"{value / scale:,.2f}{unit}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}%"


def table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="sepconv model zoo (MACs = multiply-accumulates of Conv2d + Linear, batch 1)")
    for col in ("model", "input", "params", "paper params", "Δ", "MACs", "paper MACs", "Δ", "paper"):
        t.add_column(col, justify="left" if col in ("model", "paper") else "right")
    for r in rows:
        t.add_row(r["model"], str(r["input_size"]), f"{r['params']:,}", _fmt(r["paper_params"], 1e6, "M"),
                  _pct(r["params_diff_pct"]), f"{r['macs']:,}", _fmt(r["paper_macs"], 1e6, "M"),
                  _pct(r["macs_diff_pct"]), r["paper"])
    return t


def run(args: argparse.Namespace) -> int:
    rows = zoo_rows(args.names or None)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        Console().print(table(rows))
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
