"""Per-layer time on ONNX Runtime, the engine models are deployed on, mapped back to sepconv's
layer names and kinds.

Eager PyTorch runs a conv, its BatchNorm and its activation as three kernels; ONNX Runtime runs the
BN-folded export with each activation fused into its conv (and, at ``optimization="all"`` on x86,
in the blocked NCHWc layout of its MLAS kernels), so where the time goes differs. Here the time
of each node comes from ONNX Runtime's own profiler (``SessionOptions.enable_profiling``: one
``<node>_kernel_time`` event per node per run, in microseconds), and each node is mapped to the
sepconv leaf call it comes from through the module scopes the exporter writes into node names and
the optimised graph ONNX Runtime saves (``optimized_model_filepath``), for nodes it fused or
renamed (:mod:`sepconv.engines.ort_node_map`). A fused Conv+BN+activation node counts as its
conv's layer and kind; the BN and activation rows say which node they went into, with no time of
their own. Nodes made by a parent module's own ``forward`` (a residual ``Add``, squeeze-excite's
``Mul``, ``Flatten``) are kept with that module's name and op type (:class:`FunctionalTiming`);
nodes that map to nothing (NCHWc layout changes ONNX Runtime inserts) are listed with their op
type and time (:class:`UnmappedTiming`).

How the add-up is measured: every timed run is one ``session.run`` of the profiling session, and
the whole-model time is taken from the same runs: ONNX Runtime's ``model_run`` event (the run as
its profiler sees it) and the wall clock around ``session.run``. Per-layer figures are medians over
those runs of each row's kernel time; :attr:`EngineLayers.nodes_ms` is the median over runs of all
kernel times added up. What the per-node times leave out is the executor's work between kernels
(allocation, the profiler's own bookkeeping), which is what ``model`` minus ``nodes`` shows.
Profiling has a cost of its own (a timestamp and a record per node): with ``baseline=True`` an
unprofiled session on the same export runs interleaved with the profiled one, and
:attr:`EngineLayers.unprofiled` is its wall time per run, the number ``--backend onnxruntime``
measures. Timings depend on threads: on one thread the nodes run back to back.

Example::

    >>> from torch import nn
    >>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten())
    >>> result = ort_layer_times(m, (1, 3, 16, 16), threads=1, repeats=3)
    >>> [(row.name, row.kind, row.status) for row in result.layers]
    [('0', 'standard', 'executed'), ('1', 'norm', 'folded'), ('2', 'activation', 'fused'), ('3', 'other', 'executed')]
    >>> result.engine, result.model.median_ms > 0
    ('onnxruntime', True)
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .._util.checks import ArgumentError, non_negative_int, positive_int
from .._util.timing import Timing
from .ort_node_map import (
    NodeMap,
    OrtNode,
    export_for_layers,
    map_nodes,
    optimize,
    require_onnxruntime,
)
from .ort_options import LEVELS
from .shapes import example_input

__all__ = ["ENGINE", "MIN_RUNS", "EngineLayerTiming", "EngineLayers", "FunctionalTiming", "NodeEvent",
           "ProfiledRun", "UnmappedTiming", "layer_rows", "ort_layer_times", "parse_profile"]

ENGINE = "onnxruntime"
MIN_RUNS = 5  # timed runs made even when the time budget has run out
METHOD = ("ONNX Runtime's profiler (enable_profiling): per-node kernel times of each timed session.run, "
          "medians over runs; whole-model time from the same profiled runs (model_run event and wall clock)")


# ---------------------------------------------------------------------------------------------
# ONNX Runtime's profile file


@dataclass(frozen=True)
class NodeEvent:
    """One node's kernel in one run: its name as the profiler gives it (an unnamed node is
    ``<op>_<index>``), op type, execution provider and duration in microseconds."""

    name: str
    op_type: str
    provider: str
    dur_us: float


@dataclass(frozen=True)
class ProfiledRun:
    """One ``session.run`` in the profile: ``model_us`` (the ``model_run`` event's duration) and its
    node kernels in the order they ran."""

    model_us: float
    nodes: tuple[NodeEvent, ...]

    @property
    def nodes_us(self) -> float:
        return sum(node.dur_us for node in self.nodes)


_KERNEL = "_kernel_time"


def _number(event: Mapping[str, Any], key: str, where: str) -> float:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {key}={value!r} must be a non-negative number")
    return float(value)


def parse_profile(events: Any) -> list[ProfiledRun]:
    """The runs of an ONNX Runtime profile (the JSON list ``InferenceSession.end_profiling`` writes),
    in order: each ``model_run`` event and the ``Node`` events (``<node>_kernel_time``) that fall in
    its time span. Raises ``ValueError`` for anything that is not such a list.

    Example::

        >>> run = {"cat": "Session", "name": "model_run", "ts": 100, "dur": 50}
        >>> conv = {"cat": "Node", "name": "/conv/Conv_kernel_time", "ts": 110, "dur": 30,
        ...         "args": {"op_name": "Conv", "provider": "CPUExecutionProvider"}}
        >>> parse_profile([run, conv])[0].nodes[0]
        NodeEvent(name='/conv/Conv', op_type='Conv', provider='CPUExecutionProvider', dur_us=30.0)
    """
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError("an ONNX Runtime profile must be a JSON list of event objects")
    spans: list[tuple[float, float]] = []
    kernels: list[tuple[float, NodeEvent]] = []
    for k, event in enumerate(events):
        name, where = event.get("name"), f"profile event {k}"
        if event.get("cat") == "Session" and name == "model_run":
            start = _number(event, "ts", where)
            spans.append((start, start + _number(event, "dur", where)))
        elif event.get("cat") == "Node" and isinstance(name, str) and name.endswith(_KERNEL):
            args = event.get("args") if isinstance(event.get("args"), dict) else {}
            kernels.append((_number(event, "ts", where), NodeEvent(
                name[: -len(_KERNEL)], str(args.get("op_name", "")), str(args.get("provider", "")),
                _number(event, "dur", where))))
    if not spans:
        raise ValueError("the ONNX Runtime profile has no model_run event: no session.run was profiled")
    runs: list[list[NodeEvent]] = [[] for _ in spans]
    for ts, node in sorted(kernels, key=lambda item: item[0]):
        for r, (start, end) in enumerate(spans):
            if start <= ts <= end:
                runs[r].append(node)
                break
    return [ProfiledRun(end - start, tuple(nodes)) for (start, end), nodes in zip(spans, runs)]


def _match_events(run: ProfiledRun, nodes: Sequence[OrtNode], known: set[str]) -> list[int | None]:
    """For each node event of ``run``, the index of the optimised-graph node it times (None: unknown).

    Named nodes match by name. ONNX Runtime names an unnamed node ``<op>_<index>`` in its profile
    but leaves it unnamed in the saved graph; such an event is matched to the one unnamed node of
    that op type whose inputs are all computed by then (the executor runs a topological order), or
    to the node at its position when the run's order is the saved graph's."""
    events = run.nodes
    if len(events) == len(nodes) and all(e.op_type == n.op_type and (e.name == n.name or not n.name)
                                         for e, n in zip(events, nodes)):
        return list(range(len(nodes)))
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.name] = counts.get(n.name, 0) + 1
    by_name = {n.name: j for j, n in enumerate(nodes) if n.name and counts[n.name] == 1}
    ready = set(known)
    used: set[int] = set()
    out: list[int | None] = []
    for event in events:
        j = by_name.get(event.name)
        if j is None:
            fits = [k for k, n in enumerate(nodes) if not n.name and k not in used and n.op_type == event.op_type
                    and all(not t or t in ready for t in n.inputs)]
            j = fits[0] if len(fits) == 1 else None
        if j is not None:
            used.add(j)
            ready.update(nodes[j].outputs)
        out.append(j)
    return out


# ---------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class EngineLayerTiming:
    """One sepconv leaf call on the engine: its ``name`` (as in :class:`sepconv.cost.LayerCost`),
    ``kind`` and module ``type``; ``timing``, the time per run of the engine nodes it owns
    (``nodes``, op types ``ops``); ``status`` "executed", "fused", "folded", "removed" or "absent"
    (:meth:`~sepconv.engines.ort_node_map.NodeMap.status`) and, when fused or folded, the engine
    node that does its work (``fused_into``); such a row's own time is zero."""

    name: str
    kind: str
    type: str
    timing: Timing
    status: str
    nodes: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    fused_into: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "type": self.type, "status": self.status,
                **self.timing.to_dict(), "nodes": list(self.nodes), "ops": list(self.ops),
                "fused_into": self.fused_into}


