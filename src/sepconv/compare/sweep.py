"""``sepconv compare --sweep PARAM[=V1,V2,...] [--plot FILE.png]``: cost and time over one parameter.

:func:`sepconv.compare.compare_layer` builds one conv layer in all its forms (standard, grouped,
depthwise-separable, spatially separable, segmented), counts and times them; a sweep repeats that
over the values of one parameter and shows, per form, how the MACs and the measured time move:
Xception's spectrum (Chollet 2017, Section 1.2, Fig. 4) over ``segments`` 1 ... N between the
regular conv and the depthwise-separable extreme, Keras's ``depth_multiplier``, channel counts,
kernel sizes, map sizes. The other parameters are compare's own options.

This module hooks into ``sepconv compare``: :func:`extend_compare` adds ``--sweep`` and ``--plot``
to the parser that :mod:`sepconv.compare` registered and wraps its ``func`` (registered from
:mod:`sepconv.cli.profile`, which :mod:`sepconv.cli` lists after ``sepconv.compare``).

Example::

    >>> doc = sweep_layer("segments", [1, 2, 4], in_channels=8, out_channels=4, repeats=0)
    >>> [p["value"] for p in doc["points"]], doc["points"][0]["forms"][-1]["form"]
    ([1, 2, 4], 'segmented')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from .._util.io import atomic_write

__all__ = ["PARAMETERS", "parse_sweep", "save_sweep_plot", "sweep_layer", "sweep_table"]

# Sweepable parameters (compare_layer's names; "channels" sets input and output channels together)
# and the values swept when none are given (a function of the base configuration).
PARAMETERS: dict[str, Callable[[dict[str, Any]], list[int]]] = {
    "segments": lambda c: _divisors(c["out_channels"]),
    "depth_multiplier": lambda c: [1, 2, 4, 8],
    "channels": lambda c: [16, 32, 64, 128, 256],
    "in_channels": lambda c: [16, 32, 64, 128, 256],
    "out_channels": lambda c: [16, 32, 64, 128, 256],
    "kernel": lambda c: [1, 3, 5, 7],
    "size": lambda c: [14, 28, 56, 112],
    "groups": lambda c: _divisors(math.gcd(c["in_channels"], c["out_channels"])),
    "stride": lambda c: [1, 2],
    "batch": lambda c: [1, 2, 4, 8],
}


def parse_sweep(text: str, config: dict[str, Any]) -> tuple[str, list[int]]:
    """``"segments"`` or ``"kernel=3,5,7"`` -> (parameter, values); dashes may stand for underscores.

    Example::

        >>> parse_sweep("depth-multiplier=1,2", {}), parse_sweep("segments", {"out_channels": 4})
        (('depth_multiplier', [1, 2]), ('segments', [1, 2, 4]))
    """
    name, eq, values = str(text).partition("=")
    name = name.strip().replace("-", "_")
    if name not in PARAMETERS:
        raise ValueError(f"sweep={text!r}: the parameter must be one of {', '.join(PARAMETERS)} "
                         "(optionally =V1,V2,...)")
    if not eq:
        return name, PARAMETERS[name](config)
    parts = [v.strip() for v in values.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"sweep={text!r}: the values must be positive integers separated by commas")
    return name, list(dict.fromkeys(int(p) for p in parts))


def sweep_layer(parameter: str, values: Sequence[int], **config: Any) -> dict[str, Any]:
    """Run :func:`~sepconv.compare.compare_layer` with ``config`` and ``parameter`` set to each value.

    Returns the JSON document: ``sweep`` (``parameter``, ``values``), ``threads`` and ``points``,
    one per value: ``{"value": v, **CompareResult.to_dict()}`` (``config`` and ``forms`` with
    ``params``, ``macs``, ``latency_ms``... as ``sepconv compare --json`` documents them). Each
    value times every form afresh, those the value does not change too, so that every point's
    speed-ups are ratios of timings taken side by side, not across minutes of a changing machine.
    """
    from .layer import compare_layer

    if parameter not in PARAMETERS:
        raise ValueError(f"parameter={parameter!r} must be one of {', '.join(PARAMETERS)}")
    if not values:
        raise ValueError(f"values for {parameter} must not be empty")
    points, threads = [], None
    for value in values:
        kwargs = {**config, **({"in_channels": value, "out_channels": value} if parameter == "channels"
                               else {parameter: value})}
        result = compare_layer(**kwargs)
        threads = result.threads
        points.append({"value": value, **result.to_dict()})
    return {"sweep": {"parameter": parameter, "values": list(values)}, "threads": threads, "points": points}


def _forms(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(form, label) of every form applicable at some value, in compare's order."""
    labels = {row["form"]: row["label"].split(" ")[0]
              for point in doc["points"] for row in point["forms"] if row["applicable"]}
    return [(row["form"], labels[row["form"]]) for row in doc["points"][0]["forms"] if row["form"] in labels]


