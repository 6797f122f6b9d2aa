"""The training half of a profile as the document's ``training`` object, and its terminal tables.

:func:`training_dict` derives every number (per pass: MACs from the cost model, bytes, intensity,
achieved GFLOP/s, roofline fraction; by kind: shares of training MACs against shares of training
time, forward and backward apart); the tables render that dict, so a saved JSON prints the same.

Bytes per pass are the compulsory traffic at fp32, from the forward's counts (weights ``W``,
input ``X``, output ``Y``): forward ``W + X + Y``; input gradient ``W + dY + dX`` (reads the
output's gradient and the weights, writes the input's gradient: ``W + Y + X``); weight gradient
``X + dY + dW`` (the same total); the whole backward the sum of the passes it has. A
norm's or an activation's re-reading of what it saved is not counted. MACs per pass are
:func:`sepconv.cost.gradient_macs`' (input gradient = weight gradient = forward, for any groups).
Each pass is held against its own ceiling (:func:`~sepconv.profile.numbers.achieved`): the memory
level its bytes fit, as its working set, and the fp32 peak; one measured above it is flagged.

Example::

    >>> doc["training"]["by_kind"][0]["kind"]  # doc = to_dict(profile_model(..., train=True))  # doctest: +SKIP
    'standard'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from ..cost import LayerCost, LayerTrainingCost, TrainingCostReport
from ..machine import Machine
from .numbers import achieved, cell, flagged, share
from .step import LOSS, MEMORY_METHOD, OPTIMIZER, StepResult
from .training import LayerTraining, TrainingLayers

__all__ = ["PASSES", "kind_table", "layer_table", "step_table", "summary_line", "tables", "training_dict"]

PASSES = ("forward", "backward", "input_grad", "weight_grad")


def training_dict(machine: Machine, cost: TrainingCostReport, layers: TrainingLayers,
                  steps: Sequence[StepResult]) -> dict[str, Any]:
    """The document's ``training`` object (README, "JSON schema")."""
    rows = [_layer(machine, row, macs, timed) for row, macs, timed in zip(cost.cost.layers, cost.layers, layers.layers)]
    layers_ms, model_ms = layers.layers_ms, layers.model.median_ms
    return {
        "precision": "fp32", "optimizer": OPTIMIZER, "loss": LOSS, "memory_method": MEMORY_METHOD,
        "repeats": len(layers.model.samples_ms),
        "forward_macs": cost.forward_macs, "input_grad_macs": cost.input_grad_macs,
        "weight_grad_macs": cost.weight_grad_macs, "macs": cost.macs,
        "model_forward_ms": layers.forward.median_ms, "model_backward_ms": layers.backward.median_ms,
        "model_time_ms": model_ms, "layers_time_ms": layers_ms,
        "layers_to_model_ratio": layers_ms / model_ms if model_ms else None,
        "saved_activation_bytes": layers.saved_bytes,
        "layers": rows,
        "by_kind": _by_kind(rows),
        "steps": [step.to_dict() for step in steps],
    }


def _pass(machine: Machine, macs: int, nbytes: int, timing: Any) -> dict[str, Any]:
    return {"macs": macs, "bytes": nbytes, "intensity_flops_per_byte": 2 * macs / nbytes if nbytes else 0.0,
            **achieved(machine, 2 * macs, nbytes, timing.median_ms if timing else None,
                       timing.p90_ms if timing else None)}


def _layer(machine: Machine, row: LayerCost, macs: LayerTrainingCost, timed: LayerTraining) -> dict[str, Any]:
    if row.name != macs.name or row.name != timed.name:
        raise ValueError(f"layers: {row.name!r}, {macs.name!r} and {timed.name!r} are not one call")
    gradient_bytes = row.weight_bytes + row.act_bytes_read + row.act_bytes_written  # either gradient pass
    input_grad = _pass(machine, macs.input_grad_macs, gradient_bytes, timed.input_grad) \
        if macs.needs_input_grad else None
    weight_grad = _pass(machine, macs.weight_grad_macs, gradient_bytes, timed.weight_grad) \
        if macs.trains_weight else None
    backward_bytes = gradient_bytes * ((input_grad is not None) + (weight_grad is not None))
    return {
        "name": row.name, "type": row.type, "kind": row.kind, "input_shape": list(row.input_shape),
        "output_shape": list(row.output_shape), "params": row.params, "needs_input_grad": macs.needs_input_grad,
        "trains_weight": macs.trains_weight, "saved_activation_bytes": timed.saved_bytes,
        "forward": _pass(machine, macs.forward_macs, row.bytes, timed.forward),
        "backward": _pass(machine, macs.backward_macs, backward_bytes, timed.backward) if timed.backward else None,
        "input_grad": input_grad,
        "weight_grad": weight_grad,
    }