@dataclass(frozen=True)
class FunctionalTiming:
    """An exported node made by a module's own ``forward`` rather than a leaf module's (a residual
    ``Add``, squeeze-excite's ``Mul``, a ``Flatten``): the ``module`` (``"(model)"`` for the model's
    forward), the exported ``op_type`` and node name ``exported``, the engine ``nodes`` that run it
    and their time per run, or ``fused_into`` when the engine fused it into another node."""

    module: str
    op_type: str
    exported: str
    timing: Timing
    nodes: tuple[str, ...] = ()
    fused_into: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "op_type": self.op_type, "exported": self.exported, **self.timing.to_dict(),
                "nodes": list(self.nodes), "fused_into": self.fused_into}


@dataclass(frozen=True)
class UnmappedTiming:
    """An engine node that maps to no layer of the ones asked for, with its op type, time per run
    and the ``reason``."""

    node: str
    op_type: str
    timing: Timing
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "op_type": self.op_type, **self.timing.to_dict(), "reason": self.reason}


@dataclass(frozen=True)
class EngineLayers:
    """Per-layer times on an engine and the whole model's, from the same profiled runs.

    ``layers`` follow the names asked for; ``functional`` and ``unmapped`` hold the rest of the
    engine's nodes. ``model`` is the engine's own whole-run time (ONNX Runtime's ``model_run``),
    ``wall`` the wall clock around each run, ``nodes`` the kernel times of each run added up,
    ``unprofiled`` (with ``baseline``) an unprofiled session's wall time in the same rounds.
    ``engine``/``version``/``providers`` say what ran, on ``threads`` intra-op threads after the
    ``optimization`` level's graph rewrites."""

    engine: str
    version: str
    providers: tuple[str, ...]
    threads: int
    optimization: str
    input_shape: tuple[int, ...]
    layers: list[EngineLayerTiming]
    functional: list[FunctionalTiming]
    unmapped: list[UnmappedTiming]
    model: Timing
    wall: Timing
    nodes: Timing
    unprofiled: Timing | None = None
    method: str = METHOD

    @property
    def layers_ms(self) -> float:
        """Sum of the per-layer medians."""
        return sum(row.timing.median_ms for row in self.layers)

    @property
    def functional_ms(self) -> float:
        return sum(row.timing.median_ms for row in self.functional)

    @property
    def unmapped_ms(self) -> float:
        return sum(row.timing.median_ms for row in self.unmapped)

    @property
    def rows_ms(self) -> float:
        """Sum of every row's median: layers, functional nodes and unmapped nodes."""
        return self.layers_ms + self.functional_ms + self.unmapped_ms

    def by_kind(self) -> dict[str, float]:
        """Median ms per layer kind (layers in order of first appearance), then "functional" and
        "unmapped"."""
        out: dict[str, float] = {}
        for row in self.layers:
            out[row.kind] = out.get(row.kind, 0.0) + row.timing.median_ms
        out["functional"] = self.functional_ms
        out["unmapped"] = self.unmapped_ms
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "engine_version": self.version, "providers": list(self.providers),
            "threads": self.threads, "optimization": self.optimization, "input_shape": list(self.input_shape),
            "method": self.method, "runs": len(self.model.samples_ms),
            "model": self.model.to_dict(), "wall": self.wall.to_dict(), "nodes": self.nodes.to_dict(),
            "unprofiled": None if self.unprofiled is None else self.unprofiled.to_dict(),
            "layers_ms": self.layers_ms, "functional_ms": self.functional_ms, "unmapped_ms": self.unmapped_ms,
            "by_kind_ms": self.by_kind(),
            "layers": [row.to_dict() for row in self.layers],
            "functional": [row.to_dict() for row in self.functional],
            "unmapped": [row.to_dict() for row in self.unmapped],
        }