def _cell(point: dict[str, Any], form: str) -> dict[str, Any] | None:
    row = next(r for r in point["forms"] if r["form"] == form)
    return row if row["applicable"] else None


def _impls(doc: dict[str, Any]) -> list[str]:
    """The implementations every form was timed with (``sepconv compare --impl``; native alone by default)."""
    return doc["points"][0]["config"].get("impl", ["native"])


def _median_ms(row: dict[str, Any] | None, impl: str) -> float | None:
    """``row``'s median time under ``impl`` (None where not applicable or not timed)."""
    if row is None:
        return None
    runs = {run["impl"]: run for run in row.get("by_impl", [])}
    latency = runs[impl]["latency_ms"] if runs else row["latency_ms"]
    return None if latency is None else latency["median_ms"]


def sweep_table(doc: dict[str, Any]) -> Table:
    """One row per value; per form its MACs and median time per implementation (a dash where the form
    does not apply)."""
    parameter = doc["sweep"]["parameter"]
    impls = _impls(doc)
    table = Table(title=f"sweep of {parameter}: MACs and median time per form ({doc['threads']} threads)",
                  caption="MACs = multiply-accumulates; times are medians (ms) of compare's --repeats runs"
                          + ("" if impls == ["native"] else "; im2col = Caffe's historical algorithm, reproduced "
                                                            "(not a recommended path)"))
    table.add_column(parameter, justify="right")
    forms = _forms(doc)
    for _, label in forms:
        table.add_column(f"{label}\nMMACs", justify="right")
        for impl in impls:
            table.add_column("ms" if impls == ["native"] else f"{impl}\nms", justify="right")
    for point in doc["points"]:
        cells = [str(point["value"])]
        for form, _ in forms:
            row = _cell(point, form)
            cells.append("—" if row is None else f"{row['macs'] / 1e6:,.3f}")
            cells += ["—" if (ms := _median_ms(row, impl)) is None else f"{ms:.3f}" for impl in impls]
        table.add_row(*cells)
    return table


def save_sweep_plot(doc: dict[str, Any], path: str | Path) -> Path:
    """MACs (left) and median time (right) against the swept value, one line per form, as a PNG."""
    from .._util.figures import new_figure, png_bytes

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plot={str(path)!r} must end in .png")
    parameter = doc["sweep"]["parameter"]
    fig = new_figure((12, 4.8))
    xs = list(range(len(doc["points"])))
    impls = _impls(doc)
    for i, (key, ylabel) in enumerate((("macs", "MACs (multiply-accumulates)"), ("ms", "median time (ms)"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for form, label in _forms(doc):
            for impl in impls if key == "ms" else impls[:1]:
                ys = []
                for point in doc["points"]:
                    row = _cell(point, form)
                    value = _median_ms(row, impl) if key == "ms" else None if row is None else row["macs"]
                    ys.append(float("nan") if value is None else value)
                name = label if key == "macs" or len(impls) == 1 else f"{label} ({impl})"
                ax.plot(xs, ys, marker="o", label=name, linestyle="--" if key == "ms" and impl == "im2col" else "-")
        ax.set_xticks(xs, [str(p["value"]) for p in doc["points"]])
        ax.set_yscale("log")
        ax.set_xlabel(parameter)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
    fig.suptitle(f"sepconv compare --sweep {parameter} ({doc['threads']} threads)")
    data = png_bytes(fig)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
