"""The profile as a JSON document (a stable schema) and as rich terminal tables.

:func:`to_dict` is the single source of every derived number (achieved GFLOP/s and GB/s, roofline
bound, shares by kind); the tables, :mod:`~sepconv.profile.plot` and :mod:`~sepconv.profile.html`
all render that dict, so a saved JSON renders the same charts and page as a live run.

Schema version 3 (units are in the key names; MACs = multiply-accumulates, FLOPs = 2 x MACs,
1 GB = 1e9 bytes, times in milliseconds per call, medians over ``timing.repeats`` rounds):

- ``schema_version``, ``sepconv_version``, ``input_shape``, ``batch``, ``threads``;
- ``model``: ``spec``, ``description``, ``impl`` (the convolution implementation: "native", or
  "im2col", Caffe's algorithm reproduced), ``params``, ``macs``, ``flops``, ``bytes``;
- ``machine``: ``cpu``, ``threads``, ``torch_version``, ``peak_gflops_per_s``, ``bandwidth_gb_per_s``,
  ``ridge_flops_per_byte``, ``gemm_n``, ``stream_bytes``, ``measured_at``, ``load_average``, ``cores``,
  ``busy`` (load average at or above 3/4 of the cores while measuring), ``remeasure_command``;
- ``timing``: ``repeats`` (timed rounds made), ``warmup``, ``budget_s`` (the time cap that may
  have cut the rounds short), ``statistic``, ``load_average`` and ``cores`` when the timing ended,
  ``busy`` (load average at or above 3/4 of the cores), ``layers_time_ms`` (sum of the layers'
  medians), ``model_time_ms`` (whole model, eager, sampled in the same rounds),
  ``layers_to_model_ratio``;
- ``layers``: per leaf-module call, :meth:`sepconv.cost.LayerCost.to_dict`'s keys plus
  ``time_ms``, ``p90_ms``, ``gflops_per_s``, ``gb_per_s``, ``roofline_ms``,
  ``roofline_fraction`` (roofline time / measured time) and ``bound`` ("memory", "compute", "none");
- ``by_kind``: ``kind``, ``layers``, ``params``, ``macs``, ``bytes``, ``time_ms``, ``macs_share``,
  ``time_share``, ``gflops_per_s``;
- ``backends``: :class:`sepconv.engines.runner.BackendResult`'s ``backend`` (the runner that ran),
  ``batch``, ``status`` ("ok"/"failed"), ``bn_folded`` (whether it ran the BN-folded model),
  ``error``, ``max_abs_diff`` (from eager PyTorch on the model as given), ``repeats``,
  ``median_ms``, ``p90_ms``, ``samples_per_s``, ``speedup_vs_eager``.

- ``training``: None, or with ``train=True`` the training half (:mod:`~sepconv.profile.training_report`):
  ``precision`` (of the per-layer rows: fp32), ``optimizer``, ``loss``, ``memory_method`` (how
  ``peak_memory_bytes`` is measured), ``repeats`` (rounds made), ``forward_macs``,
  ``input_grad_macs``, ``weight_grad_macs``, ``macs`` (their sum: one training step),
  ``model_forward_ms``, ``model_backward_ms``, ``model_time_ms`` (forward + backward of the whole
  model, sampled in the same rounds as the layers), ``layers_time_ms``, ``layers_to_model_ratio``,
  ``saved_activation_bytes`` (what the whole forward keeps for backward), and:

  - ``layers``: per leaf-module call ``name``, ``type``, ``kind``, ``input_shape``, ``output_shape``,
    ``params``, ``needs_input_grad``, ``trains_weight``, ``saved_activation_bytes`` (what the call
    keeps for backward), and one *pass* object (or None where the call has no such pass) for each
    of ``forward``, ``backward``, ``input_grad`` and ``weight_grad``;
  - a pass: ``macs`` (the cost model's: input gradient = weight gradient = forward, for any groups),
    ``bytes``, ``intensity_flops_per_byte``, ``time_ms``, ``p90_ms``, ``gflops_per_s``, ``gb_per_s``,
    ``roofline_ms``, ``roofline_fraction``, ``bound`` (the times None where the pass is not timed
    alone: only convolutions are split into their input- and weight-gradient passes);
  - ``by_kind``: ``kind``, ``layers``, ``forward_macs``, ``backward_macs``, ``forward_ms``,
    ``backward_ms``, ``forward_macs_share``, ``backward_macs_share``, ``forward_time_share``,
    ``backward_time_share`` (shares of the whole step's MACs and of the layers' time),
    ``forward_gflops_per_s``, ``backward_gflops_per_s``;
  - ``steps``: :class:`sepconv.profile.step.StepResult`'s ``backend``, ``precision``, ``batch``,
    ``status`` ("ok", "failed", "skipped"), ``error``, ``repeats``, ``median_ms``, ``p90_ms``,
    ``images_per_s``, ``peak_memory_bytes``, ``speedup_vs_eager`` (over eager fp32).

Version 2 added ``bn_folded`` and ``max_abs_diff`` to ``backends`` and renamed the torch.compile
backend from ``compile`` to ``inductor``; version 3 added ``training`` and ``model.impl``. Several models profiled
together also write a summary document (:mod:`~sepconv.profile.summary`, ``SCHEMA["summary"]``).

Example::

    >>> doc = to_dict(profile)  # a Profile from sepconv.profile.profile_model
    >>> sorted(doc)[:4]  # doctest: +SKIP
    ['backends', 'batch', 'by_kind', 'input_shape']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .._util.console import stdout_console
from .._util.io import atomic_write_text
from .._util.runtime import is_busy
from .._util.version import __version__
from ..machine import REMEASURE, Machine
from . import training_report
from .numbers import achieved, cell
from .profiler import Profile
from .training_report import training_dict

__all__ = ["RATIO_RANGE", "SCHEMA", "SCHEMA_VERSION", "machine_dict", "print_report", "ratio_warning",
           "tables", "to_dict", "write_json"]

SCHEMA_VERSION = 3
# The keys of every object :func:`to_dict` (and :func:`sepconv.profile.summary.summary_dict`) writes,
# in README's order ("JSON schema"); the tests check both the documents and README against this, so a
# changed key is a deliberate schema change. "training.pass" is the object of each pass of a training
# layer row; "summary" is the document of several models.
SCHEMA: dict[str, tuple[str, ...]] = {
    "top": ("schema_version", "sepconv_version", "input_shape", "batch", "threads",
            "model", "machine", "timing", "layers", "by_kind", "backends", "training"),
    "model": ("spec", "description", "impl", "params", "macs", "flops", "bytes"),
    "machine": ("cpu", "threads", "torch_version", "peak_gflops_per_s", "bandwidth_gb_per_s",
                "ridge_flops_per_byte", "gemm_n", "stream_bytes", "measured_at", "load_average", "cores",
                "busy", "remeasure_command"),
    "timing": ("repeats", "warmup", "budget_s", "statistic", "load_average", "cores", "busy",
               "layers_time_ms", "model_time_ms", "layers_to_model_ratio"),
    "layers": ("name", "type", "kind", "input_shape", "output_shape", "params", "macs", "flops", "weight_bytes",
               "act_bytes_read", "act_bytes_written", "bytes", "intensity_flops_per_byte", "time_ms", "p90_ms",
               "gflops_per_s", "gb_per_s", "roofline_ms", "roofline_fraction", "bound"),
    "by_kind": ("kind", "layers", "params", "macs", "bytes", "time_ms", "macs_share", "time_share", "gflops_per_s"),
    "backends": ("backend", "batch", "status", "bn_folded", "error", "max_abs_diff", "repeats", "median_ms",
                 "p90_ms", "samples_per_s", "speedup_vs_eager"),
    "training": ("precision", "optimizer", "loss", "memory_method", "repeats", "forward_macs", "input_grad_macs",
                 "weight_grad_macs", "macs", "model_forward_ms", "model_backward_ms", "model_time_ms", "layers_time_ms",
                 "layers_to_model_ratio", "saved_activation_bytes", "layers", "by_kind", "steps"),
    "training.layers": ("name", "type", "kind", "input_shape", "output_shape", "params", "needs_input_grad",
                        "trains_weight", "saved_activation_bytes", "forward", "backward", "input_grad", "weight_grad"),
    "training.pass": ("macs", "bytes", "intensity_flops_per_byte", "time_ms", "p90_ms", "gflops_per_s", "gb_per_s",
                      "roofline_ms", "roofline_fraction", "bound"),
    "training.by_kind": ("kind", "layers", "forward_macs", "backward_macs", "forward_ms", "backward_ms",
                         "forward_macs_share", "backward_macs_share", "forward_time_share", "backward_time_share",
                         "forward_gflops_per_s", "backward_gflops_per_s"),
    "training.steps": ("backend", "precision", "batch", "status", "error", "repeats", "median_ms", "p90_ms",
                       "images_per_s", "peak_memory_bytes", "speedup_vs_eager"),
    "summary": ("schema_version", "sepconv_version", "input_shape", "batch", "threads", "train", "machine", "models"),
    "summary.models": ("spec", "description", "document", "params", "macs", "training_macs", "depthwise_macs_share",
                       "depthwise_time_share", "peak_memory_bytes", "steps"),
    "summary.steps": ("backend", "precision", "batch", "status", "median_ms", "images_per_s", "peak_memory_bytes"),
}
# layers_to_model_ratio outside this range: the per-layer times do not account for the whole model's.
RATIO_RANGE = (0.7, 1.3)


def to_dict(profile: Profile) -> dict[str, Any]:
    """The JSON document of ``profile`` (see the module docstring for its schema)."""
    machine, cost = profile.machine, profile.cost
    layers = [_layer(machine, row.to_dict(), t.timing) for row, t in zip(cost.layers, profile.layers.layers)]
    layers_ms, model_ms = profile.layers.layers_ms, profile.layers.model.median_ms
    return {
        "schema_version": SCHEMA_VERSION,
        "sepconv_version": __version__,
        "model": {"spec": profile.model, "description": profile.description, "impl": profile.impl,
                  "params": cost.params,
                  "macs": cost.macs, "flops": cost.flops, "bytes": cost.bytes},
        "input_shape": list(profile.input_shape),
        "batch": profile.batch,
        "threads": profile.threads,
        "machine": machine_dict(machine),
        "timing": {"repeats": len(profile.layers.model.samples_ms), "warmup": profile.warmup,
                   "budget_s": profile.budget_s, "statistic": "median", "load_average": profile.load_average,
                   "cores": profile.cores, "busy": is_busy(profile.load_average, profile.cores),
                   "layers_time_ms": layers_ms, "model_time_ms": model_ms,
                   "layers_to_model_ratio": layers_ms / model_ms if model_ms else None},
        "layers": layers,
        "by_kind": _by_kind(cost.by_kind(), layers),
        "backends": [row.to_dict() for row in profile.backends],
        "training": None if profile.training is None else training_dict(
            machine, profile.training.cost, profile.training.layers, profile.training.steps),
    }


def machine_dict(machine: Machine) -> dict[str, Any]:
    """The document's ``machine`` object: the ceilings and the command that measures them again."""
    return {**machine.to_dict(), "remeasure_command": f"{REMEASURE} --threads {machine.threads}"}