def _timing(samples_us: Sequence[float]) -> Timing:
    return Timing.from_samples([us / 1e3 for us in samples_us])


def layer_rows(mapped: NodeMap, runs: Sequence[ProfiledRun], names: Sequence[str] | None = None,
               known_tensors: set[str] | None = None) -> tuple[list[EngineLayerTiming], list[FunctionalTiming],
                                                                list[UnmappedTiming]]:
    """The rows of :class:`EngineLayers` from a node map and the profiled ``runs`` (each row's time
    per run added up over its nodes, then the timing over runs). ``names`` (default: every leaf
    call but ``nn.Identity`` placeholders, as :func:`sepconv.cost.analyze` lists them) picks and
    orders the layer rows; an engine node of a layer not among them is unmapped, saying so.
    ``known_tensors``: the graph's inputs and initializers (to place unnamed nodes)."""
    if not runs:
        raise ValueError("runs=[] must hold at least one profiled run")
    names = [leaf.name for leaf in mapped.leaves if leaf.type != "Identity"] if names is None else list(names)
    leaves = {leaf.name: leaf for leaf in mapped.leaves}
    unknown = [name for name in names if name not in leaves]
    if unknown:
        raise ArgumentError("names", f"names: {', '.join(map(repr, unknown[:5]))} are not leaf-module calls of the "
                                     "model (names are rows of sepconv.cost.analyze: 'module', 'module#2', '(model)')")
    wanted = set(names)
    per_node = np.zeros((len(runs), len(mapped.nodes)))
    strays: dict[str, tuple[str, list[float]]] = {}  # profiled names matching no graph node
    shown = [node.name for node in mapped.nodes]  # an unnamed node as the profiler names it (HardSigmoid_12)
    for r, run in enumerate(runs):
        for event, j in zip(run.nodes, _match_events(run, mapped.nodes, known_tensors or set())):
            if j is None:
                strays.setdefault(event.name, (event.op_type, [0.0] * len(runs)))[1][r] += event.dur_us
            else:
                per_node[r, j] += event.dur_us
                shown[j] = shown[j] or event.name
    zero = _timing([0.0] * len(runs))

    def total(indices: list[int]) -> Timing:
        return _timing(per_node[:, indices].sum(axis=1).tolist()) if indices else zero

    layer_nodes: dict[str, list[int]] = {}
    functional_nodes: dict[str, list[int]] = {}
    unmapped: list[UnmappedTiming] = []
    for j, node in enumerate(mapped.nodes):
        origin = node.origin
        if origin.category == "layer" and origin.name in wanted:
            layer_nodes.setdefault(origin.name, []).append(j)
        elif origin.category == "layer":
            unmapped.append(UnmappedTiming(shown[j], node.op_type, total([j]),
                                           f"maps to layer {origin.name!r}, not among the names asked for"))
        elif origin.category == "functional":
            functional_nodes.setdefault(node.main or "", []).append(j)
        else:
            unmapped.append(UnmappedTiming(shown[j], node.op_type, total([j]), origin.reason))
    for name, (op, samples) in strays.items():
        unmapped.append(UnmappedTiming(name, op, _timing(samples), "a profiled node the optimised graph does not "
                                                                   "hold under that name"))
    layers = []
    for name in names:
        own = layer_nodes.get(name, [])
        leaf = leaves[name]
        layers.append(EngineLayerTiming(
            name, leaf.kind, leaf.type, total(own), mapped.status(name),
            tuple(shown[j] for j in own), tuple(mapped.nodes[j].op_type for j in own),
            None if own else mapped.fused_into(name)))
    functional = []
    for exported, origin in mapped.exported.items():
        if origin.category != "functional":
            continue
        own = functional_nodes.get(exported, [])
        if not own and exported not in mapped.fused:
            continue  # constant-folded or removed by the optimizer: no work on the engine
        functional.append(FunctionalTiming(origin.label, mapped.ops[exported], exported, total(own),
                                           tuple(shown[j] for j in own),
                                           None if own else mapped.fused[exported]))
    return layers, functional, unmapped