def _by_kind(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def total(rows: list[dict[str, Any]], name: str, key: str) -> float:
        return sum(row[name][key] for row in rows if row[name] is not None and row[name][key] is not None)

    all_macs = total(rows, "forward", "macs") + total(rows, "backward", "macs")
    all_ms = total(rows, "forward", "time_ms") + total(rows, "backward", "time_ms")
    out = []
    for kind in dict.fromkeys(row["kind"] for row in rows):
        mine = [row for row in rows if row["kind"] == kind]
        numbers = {(name, key): total(mine, name, key) for name in ("forward", "backward") for key in ("macs", "time_ms")}
        out.append({
            "kind": kind, "layers": len(mine),
            "forward_macs": int(numbers["forward", "macs"]), "backward_macs": int(numbers["backward", "macs"]),
            "forward_ms": numbers["forward", "time_ms"], "backward_ms": numbers["backward", "time_ms"],
            "forward_macs_share": share(numbers["forward", "macs"], all_macs),
            "backward_macs_share": share(numbers["backward", "macs"], all_macs),
            "forward_time_share": share(numbers["forward", "time_ms"], all_ms),
            "backward_time_share": share(numbers["backward", "time_ms"], all_ms),
            "forward_gflops_per_s": _gflops(numbers["forward", "macs"], numbers["forward", "time_ms"]),
            "backward_gflops_per_s": _gflops(numbers["backward", "macs"], numbers["backward", "time_ms"]),
        })
    return out


def _gflops(macs: float, ms: float) -> float | None:
    return 2 * macs / (ms * 1e-3) / 1e9 if ms and macs else None


# ---------------------------------------------------------------------------------------------
# Terminal tables (the HTML page renders the same ones)


def layer_table(doc: dict[str, Any]) -> Table:
    """Per layer: each pass's time, MACs, intensity, GFLOP/s, memory level and roofline fraction
    (``!``: above its ceiling), and the activation memory the layer keeps for backward."""
    count = sum(1 for row in doc["training"]["layers"] for name in PASSES
                if row[name] is not None and row[name]["above_ceiling"])
    table = Table(title="Training, per layer: forward and backward (fp32, eager, training mode)",
                  caption="in-grad / w-grad: a convolution's backward split in its input-gradient and "
                          "weight-gradient passes (aten.convolution_backward, each alone); MMACs per pass from "
                          "the cost model (in-grad = w-grad = forward, for any groups; no in-grad in a first "
                          "layer); FLOPs/B per pass; level = the memory level the pass's bytes fit; roofline % = "
                          "roofline-bound time at that level and the fp32 peak / measured time; ! = measured above "
                          f"that ceiling, an anomaly ({count} passes here); kept MB = activations saved for backward")
    heads = ("layer", "kind", "fwd ms", "bwd ms", "in-grad ms", "w-grad ms", "fwd MMACs", "bwd MMACs",
             "fwd FLOPs/B", "in-grad FLOPs/B", "w-grad FLOPs/B", "fwd GFLOP/s", "in-grad GFLOP/s", "w-grad GFLOP/s",
             "fwd level", "bwd level", "fwd roofline %", "bwd roofline %", "in-grad roofline %", "w-grad roofline %",
             "kept MB")
    for head in heads:
        table.add_column(head, justify="left" if head in ("layer", "kind", "fwd level", "bwd level") else "right")

    def get(row: dict[str, Any], name: str, key: str) -> Any:
        return None if row[name] is None else row[name][key]

    for row in doc["training"]["layers"]:
        with_macs = row["forward"]["macs"] > 0
        table.add_row(
            row["name"], row["kind"], cell(get(row, "forward", "time_ms"), ".3f"), cell(get(row, "backward", "time_ms"), ".3f"),
            cell(get(row, "input_grad", "time_ms"), ".3f"), cell(get(row, "weight_grad", "time_ms"), ".3f"),
            f"{row['forward']['macs'] / 1e6:,.2f}", cell(None if row["backward"] is None
                                                         else row["backward"]["macs"] / 1e6, ",.2f"),
            f"{row['forward']['intensity_flops_per_byte']:.1f}",
            cell(get(row, "input_grad", "intensity_flops_per_byte") if with_macs else None, ".1f"),
            cell(get(row, "weight_grad", "intensity_flops_per_byte") if with_macs else None, ".1f"),
            cell(get(row, "forward", "gflops_per_s") if with_macs else None, ".1f"),
            cell(get(row, "input_grad", "gflops_per_s") if with_macs else None, ".1f"),
            cell(get(row, "weight_grad", "gflops_per_s") if with_macs else None, ".1f"),
            get(row, "forward", "memory_level") or "—", get(row, "backward", "memory_level") or "—",
            *(flagged(get(row, name, "roofline_fraction"), get(row, name, "above_ceiling")) for name in PASSES),
            f"{row['saved_activation_bytes'] / 1e6:,.3f}")
    return table


def kind_table(doc: dict[str, Any]) -> Table:
    """By kind: the share of the training step's MACs against the share of its time, forward and
    backward apart: why a depthwise network trains slower than its FLOPs say."""
    table = Table(title="Training, by kind: share of training MACs against share of training time",
                  caption="shares of the whole step's MACs (forward + backward) and of the layers' measured time; "
                          "time/MAC = time share / MAC share")
    for head in ("kind", "layers", "fwd MAC share", "fwd time share", "fwd time/MAC", "bwd MAC share",
                 "bwd time share", "bwd time/MAC", "fwd GFLOP/s", "bwd GFLOP/s"):
        table.add_column(head, justify="left" if head == "kind" else "right")
    for row in doc["training"]["by_kind"]:
        cells = [row["kind"], str(row["layers"])]
        for name in ("forward", "backward"):
            macs, time_ = row[f"{name}_macs_share"], row[f"{name}_time_share"]
            cells += [f"{100 * macs:.1f}%", f"{100 * time_:.1f}%", cell(time_ / macs if macs else None, ".1f")]
        cells += [cell(row["forward_gflops_per_s"], ".1f"), cell(row["backward_gflops_per_s"], ".1f")]
        table.add_row(*cells)
    return table


def step_table(doc: dict[str, Any]) -> Table:
    """The whole training step per backend, precision and batch."""
    table = Table(title=f"Training step per backend ({doc['threads']} threads; forward + loss + backward + "
                        f"{doc['training']['optimizer']})",
                  caption="speedup = eager fp32 median / this median at the same batch; bf16/fp16: autocast mixed "
                          f"precision; peak MB: {doc['training']['memory_method']}")
    for head in ("backend", "precision", "batch", "median ms", "p90 ms", "images/s", "peak MB", "speedup", "status"):
        table.add_column(head, justify="left" if head in ("backend", "precision", "status") else "right")
    for row in doc["training"]["steps"]:
        status = row["status"] if row["status"] == "ok" else f"{row['status']}: {row['error']}"
        table.add_row(row["backend"], row["precision"], str(row["batch"]), cell(row["median_ms"]), cell(row["p90_ms"]),
                      cell(row["images_per_s"], ",.1f"),
                      cell(None if row["peak_memory_bytes"] is None else row["peak_memory_bytes"] / 1e6, ",.1f"),
                      cell(row["speedup_vs_eager"], ".2f"), status)
    return table


def summary_line(doc: dict[str, Any]) -> str:
    t = doc["training"]
    return (f"training step of {doc['model']['spec']} at batch {doc['input_shape'][0]}: {t['macs'] / 1e6:,.1f}M MACs "
            f"= forward {t['forward_macs'] / 1e6:,.1f}M + input gradients {t['input_grad_macs'] / 1e6:,.1f}M + weight "
            f"gradients {t['weight_grad_macs'] / 1e6:,.1f}M; layers add up to {t['layers_time_ms']:.2f} ms of the "
            f"whole model's {t['model_time_ms']:.2f} ms (forward {t['model_forward_ms']:.2f} + backward "
            f"{t['model_backward_ms']:.2f}, median of {t['repeats']} rounds); activations kept for backward "
            f"{t['saved_activation_bytes'] / 1e6:,.1f} MB")


def tables(doc: dict[str, Any]) -> list[Table]:
    """The training tables in reading order (none for an inference profile): per layer, by kind, per backend."""
    if not doc.get("training"):
        return []
    return [layer_table(doc), kind_table(doc), step_table(doc)]
