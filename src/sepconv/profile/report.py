"""The profile as a JSON document (a stable schema) and as rich terminal tables.

:func:`to_dict` is the single source of every derived number (achieved GFLOP/s and GB/s, roofline
bound, shares by kind); the tables, :mod:`~sepconv.profile.plot` and :mod:`~sepconv.profile.html`
all render that dict, so a saved JSON renders the same charts and page as a live run.

Schema version 4 (units are in the key names; MACs = multiply-accumulates, FLOPs = 2 x MACs,
1 GB = 1e9 bytes, times in milliseconds per call, medians over ``timing.repeats`` rounds):

- ``schema_version``, ``sepconv_version``, ``input_shape``, ``batch``, ``threads``;
- ``model``: ``spec``, ``description``, ``impl`` (the convolution implementation: "native", or
  "im2col", Caffe's algorithm reproduced), ``params``, ``macs``, ``flops``, ``bytes``;
- ``machine`` (:class:`sepconv.machine.Machine`): ``cpu``, ``threads``, ``torch_version``,
  ``peak_gflops_per_s`` (the fp32 peak), ``bandwidth_gb_per_s`` (DRAM's), ``ridge_flops_per_byte``
  (their ratio), ``gemm_n``, ``stream_bytes``, ``measured_at``, ``load_average``, ``cores``,
  ``busy`` (load average at or above 3/4 of the cores while measuring), ``levels``, ``peaks``,
  ``versions``, ``sweep`` (every point of the bandwidth sweep: ``[working set bytes, GB/s]``),
  ``remeasure_command``;

  - ``machine.levels``: one per memory level, L1, L2, L3, DRAM in order: ``name``,
    ``bandwidth_gb_per_s`` (None: not measured), ``capacity_bytes`` (working sets up to it are
    placed here; None for DRAM: unbounded), ``measured_at_bytes`` (the sweep's working set that
    gave the bandwidth), ``shared`` (one instance for all cores: L3, DRAM), ``source`` (where the
    capacity and bandwidth came from), ``reason`` (why not measured, else None),
    ``ridge_flops_per_byte`` (the fp32 peak over this bandwidth);
  - ``machine.peaks``: one per precision, fp32, bf16, fp16, int8 in order: ``precision``,
    ``gflops_per_s`` (int8: GOP/s; None: unavailable), ``engine``, ``detail`` (how measured),
    ``reason`` (why unavailable, else None);
  - ``machine.versions``: ``torch``, ``onnxruntime``, ``openvino``, ``onnx``, ``numpy`` (None where
    not installed), ``onednn``, ``onednn_isa`` (the ISA oneDNN dispatches to);
- ``timing``: ``repeats`` (timed rounds made), ``warmup``, ``budget_s`` (the time cap that may
  have cut the rounds short), ``statistic``, ``load_average`` and ``cores`` when the timing ended,
  ``busy`` (load average at or above 3/4 of the cores), ``layers_engine`` (the engine whose rows
  give the per-layer times: "eager" or "onnxruntime", ``--layers-on``), ``engine_version`` (torch's
  or ONNX Runtime's), ``layers_time_ms`` (sum of the layers' medians), ``functional_time_ms`` (of
  the functional ops'), ``unmapped_time_ms`` (of the engine nodes that map to no layer; 0 on
  eager), ``in_model_time_ms`` (eager: the layers timed in place in the model; None on ONNX
  Runtime), ``accounted_time_ms`` (layers + functional + unmapped), ``model_time_ms`` (the whole
  model sampled in the same rounds: eager, or ONNX Runtime's ``model_run``), ``unaccounted_ms``
  (model - accounted), ``layers_to_model_ratio`` (layers / model), ``addup`` (the sentence that
  explains how the parts add up to the model: :func:`sepconv.profile.layers.addup`);
- ``layers``: per leaf-module call, :meth:`sepconv.cost.LayerCost.to_dict`'s keys plus
  ``kind_source`` (how the kind was decided: "type", "ops" by the aten ops it ran, "none"),
  ``status`` ("executed" on eager; on ONNX Runtime "executed", "fused", "folded", "removed",
  "absent"), ``fused_into`` (the engine node that does a fused or folded row's work, else None),
  ``time_ms``, ``p90_ms`` (None where the row has no time of its own: not executed),
  ``in_model_ms`` (eager: timed in place in the model; else None), ``gflops_per_s``, ``gb_per_s``
  (None without a time), and the ceiling the call is held against
  (:func:`sepconv.profile.numbers.achieved`): ``precision`` (the dtype it ran in: fp32),
  ``working_set_bytes`` (inputs + weights + outputs of the call at that dtype), ``memory_level``
  (the smallest measured level whose capacity holds the working set), ``ceiling_gb_per_s``,
  ``ceiling_gflops_per_s`` (that level's bandwidth, that precision's peak), ``roofline_ms`` (the
  bound at that ceiling), ``roofline_fraction`` (roofline time / measured time), ``bound``
  ("memory", "compute", "none") and ``above_ceiling`` (measured faster than the ceiling allows,
  beyond :data:`~sepconv.profile.numbers.ABOVE_CEILING_TOLERANCE`: an anomaly);
- ``functional``: per op a parent module's own ``forward`` ran (residual add, squeeze-excite
  multiply, flatten: :mod:`sepconv.profile.functional`; on ONNX Runtime the exported nodes such an
  op became): ``name``, ``module`` (the parent, ``(model)`` for the root), ``op`` (the aten op or
  ONNX op type), ``kind`` (:data:`sepconv.cost.OP_KINDS`), ``bytes`` (read and written; None on
  ONNX Runtime), ``time_ms``, ``p90_ms`` (None when fused), ``fused_into`` (the engine node it was
  fused into, else None);
- ``unmapped``: per engine node that maps to no layer (empty on eager): ``node``, ``op_type``,
  ``time_ms``, ``reason``;
- ``fallback``: per layer whose kind its module's type did not decide (:attr:`sepconv.cost.CostReport.fallback`):
  ``name``, ``type``, ``kind``, ``kind_source``;
- ``by_kind``: ``kind``, ``layers``, ``params``, ``macs``, ``bytes``, ``time_ms``, ``macs_share``,
  ``time_share`` (of the accounted time: layers + functional + unmapped), ``gflops_per_s``; then a
  "functional" row (the functional ops, macs 0) and on ONNX Runtime an "unmapped" row when any;
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
    ``precision``, ``working_set_bytes`` (the pass's bytes), ``memory_level``, ``ceiling_gb_per_s``,
    ``ceiling_gflops_per_s``, ``roofline_ms``, ``roofline_fraction``, ``bound``, ``above_ceiling``
    (the times None where the pass is not timed alone: only convolutions are split into their
    input- and weight-gradient passes);
  - ``by_kind``: ``kind``, ``layers``, ``forward_macs``, ``backward_macs``, ``forward_ms``,
    ``backward_ms``, ``forward_macs_share``, ``backward_macs_share``, ``forward_time_share``,
    ``backward_time_share`` (shares of the whole step's MACs and of the layers' time),
    ``forward_gflops_per_s``, ``backward_gflops_per_s``;
  - ``steps``: :class:`sepconv.profile.step.StepResult`'s ``backend``, ``precision``, ``batch``,
    ``status`` ("ok", "failed", "skipped"), ``error``, ``repeats``, ``median_ms``, ``p90_ms``,
    ``images_per_s``, ``peak_memory_bytes``, ``speedup_vs_eager`` (over eager fp32).

``sepconv profile --machine-only --json`` writes the document ``SCHEMA["machine_only"]``:
``schema_version``, ``sepconv_version`` and the ``machine`` object above.

Version 2 added ``bn_folded`` and ``max_abs_diff`` to ``backends`` and renamed the torch.compile
backend from ``compile`` to ``inductor``; version 3 added ``training`` and ``model.impl``; version 4
made the ceilings cache- and precision-aware: ``machine.levels``, ``machine.peaks``,
``machine.versions`` and ``machine.sweep``, and per layer and training pass ``precision``,
``working_set_bytes``, ``memory_level``, ``ceiling_gb_per_s``, ``ceiling_gflops_per_s`` and
``above_ceiling``, ``roofline_ms`` now taken at that ceiling (it was DRAM's bandwidth and the fp32
peak for every call); ``machine.bandwidth_gb_per_s`` is DRAM's from the sweep and
``machine.stream_bytes`` the working set it was measured at; it also added the per-layer times on
another engine (``timing.layers_engine``, ``engine_version``), the functional ops, the layers timed
in place and the add-up (``timing``'s ``functional_time_ms``, ``unmapped_time_ms``,
``in_model_time_ms``, ``accounted_time_ms``, ``unaccounted_ms``, ``addup``; per layer
``kind_source``, ``status``, ``fused_into``, ``in_model_ms``), and ``functional``, ``unmapped``
and ``fallback``. Several models profiled
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
from .layers import ADDUP_TOLERANCE, addup
from .numbers import achieved, cell, flagged
from .profiler import Profile
from .training_report import training_dict

__all__ = ["FUNCTIONAL_TOP", "SCHEMA", "SCHEMA_VERSION", "addup_line", "ceiling_note", "fallback_line",
           "functional_table", "level_table", "machine_dict", "machine_document", "machine_line", "peak_table",
           "print_machine", "print_report", "ratio_warning", "tables", "to_dict", "unmapped_table", "versions_line",
           "write_json"]

SCHEMA_VERSION = 4
# The keys of every object :func:`to_dict` (and :func:`sepconv.profile.summary.summary_dict`) writes,
# in README's order ("JSON schema"); the tests check both the documents and README against this, so a
# changed key is a deliberate schema change. "machine.levels"/"machine.peaks" are the objects of the machine's
# lists, "machine.versions" its versions object; "training.pass" is the object of each pass of a training
# layer row; "summary" is the document of several models; "machine_only" that of --machine-only --json.
SCHEMA: dict[str, tuple[str, ...]] = {
    "top": ("schema_version", "sepconv_version", "input_shape", "batch", "threads",
            "model", "machine", "timing", "layers", "functional", "unmapped", "fallback", "by_kind", "backends",
            "training"),
    "model": ("spec", "description", "impl", "params", "macs", "flops", "bytes"),
    "machine": ("cpu", "threads", "torch_version", "peak_gflops_per_s", "bandwidth_gb_per_s",
                "ridge_flops_per_byte", "gemm_n", "stream_bytes", "measured_at", "load_average", "cores",
                "busy", "levels", "peaks", "versions", "sweep", "remeasure_command"),
    "machine.levels": ("name", "bandwidth_gb_per_s", "capacity_bytes", "measured_at_bytes", "shared", "source",
                       "reason", "ridge_flops_per_byte"),
    "machine.peaks": ("precision", "gflops_per_s", "engine", "detail", "reason"),
    "machine.versions": ("torch", "onnxruntime", "openvino", "onnx", "numpy", "onednn", "onednn_isa"),
    "timing": ("repeats", "warmup", "budget_s", "statistic", "load_average", "cores", "busy", "layers_engine",
               "engine_version", "layers_time_ms", "functional_time_ms", "unmapped_time_ms", "in_model_time_ms",
               "accounted_time_ms", "model_time_ms", "unaccounted_ms", "layers_to_model_ratio", "addup"),
    "layers": ("name", "type", "kind", "kind_source", "input_shape", "output_shape", "params", "macs", "flops",
               "weight_bytes", "act_bytes_read", "act_bytes_written", "bytes", "intensity_flops_per_byte", "status",
               "fused_into", "time_ms", "p90_ms", "in_model_ms", "gflops_per_s", "gb_per_s", "precision",
               "working_set_bytes", "memory_level", "ceiling_gb_per_s", "ceiling_gflops_per_s", "roofline_ms",
               "roofline_fraction", "bound", "above_ceiling"),
    "functional": ("name", "module", "op", "kind", "bytes", "time_ms", "p90_ms", "fused_into"),
    "unmapped": ("node", "op_type", "time_ms", "reason"),
    "fallback": ("name", "type", "kind", "kind_source"),
    "by_kind": ("kind", "layers", "params", "macs", "bytes", "time_ms", "macs_share", "time_share", "gflops_per_s"),
    "backends": ("backend", "batch", "status", "bn_folded", "error", "max_abs_diff", "repeats", "median_ms",
                 "p90_ms", "samples_per_s", "speedup_vs_eager"),
    "training": ("precision", "optimizer", "loss", "memory_method", "repeats", "forward_macs", "input_grad_macs",
                 "weight_grad_macs", "macs", "model_forward_ms", "model_backward_ms", "model_time_ms", "layers_time_ms",
                 "layers_to_model_ratio", "saved_activation_bytes", "layers", "by_kind", "steps"),
    "training.layers": ("name", "type", "kind", "input_shape", "output_shape", "params", "needs_input_grad",
                        "trains_weight", "saved_activation_bytes", "forward", "backward", "input_grad", "weight_grad"),
    "training.pass": ("macs", "bytes", "intensity_flops_per_byte", "time_ms", "p90_ms", "gflops_per_s", "gb_per_s",
                      "precision", "working_set_bytes", "memory_level", "ceiling_gb_per_s", "ceiling_gflops_per_s",
                      "roofline_ms", "roofline_fraction", "bound", "above_ceiling"),
    "training.by_kind": ("kind", "layers", "forward_macs", "backward_macs", "forward_ms", "backward_ms",
                         "forward_macs_share", "backward_macs_share", "forward_time_share", "backward_time_share",
                         "forward_gflops_per_s", "backward_gflops_per_s"),
    "training.steps": ("backend", "precision", "batch", "status", "error", "repeats", "median_ms", "p90_ms",
                       "images_per_s", "peak_memory_bytes", "speedup_vs_eager"),
    "summary": ("schema_version", "sepconv_version", "input_shape", "batch", "threads", "train", "machine", "models"),
    "summary.models": ("spec", "description", "document", "params", "macs", "training_macs", "depthwise_macs_share",
                       "depthwise_time_share", "peak_memory_bytes", "steps"),
    "summary.steps": ("backend", "precision", "batch", "status", "median_ms", "images_per_s", "peak_memory_bytes"),
    "machine_only": ("schema_version", "sepconv_version", "machine"),
}
FUNCTIONAL_TOP = 15  # the functional ops the table shows, the slowest first (the total line counts them all)
# ONNX op type -> the cost model's op kind (sepconv.cost.OP_KINDS), for the nodes a parent's forward made.
_ONNX_OP_KINDS = {
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Sum", "Pow", "Where", "Max", "Min"), "elementwise"),
    **dict.fromkeys(("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity"), "view"),
    **dict.fromkeys(("Concat", "Transpose", "Slice", "Split", "Gather", "Expand", "Tile", "Pad"), "copy"),
    **dict.fromkeys(("Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu", "Elu", "Gelu",
                     "Softmax", "Erf"), "activation"),
    **dict.fromkeys(("GlobalAveragePool", "AveragePool", "MaxPool", "GlobalMaxPool"), "pool"),
    **dict.fromkeys(("ReduceMean", "ReduceSum", "ReduceMax"), "reduce"),
    **dict.fromkeys(("MatMul", "Gemm"), "linear"), "Conv": "conv",
}


def to_dict(profile: Profile) -> dict[str, Any]:
    """The JSON document of ``profile`` (see the module docstring for its schema)."""
    machine, cost = profile.machine, profile.cost
    if profile.engine_layers is not None:
        layers, functional, unmapped, parts = _engine_parts(machine, cost, profile)
    else:
        layers, functional, unmapped, parts = _eager_parts(machine, cost, profile)
    timing, explained = parts
    layers_ms, model_ms = timing["layers_time_ms"], timing["model_time_ms"]
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
        "timing": {"repeats": profile.rounds, "warmup": profile.warmup,
                   "budget_s": profile.budget_s, "statistic": "median", "load_average": profile.load_average,
                   "cores": profile.cores, "busy": is_busy(profile.load_average, profile.cores),
                   "layers_engine": timing["layers_engine"], "engine_version": timing["engine_version"],
                   "layers_time_ms": layers_ms, "functional_time_ms": explained.functional_ms,
                   "unmapped_time_ms": explained.unmapped_ms, "in_model_time_ms": explained.in_model_ms,
                   "accounted_time_ms": explained.accounted_ms, "model_time_ms": model_ms,
                   "unaccounted_ms": explained.unaccounted_ms,
                   "layers_to_model_ratio": layers_ms / model_ms if model_ms else None,
                   "addup": timing["prefix"] + explained.text},
        "layers": layers,
        "functional": functional,
        "unmapped": unmapped,
        "fallback": [{"name": row.name, "type": row.type, "kind": row.kind, "kind_source": row.kind_source}
                     for row in cost.fallback],
        "by_kind": _by_kind(cost.by_kind(), layers, functional, unmapped),
        "backends": [row.to_dict() for row in profile.backends],
        "training": None if profile.training is None else training_dict(
            machine, profile.training.cost, profile.training.layers, profile.training.steps),
    }


def _eager_parts(machine: Machine, cost: Any, profile: Profile) -> tuple[list, list, list, tuple]:
    """Layer rows, functional ops, unmapped nodes (none) and the timing of an eager per-layer profile."""
    import torch

    measured = profile.layers
    layers = [_layer(machine, row, "executed", None, t.timing.median_ms, t.timing.p90_ms,
                     None if t.in_model is None else t.in_model.median_ms)
              for row, t in zip(cost.layers, measured.layers)]
    functional = [{"name": op.name, "module": op.parent, "op": op.op, "kind": op.kind, "bytes": op.bytes,
                   "time_ms": op.timing.median_ms, "p90_ms": op.timing.p90_ms, "fused_into": None}
                  for op in measured.functional]
    explained = measured.addup(profile.load_average, profile.cores, profile.threads)
    timing = {"layers_engine": "eager", "engine_version": torch.__version__, "layers_time_ms": measured.layers_ms,
              "model_time_ms": measured.model.median_ms, "prefix": ""}
    return layers, functional, [], (timing, explained)


def _engine_parts(machine: Machine, cost: Any, profile: Profile) -> tuple[list, list, list, tuple]:
    """The same from an engine's own profiler (:class:`sepconv.engines.ort_layers.EngineLayers`),
    joined to the cost rows by name; a row the engine fused, folded or removed has no time."""
    engine = profile.engine_layers
    by_name = {row.name: row for row in engine.layers}
    layers = []
    for row in cost.layers:
        timed = by_name.get(row.name)
        status = timed.status if timed is not None else "absent"
        executed = status == "executed"
        layers.append(_layer(machine, row, status, timed.fused_into if timed is not None else None,
                             timed.timing.median_ms if executed else None,
                             timed.timing.p90_ms if executed else None, None))
    functional = [{"name": op.exported, "module": op.module, "op": op.op_type,
                   "kind": _ONNX_OP_KINDS.get(op.op_type, "other"), "bytes": None,
                   "time_ms": None if op.fused_into else op.timing.median_ms,
                   "p90_ms": None if op.fused_into else op.timing.p90_ms, "fused_into": op.fused_into}
                  for op in engine.functional]
    unmapped = [{"node": node.node, "op_type": node.op_type, "time_ms": node.timing.median_ms, "reason": node.reason}
                for node in engine.unmapped]
    parents: dict[str, float] = {}
    for op in engine.functional:
        if op.timing.median_ms > 0:  # a fused op's time is its node's
            parents[op.module] = parents.get(op.module, 0.0) + op.timing.median_ms
    explained = addup(engine.layers_ms, engine.functional_ms, engine.model.median_ms, parents=parents,
                      load=profile.load_average, cores=profile.cores, threads=profile.threads,
                      unmapped_ms=engine.unmapped_ms)
    timing = {"layers_engine": engine.engine, "engine_version": engine.version, "layers_time_ms": engine.layers_ms,
              "model_time_ms": engine.model.median_ms,
              "prefix": f"{engine.engine} {engine.version} ({', '.join(engine.providers)}, its profiler's kernel "
                        "times; the model is its model_run, so what is unaccounted is the executor's work between "
                        "kernels): "}
    return layers, functional, unmapped, (timing, explained)


def machine_dict(machine: Machine) -> dict[str, Any]:
    """The document's ``machine`` object: the ceilings and the command that measures them again."""
    return {**machine.to_dict(), "remeasure_command": f"{REMEASURE} --threads {machine.threads}"}