# ---------------------------------------------------------------------------------------------
# The measurement


def ort_layer_times(
    model: nn.Module,
    input_shape: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    *,
    threads: int | None = None,
    repeats: int = 20,
    warmup: int = 2,
    budget_s: float | None = None,
    advance: Callable[[], None] | None = None,
    optimization: str = "all",
    baseline: bool = False,
) -> EngineLayers:
    """Time ``model`` on ONNX Runtime node by node, and map the nodes back to its layers.

    The export is the one the ``onnxruntime`` backend runs (BN folded, dynamic batch); the session
    uses ``threads`` intra-op threads (default: every core), sequential execution, and the
    ``optimization`` level's rewrites (default ``"all"``, as deployed). ``warmup`` untimed runs (at
    least one), then ``repeats`` timed runs on a seeded random batch of ``input_shape`` (default: a
    zoo model's own); with ``budget_s``, timed runs stop once that many seconds have passed and
    :data:`MIN_RUNS` are done. ``advance`` is called after each timed run. ``names`` picks the
    layer rows (see :func:`layer_rows`). With ``baseline``, an unprofiled session runs interleaved
    (``EngineLayers.unprofiled``). See the module docstring for what is measured and how.

    Raises ``ValueError`` when onnx or onnxruntime is not installed (naming the extra), when the
    model cannot be exported (naming the model and the layer), or for a bad argument.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentError("model", f"model={type(model).__name__} must be a torch.nn.Module")
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    if threads is not None:
        positive_int("threads", threads)
    if optimization not in LEVELS:
        raise ArgumentError("optimization", f"optimization={optimization!r} must be one of {', '.join(LEVELS)}")
    if budget_s is not None and (isinstance(budget_s, bool) or not isinstance(budget_s, (int, float))
                                 or not budget_s > 0):
        raise ArgumentError("budget_s", f"budget_s={budget_s!r} must be a positive number of seconds")
    ort = require_onnxruntime()
    x = example_input(model, input_shape)
    exported = export_for_layers(model, x)
    feed = {exported.graph.input[0].name: x.numpy().astype(np.float32)}
    with tempfile.TemporaryDirectory() as tmp:
        session, optimized = optimize(exported, optimization, threads, "ort_profile", tmp)
        plain = optimize(exported, optimization, threads)[0] if baseline else None
        mapped = map_nodes(model, x, exported, optimized)
        untimed = max(warmup, 1)
        for _ in range(untimed):
            session.run(None, feed)
            if plain is not None:
                plain.run(None, feed)
        wall: list[float] = []
        unprofiled: list[float] = []
        start = time.perf_counter()
        for _ in range(repeats):
            if budget_s is not None and len(wall) >= MIN_RUNS and time.perf_counter() - start > budget_s:
                break
            if plain is not None:
                unprofiled.append(_wall(plain, feed))
            wall.append(_wall(session, feed))
            if advance is not None:
                advance()
        path = session.end_profiling()
        events = json.loads(Path(path).read_text())
    runs = parse_profile(events)
    if len(runs) != untimed + len(wall):  # its profiler stops recording at a million events
        raise ValueError(f"ONNX Runtime's profile holds {len(runs)} runs of the {untimed + len(wall)} made: "
                         "ask for fewer repeats")
    runs = runs[untimed:]
    known = {t.name for t in optimized.graph.input} | {t.name for t in optimized.graph.initializer}
    layers, functional, unmapped = layer_rows(mapped, runs, names, known)
    return EngineLayers(
        engine=ENGINE, version=ort.__version__, providers=tuple(session.get_providers()),
        threads=session.get_session_options().intra_op_num_threads, optimization=optimization,
        input_shape=tuple(x.shape), layers=layers, functional=functional, unmapped=unmapped,
        model=_timing([run.model_us for run in runs]), wall=Timing.from_samples(wall),
        nodes=_timing([run.nodes_us for run in runs]),
        unprofiled=Timing.from_samples(unprofiled) if unprofiled else None)


def _wall(session: Any, feed: dict[str, np.ndarray]) -> float:
    begin = time.perf_counter()
    session.run(None, feed)
    return (time.perf_counter() - begin) * 1e3
