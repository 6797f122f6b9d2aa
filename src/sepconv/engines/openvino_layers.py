"""Where OpenVINO spends a model's time, by layer kind: the per-kind view of a deployed OpenVINO
model at any of its precisions (fp32, bf16, fp16, int8), as ONNX Runtime's per-layer view
(:mod:`sepconv.engines.ort_layers`) gives it for ONNX Runtime.

OpenVINO's CPU plugin reports, with ``PERF_COUNT`` on, the time of every node it executed in the
last inference (``InferRequest.get_profiling_info``). Its executed nodes keep the names of the ONNX
nodes they came from, with suffixes of its own: the depthwise conv ``/blocks/blocks.1/dw/conv/Conv``
runs as ``/blocks/blocks.1/dw/conv/Conv/WithoutBiases`` (a ``GroupConvolution`` with the bias add
and the activation fused into it, which then report as not run), a conv of the int8 QDQ file keeps
its conv's name, and a node that writes a graph output may take that tensor's name (``output``).
So each executed node is anchored on the exported node whose name (or output tensor's) is the
longest prefix of its own (the rule of :mod:`sepconv.engines.ort_node_map`), and that node's module call
names the layer and its kind (:func:`sepconv.cost.layer_kind`: "pointwise", "depthwise", ...);
a node of a parent's own forward (a residual add, squeeze-excite's multiply) counts as
"functional", the layout changes OpenVINO inserts (``Reorder``) as "layout", anything else as
"unmapped". Each kind's figure is the median over the timed runs of its nodes' summed times.

Example::

    >>> from sepconv.models import create_model
    >>> kinds = openvino_kind_times(create_model("mobilenet_v2", num_classes=10), (1, 3, 64, 64),
    ...                             precision="fp32", threads=1, repeats=3)
    >>> kinds.top()[0] in {"pointwise", "depthwise"}
    True
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .._util.checks import ArgumentError, non_negative_int, one_of, positive_int
from .._util.runtime import cores
from .openvino import PRECISIONS, infer_request, read_onnx, unavailable
from .ort_node_map import anchor_by_name, export_for_layers, exported_origins, module_calls
from .shapes import example_input

__all__ = ["OpenVinoKinds", "openvino_kind_times"]


@dataclass(frozen=True)
class OpenVinoKinds:
    """Median ms per run by layer kind (``kinds_ms``, largest first) of one model compiled by
    OpenVINO at ``precision`` on ``threads`` threads for ``input_shape``; ``nodes_ms``, the median
    of the executed nodes' summed time per run."""

    precision: str
    threads: int
    input_shape: tuple[int, ...]
    kinds_ms: dict[str, float]
    nodes_ms: float
    runs: int

    def top(self) -> tuple[str, float]:
        """The layer kind (not "functional", "layout" or "unmapped", unless only those ran) that
        holds most of the time, and its share of ``nodes_ms``."""
        layers = {k: v for k, v in self.kinds_ms.items() if k not in ("functional", "layout", "unmapped")}
        kind = max(layers or self.kinds_ms, key=(layers or self.kinds_ms).get)
        return kind, self.kinds_ms[kind] / self.nodes_ms if self.nodes_ms else 0.0

    def to_dict(self) -> dict[str, Any]:
        top, share = self.top()
        return {"engine": "openvino", "precision": self.precision, "threads": self.threads,
                "input_shape": list(self.input_shape), "kinds_ms": dict(self.kinds_ms), "nodes_ms": self.nodes_ms,
                "runs": self.runs, "top_kind": top, "top_share": share}


def _kind_of(name: str, node_type: str, known: dict[str, int], kinds: list[str]) -> str:
    index = anchor_by_name(name, known)
    if index is not None:
        return kinds[index]
    return "layout" if node_type == "Reorder" else "unmapped"


def openvino_kind_times(model: nn.Module, input_shape: Sequence[int] | None = None, *, precision: str = "fp32",
                        threads: int | None = None, repeats: int = 20, warmup: int = 2,
                        calibration: torch.Tensor | None = None) -> OpenVinoKinds:
    """Time ``model`` on OpenVINO at ``precision`` node by node and sum the time by layer kind.

    The graph is the one the ``openvino`` backends run: the clean export (BN folded), for ``int8``
    its QDQ form quantized on ``calibration`` images (required then). ``warmup`` untimed runs, then
    ``repeats`` timed runs on a seeded random batch of ``input_shape`` (default: a zoo model's own).

    Raises ``ValueError`` when OpenVINO is not installed or cannot run ``precision`` on this CPU
    (with the reason), when the model cannot be exported, or for a bad argument.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentError("model", f"model={type(model).__name__} must be a torch.nn.Module")
    one_of("precision", precision, PRECISIONS)
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    threads = cores() if threads is None else positive_int("threads", threads)
    if precision == "int8" and calibration is None:
        raise ArgumentError("calibration", "precision='int8' needs calibration images (an N x C x H x W tensor)")
    reason = unavailable(precision)
    if reason is not None:
        raise ValueError(reason)
    x = example_input(model, input_shape)
    exported = export_for_layers(model, x)
    scopes, leaves = module_calls(model, x)
    nodes = list(exported.graph.node)
    kind_of_leaf = {leaf.name: leaf.kind for leaf in leaves}
    origins = exported_origins(nodes, scopes)
    kinds = [kind_of_leaf[o.name] if o.category == "layer" else o.category if o.category == "functional"
             else "unmapped" for o in (origins[i] for i in range(len(nodes)))]
    known = {tensor: i for i, node in enumerate(nodes) for tensor in node.output}  # "output": the classifier's
    known |= {node.name: i for i, node in enumerate(nodes) if node.name}
    proto = exported
    if precision == "int8":
        from .quantize import quantize

        proto = quantize(exported, calibration).proto
    try:
        request = infer_request(read_onnx(proto), tuple(x.shape), precision, threads, profile=True)
    except RuntimeError as e:  # OpenVINO's compilation errors
        raise ValueError(f"OpenVINO cannot compile the model: {str(e).strip().splitlines()[0]}") from None
    feed = {0: np.ascontiguousarray(x.numpy(), dtype=np.float32)}
    for _ in range(max(warmup, 1)):
        request.infer(feed)
    per_run: list[dict[str, float]] = []
    for _ in range(repeats):
        request.infer(feed)
        run: dict[str, float] = {}
        for info in request.get_profiling_info():
            if info.status != info.Status.EXECUTED:
                continue
            kind = _kind_of(info.node_name, info.node_type, known, kinds)
            run[kind] = run.get(kind, 0.0) + info.real_time.total_seconds() * 1e3
        per_run.append(run)
    names = {kind for run in per_run for kind in run}
    medians = {kind: statistics.median(run.get(kind, 0.0) for run in per_run) for kind in names}
    ordered = dict(sorted(medians.items(), key=lambda item: -item[1]))
    return OpenVinoKinds(precision, threads, tuple(x.shape), ordered,
                         statistics.median(sum(run.values()) for run in per_run), len(per_run))