def machine_document(machine: Machine) -> dict[str, Any]:
    """What ``sepconv profile --machine-only --json`` writes (``SCHEMA["machine_only"]``)."""
    return {"schema_version": SCHEMA_VERSION, "sepconv_version": __version__, "machine": machine_dict(machine)}


def write_json(doc: dict[str, Any], path: str | Path) -> None:
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def _layer(machine: Machine, row: Any, status: str, fused_into: str | None, median_ms: float | None,
           p90_ms: float | None, in_model_ms: float | None) -> dict[str, Any]:
    """One ``layers`` row: the cost model's keys, how its kind was decided, what the engine did with
    it, and its time against its ceiling (rates None where it has no time of its own)."""
    cost = row.to_dict()
    head = {key: cost.pop(key) for key in ("name", "type", "kind")}
    numbers = achieved(machine, cost["flops"], cost["bytes"], median_ms, p90_ms)
    times = {key: numbers.pop(key) for key in ("time_ms", "p90_ms")}
    return {**head, "kind_source": row.kind_source, **cost, "status": status, "fused_into": fused_into, **times,
            "in_model_ms": in_model_ms, **numbers}


def _by_kind(kinds: dict[str, Any], layers: list[dict[str, Any]], functional: list[dict[str, Any]],
             unmapped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per kind of layer, then the functional ops and (when any) the unmapped nodes; time shares of
    the accounted time (layers + functional + unmapped)."""
    def ms(rows: list[dict[str, Any]]) -> float:
        return sum(row["time_ms"] or 0.0 for row in rows)

    total_ms = ms(layers) + ms(functional) + ms(unmapped)
    out = []
    for kind, cost in kinds.items():
        t = ms([row for row in layers if row["kind"] == kind])
        out.append({
            "kind": kind, "layers": cost.layers, "params": cost.params, "macs": cost.macs, "bytes": cost.bytes,
            "time_ms": t, "macs_share": cost.macs_share, "time_share": t / total_ms if total_ms else 0.0,
            "gflops_per_s": 2 * cost.macs / (t * 1e-3) / 1e9 if t else None,
        })
    extra = [("functional", functional)] + ([("unmapped", unmapped)] if unmapped else [])
    for kind, rows in extra:
        t = ms(rows)
        out.append({"kind": kind, "layers": len(rows), "params": 0, "macs": 0,
                    "bytes": sum(row.get("bytes") or 0 for row in rows), "time_ms": t, "macs_share": 0.0,
                    "time_share": t / total_ms if total_ms else 0.0, "gflops_per_s": None})
    return out


# ---------------------------------------------------------------------------------------------
# Terminal tables


def _size(n: float | None) -> str:
    if n is None:
        return "—"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _rate(peak: dict[str, Any]) -> str:
    return f"{peak['gflops_per_s']:,.1f} {'GOP/s' if peak['precision'] == 'int8' else 'GFLOP/s'}"


def machine_line(doc: dict[str, Any]) -> str:
    """The machine in one line: every memory level's bandwidth and capacity, every precision's peak
    and engine, when measured and how to measure again."""
    m = doc["machine"]
    levels = ", ".join(
        f"{lv['name']} unknown" if lv["bandwidth_gb_per_s"] is None else
        f"{lv['name']} {lv['bandwidth_gb_per_s']:,.1f} GB/s" + (
            "" if lv["capacity_bytes"] is None else
            f" (to {_size(lv['capacity_bytes'])}{', shared, found by the sweep' if lv['shared'] else ''})")
        for lv in m["levels"])
    peaks = ", ".join(f"{p['precision']} unavailable" if p["gflops_per_s"] is None else
                      f"{p['precision']} {_rate(p)} ({p['engine']})" for p in m["peaks"])
    return (f"{m['cpu']}, {m['threads']} threads, torch {m['torch_version']}: memory {levels}; peaks {peaks}; "
            f"ridge {m['ridge_flops_per_byte']:.1f} FLOPs/byte (fp32, DRAM); measured {m['measured_at']}"
            + (f" while the machine was busy (load {m['load_average']} on {m['cores']} cores), so they may be "
               "too low" if m.get("busy") else "")
            + f" (re-measure: {m['remeasure_command']})")


def level_table(doc: dict[str, Any]) -> Table:
    """The memory levels: bandwidth, the capacity a working set is placed by, where each was found."""
    table = Table(title=f"Memory levels ({doc['machine']['threads']} threads; read + write streaming, 1 GB = 1e9 B)",
                  caption="a call is placed at the smallest measured level whose capacity holds its working set "
                          "(inputs + weights + outputs, at its dtype); ridge = fp32 peak / bandwidth")
    for head in ("level", "GB/s", "capacity", "measured at", "ridge FLOPs/B", "source"):
        table.add_column(head, justify="left" if head in ("level", "source") else "right")
    for lv in doc["machine"]["levels"]:
        capacity = "unbounded" if lv["name"] == "DRAM" else _size(lv["capacity_bytes"])
        table.add_row(lv["name"], cell(lv["bandwidth_gb_per_s"], ",.1f"), capacity, _size(lv["measured_at_bytes"]),
                      cell(lv["ridge_flops_per_byte"], ".1f"),
                      lv["source"] if lv["reason"] is None else f"unknown: {lv['reason']}")
    return table


def peak_table(doc: dict[str, Any]) -> Table:
    """The compute peaks: one per precision, with the engine that ran it or why it is unavailable."""
    table = Table(title=f"Compute peaks ({doc['machine']['threads']} threads)",
                  caption="GFLOP/s: FLOPs = 2 x MACs; int8: GOP/s = 2 x M x N x K integer operations")
    for head in ("precision", "peak", "engine", "how measured"):
        table.add_column(head, justify="right" if head == "peak" else "left")
    for p in doc["machine"]["peaks"]:
        table.add_row(p["precision"], "—" if p["gflops_per_s"] is None else _rate(p), p["engine"],
                      p["detail"] if p["reason"] is None else f"unavailable: {p['reason']}")
    return table


def versions_line(doc: dict[str, Any]) -> str:
    """The library versions the ceilings were measured with."""
    def say(name: str, value: str | None) -> str:
        return f"{name} {value or ('not installed' if name in ('onnxruntime', 'openvino', 'onnx') else 'unknown')}"

    versions = doc["machine"]["versions"]
    return "versions: " + ", ".join(say(name, value) for name, value in versions.items())


def print_machine(doc: dict[str, Any], console: Console | None = None) -> None:
    """The machine's line, its levels and peaks, and the versions (``--machine-only``)."""
    console = console or stdout_console()
    console.print(f"[bold]Machine[/bold]: {machine_line(doc)}", highlight=False, soft_wrap=True)
    console.print(level_table(doc))
    console.print(peak_table(doc))
    console.print(versions_line(doc), highlight=False, soft_wrap=True)


def ceiling_note(doc: dict[str, Any]) -> str | None:
    """The rows measured above their ceiling (``!`` in the tables), named and counted; None when none."""
    rows = [row["name"] for row in doc["layers"] if row.get("above_ceiling")]
    passes = [f"{row['name']} {name.replace('_', '-')}" for row in (doc.get("training") or {}).get("layers", ())
              for name in ("forward", "backward", "input_grad", "weight_grad")
              if row[name] is not None and row[name].get("above_ceiling")]
    if not rows and not passes:
        return None
    parts = []
    if rows:
        parts.append(f"{len(rows)} of {len(doc['layers'])} layers ({', '.join(rows)})")
    if passes:
        parts.append(f"{len(passes)} training passes ({', '.join(passes)})")
    return (f"! {' and '.join(parts)} measured above their ceiling (faster than their memory level's bandwidth or "
            "their precision's peak allow, by more than 5%): an anomaly in the ceilings or the byte count, not a "
            "result; measure the machine again on an idle moment (the re-measure command above)")


def ratio_warning(doc: dict[str, Any]) -> str | None:
    """The add-up explanation (``timing.addup``) as a warning when the parts (layers, functional
    ops, unmapped nodes) are not within :data:`~sepconv.profile.layers.ADDUP_TOLERANCE` of the
    whole model's time, else None. The sentence (:func:`sepconv.profile.layers.addup`) names what is
    unaccounted and blames other processes only when the load average says they competed: with
    several threads on a machine other processes also use, OpenMP threads that finish early
    spin-wait for one that lost its core at every kernel's barrier (measured here: layers 6.7 ms,
    model 240.7 ms, 2 threads on 2 loaded cores, ``benchmarks/results/profile/loaded_machine.txt``)."""
    t = doc["timing"]
    model_ms, unaccounted = t.get("model_time_ms"), t.get("unaccounted_ms")
    if not model_ms or unaccounted is None or abs(unaccounted / model_ms) <= ADDUP_TOLERANCE:
        return None
    return f"warning: {t['addup']}"


def addup_line(doc: dict[str, Any]) -> str:
    """How the parts add up to the whole model, in one sentence: the warning when they do not."""
    return ratio_warning(doc) or f"add-up: {doc['timing']['addup']}"


def fallback_line(doc: dict[str, Any]) -> str | None:
    """The modules whose kind their type did not decide, named with the kind they got and how; None
    when every row's type said what it is."""
    rows = doc.get("fallback") or []
    if not rows:
        return None
    how = {"ops": "by the aten ops it ran", "none": "no rule: other"}
    named = ", ".join(f"{r['name']} ({r['type']}): {r['kind']}, {how.get(r['kind_source'], r['kind_source'])}"
                      for r in rows)
    return (f"{len(rows)} module{'s' if len(rows) > 1 else ''} classified by fallback (the module's type does not "
            f"say what it computes): {named}")


def summary_line(doc: dict[str, Any]) -> str:
    t, m = doc["timing"], doc["model"]
    shape = "x".join(map(str, doc["input_shape"]))
    what = m["spec"] if m["description"] == m["spec"] else f"{m['spec']} ({m['description']})"
    engine = t.get("layers_engine", "eager")
    return (f"{what}, input {shape}, {doc['threads']} threads: {m['params']:,} params, "
            f"{m['macs'] / 1e6:,.1f}M MACs; on {engine} the layers take {t['layers_time_ms']:.2f} ms and, with the "
            f"functional ops{' and unmapped nodes' if t.get('unmapped_time_ms') else ''}, "
            f"{t.get('accounted_time_ms', t['layers_time_ms']):.2f} ms of the whole model's "
            f"{t['model_time_ms']:.2f} ms (median of {t['repeats']} {'interleaved rounds' if engine == 'eager' else 'profiled runs'})"
            + (f"; the machine was busy (load {t['load_average']} on {t['cores']} cores), so times are inflated: "
               "profile an idle machine" if t.get("busy") else ""))


def layer_table(doc: dict[str, Any]) -> Table:
    count = sum(1 for row in doc["layers"] if row["above_ceiling"])
    engine = doc["timing"].get("layers_engine", "eager")
    eager = engine == "eager"
    title = ("Per layer (leaf-module calls, replayed in isolation; in place = timed in the model)" if eager else
             f"Per layer on {engine} {doc['timing'].get('engine_version', '')} (its profiler's node times, mapped "
             "to the layers; a fused node counts as its conv's layer)")
    table = Table(title=title,
                  caption="MACs = multiply-accumulates; FLOPs = 2 x MACs; level = the memory level the call's "
                          "working set (inputs + weights + outputs at its dtype) fits; roofline % = roofline-bound "
                          "time at that level's bandwidth and the precision's peak / measured time; ! = measured "
                          f"above that ceiling, an anomaly ({count} here)"
                          + ("" if eager else "; a fused or folded row's work is in the node named, its time there")
                          + ("; * kind by fallback" if any(row.get("kind_source", "type") != "type"
                                                           for row in doc["layers"]) else ""))
    heads = ("layer", "kind", "output", "params", "MMACs", "MB moved", "FLOPs/B", "level", "time ms",
             "in place ms" if eager else "on the engine", "GFLOP/s", "GB/s", "roofline ms", "roofline %", "bound")
    for head in heads:
        table.add_column(head, justify="left" if head in ("layer", "kind", "output", "level", "bound",
                                                          "on the engine") else "right")
    for row in doc["layers"]:
        if eager:
            extra = cell(row.get("in_model_ms"), ".3f")
        elif row.get("fused_into"):
            extra = f"{row['status']} into {row['fused_into']}"
        else:
            extra = row.get("status", "executed")
        table.add_row(
            row["name"], row["kind"] + ("*" if row.get("kind_source", "type") != "type" else ""),
            "x".join(map(str, row["output_shape"])), f"{row['params']:,}",
            f"{row['macs'] / 1e6:,.2f}", f"{row['bytes'] / 1e6:,.3f}", f"{row['intensity_flops_per_byte']:.1f}",
            row["memory_level"], cell(row["time_ms"], ".3f"), extra,
            cell(row["gflops_per_s"] if row["macs"] else None, ".1f"),
            cell(row["gb_per_s"], ".1f"), f"{row['roofline_ms']:.3f}",
            flagged(row["roofline_fraction"], row["above_ceiling"]), row["bound"])
    return table


def functional_table(doc: dict[str, Any], top: int = FUNCTIONAL_TOP) -> Table | None:
    """The functional ops (what the parents' forwards compute between their children), the slowest
    ``top`` first, and a total line over all of them; None when there are none."""
    rows = doc.get("functional") or []
    if not rows:
        return None
    shown = sorted(rows, key=lambda row: -(row["time_ms"] or 0.0))[:top]
    table = Table(title=f"Functional ops (a parent's own forward: residual adds, multiplies, flattens; "
                        f"the slowest {len(shown)} of {len(rows)})",
                  caption="module = the parent whose forward ran it; kind = what the op computes; a fused op's "
                          "work is in the node named")
    for head in ("op", "module", "aten/ONNX op", "kind", "MB moved", "time ms", "p90 ms", "fused into"):
        table.add_column(head, justify="left" if head in ("op", "module", "aten/ONNX op", "kind", "fused into")
                         else "right")
    for row in shown:
        table.add_row(row["name"], row["module"], row["op"], row["kind"],
                      cell(None if row["bytes"] is None else row["bytes"] / 1e6, ",.3f"), cell(row["time_ms"], ".3f"),
                      cell(row["p90_ms"], ".3f"), row["fused_into"] or "")
    table.add_section()
    table.add_row(f"total ({len(rows)} ops)", "", "", "", "",
                  f"{sum(row['time_ms'] or 0.0 for row in rows):.3f}", "", "")
    return table


def unmapped_table(doc: dict[str, Any]) -> Table | None:
    """The engine nodes that map to no layer (ONNX Runtime's layout changes ...); None when none."""
    rows = doc.get("unmapped") or []
    if not rows:
        return None
    table = Table(title=f"Unmapped nodes ({len(rows)}: engine nodes that map to no layer)")
    for head in ("node", "op type", "time ms", "reason"):
        table.add_column(head, justify="right" if head == "time ms" else "left")
    for row in rows:
        table.add_row(row["node"], row["op_type"], cell(row["time_ms"], ".3f"), row["reason"])
    table.add_section()
    table.add_row("total", "", f"{sum(row['time_ms'] or 0.0 for row in rows):.3f}", "")
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
    """The tables in reading order: per layer, by kind, the functional ops and unmapped nodes (when
    any), per backend; then, for a training profile, training per layer, by kind and per backend
    (:mod:`~sepconv.profile.training_report`)."""
    extra = [table for table in (functional_table(doc), unmapped_table(doc)) if table is not None]
    return [layer_table(doc), kind_table(doc), *extra, backend_table(doc), *training_report.tables(doc)]


def print_report(doc: dict[str, Any], console: Console | None = None) -> None:
    """Print the machine, the tables, the summary line, how the parts add up to the whole model (in
    yellow when they do not), the modules classified by fallback, and the rows above their ceiling
    to ``console`` (stdout by default)."""
    console = console or stdout_console()
    console.print(f"[bold]Machine[/bold]: {machine_line(doc)}", highlight=False, soft_wrap=True)
    console.print(versions_line(doc), highlight=False, soft_wrap=True)
    for table in tables(doc):
        console.print(table)
    console.print(summary_line(doc), highlight=False, soft_wrap=True)
    if doc.get("training"):
        console.print(training_report.summary_line(doc), highlight=False, soft_wrap=True)
    console.print(addup_line(doc), style="bold yellow" if ratio_warning(doc) else "dim", highlight=False,
                  soft_wrap=True)
    for note in (fallback_line(doc), ceiling_note(doc)):
        if note:
            console.print(note, style="bold yellow", highlight=False, soft_wrap=True)