def write_json(doc: dict[str, Any], path: str | Path) -> None:
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def _layer(machine: Machine, row: dict[str, Any], timing: Any) -> dict[str, Any]:
    return {**row, **achieved(machine, row["flops"], row["bytes"], timing.median_ms, timing.p90_ms)}


def _by_kind(kinds: dict[str, Any], layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    total_ms = sum(row["time_ms"] for row in layers)
    out = []
    for kind, cost in kinds.items():
        ms = sum(row["time_ms"] for row in layers if row["kind"] == kind)
        out.append({
            "kind": kind, "layers": cost.layers, "params": cost.params, "macs": cost.macs, "bytes": cost.bytes,
            "time_ms": ms, "macs_share": cost.macs_share, "time_share": ms / total_ms if total_ms else 0.0,
            "gflops_per_s": 2 * cost.macs / (ms * 1e-3) / 1e9 if ms else None,
        })
    return out


# ---------------------------------------------------------------------------------------------
# Terminal tables


def machine_line(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    return (f"{m['cpu']}, {m['threads']} threads, torch {m['torch_version']}: peak {m['peak_gflops_per_s']:.1f} "
            f"GFLOP/s (fp32 GEMM {m['gemm_n']}^2), {m['bandwidth_gb_per_s']:.1f} GB/s streaming, ridge "
            f"{m['ridge_flops_per_byte']:.1f} FLOPs/byte; measured {m['measured_at']}"
            + (f" while the machine was busy (load {m['load_average']} on {m['cores']} cores), so they may be "
               "too low" if m.get("busy") else "")
            + f" (re-measure: {m['remeasure_command']})")


def ratio_warning(doc: dict[str, Any]) -> str | None:
    """A warning when the layers' times add up to less than 70% or more than 130% of the whole
    model's (:data:`RATIO_RANGE`), else None. With several threads on a machine other processes
    also use, OpenMP threads that finish early spin-wait for one that lost its core, at every
    kernel's barrier: the whole model (hundreds of kernels back to back) can run many times slower
    than its layers timed one by one (measured here: layers 6.7 ms, model 240.7 ms, 2 threads on
    2 loaded cores, ``benchmarks/results/profile/loaded_machine.txt``). One thread has no barrier
    to wait at, so there only other processes taking the core explain it; a passive wait policy
    yields the core."""
    ratio = doc["timing"].get("layers_to_model_ratio")
    low, high = RATIO_RANGE
    if ratio is None or low <= ratio <= high:
        return None
    head = (f"warning: the layers add up to {ratio:.0%} of the whole model's time, outside {low:.0%}-{high:.0%}, so "
            "the per-layer times do not account for the model's; ")
    if doc["threads"] == 1:  # no barrier to wait at: only other processes taking the core explain it
        return head + "other processes took the core in between: profile an idle machine"
    return head + (f"with {doc['threads']} threads on a shared machine OpenMP threads spin-wait for busy cores: "
                   "profile with --threads 1 or OMP_WAIT_POLICY=PASSIVE")


def summary_line(doc: dict[str, Any]) -> str:
    t, m = doc["timing"], doc["model"]
    shape = "x".join(map(str, doc["input_shape"]))
    what = m["spec"] if m["description"] == m["spec"] else f"{m['spec']} ({m['description']})"
    return (f"{what}, input {shape}, {doc['threads']} threads: {m['params']:,} params, "
            f"{m['macs'] / 1e6:,.1f}M MACs; layers add up to {t['layers_time_ms']:.2f} ms of the whole model's "
            f"{t['model_time_ms']:.2f} ms eager (median of {t['repeats']} interleaved rounds)"
            + (f"; the machine was busy (load {t['load_average']} on {t['cores']} cores), so times are inflated: "
               "profile an idle machine" if t.get("busy") else ""))


def layer_table(doc: dict[str, Any]) -> Table:
    table = Table(title="Per layer (leaf-module calls, replayed in isolation)",
                  caption="MACs = multiply-accumulates; FLOPs = 2 x MACs; roofline % = roofline-bound time / "
                          "measured time (over 100%: the data came from cache, faster than streaming memory)")
    heads = ("layer", "kind", "output", "params", "MMACs", "MB moved", "FLOPs/B", "time ms", "GFLOP/s", "GB/s",
             "roofline ms", "roofline %", "bound")
    for head in heads:
        table.add_column(head, justify="left" if head in ("layer", "kind", "output", "bound") else "right")
    for row in doc["layers"]:
        table.add_row(
            row["name"], row["kind"], "x".join(map(str, row["output_shape"])), f"{row['params']:,}",
            f"{row['macs'] / 1e6:,.2f}", f"{row['bytes'] / 1e6:,.3f}", f"{row['intensity_flops_per_byte']:.1f}",
            f"{row['time_ms']:.3f}", cell(row["gflops_per_s"] if row["macs"] else None, ".1f"),
            cell(row["gb_per_s"], ".1f"),
            f"{row['roofline_ms']:.3f}", cell(None if row["roofline_fraction"] is None
                                              else 100 * row["roofline_fraction"], ".0f"), row["bound"])
    return table


def kind_table(doc: dict[str, Any]) -> Table:
    table = Table(title="By kind: share of MACs against share of time",
                  caption="time/MAC = time share / MAC share: how much slower per MAC than the model's average")
    for head in ("kind", "layers", "MMACs", "MAC share", "time ms", "time share", "time/MAC", "GFLOP/s"):
        table.add_column(head, justify="left" if head == "kind" else "right")
    for row in doc["by_kind"]:
        ratio = row["time_share"] / row["macs_share"] if row["macs_share"] else None
        table.add_row(row["kind"], str(row["layers"]), f"{row['macs'] / 1e6:,.1f}", f"{100 * row['macs_share']:.1f}%",
                      f"{row['time_ms']:.2f}", f"{100 * row['time_share']:.1f}%", cell(ratio, ".1f"),
                      cell(row["gflops_per_s"] if row["macs"] else None, ".1f"))
    return table


def backend_table(doc: dict[str, Any]) -> Table:
    table = Table(title=f"Whole model per backend ({doc['threads']} threads)",
                  caption="speedup = eager median / this median at the same batch; BN folded: whether the "
                          "backend ran the model with BatchNorm folded into the convs (onnxruntime's export "
                          "always does); max |diff| = largest difference from eager PyTorch")
    for head in ("backend", "batch", "BN folded", "median ms", "p90 ms", "samples/s", "speedup", "max |diff|",
                 "status"):
        table.add_column(head, justify="left" if head in ("backend", "status") else "right")
    for row in doc["backends"]:
        status = "ok" if row["status"] == "ok" else f"failed: {row['error']}"
        table.add_row(row["backend"], str(row["batch"]), "yes" if row["bn_folded"] else "no", cell(row["median_ms"]),
                      cell(row["p90_ms"]), cell(row["samples_per_s"], ",.1f"), cell(row["speedup_vs_eager"], ".2f"),
                      cell(row["max_abs_diff"], ".2g"), status)
    return table


def tables(doc: dict[str, Any]) -> list[Table]:
    """The tables in reading order: per layer, by kind, per backend; then, for a training profile,
    training per layer, by kind and per backend (:mod:`~sepconv.profile.training_report`)."""
    return [layer_table(doc), kind_table(doc), backend_table(doc), *training_report.tables(doc)]


def print_report(doc: dict[str, Any], console: Console | None = None) -> None:
    """Print the machine, the tables and the summary line to ``console`` (stdout by default)."""
    console = console or stdout_console()
    console.print(f"[bold]Machine[/bold]: {machine_line(doc)}", highlight=False, soft_wrap=True)
    for table in tables(doc):
        console.print(table)
    console.print(summary_line(doc), highlight=False, soft_wrap=True)
    if doc.get("training"):
        console.print(training_report.summary_line(doc), highlight=False, soft_wrap=True)
    warning = ratio_warning(doc)
    if warning:
        console.print(warning, style="bold yellow", highlight=False, soft_wrap=True)
