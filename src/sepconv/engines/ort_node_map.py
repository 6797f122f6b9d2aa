"""Which sepconv layer each node ONNX Runtime runs comes from: the map behind per-layer times on
ONNX Runtime (:mod:`sepconv.engines.ort_layers`).

Two steps, each read from the graphs themselves rather than from a table of known fusions:

1. **Exported node -> module call.** torch's TorchScript exporter names every node after the
   modules on the call stack when it was traced: ``/blocks/blocks.1/dw/conv/Conv`` is the ``Conv``
   made inside ``blocks.1.dw.conv`` (each module contributes its qualified name from its last
   non-numeric atom on: ``blocks.1``, then ``dw``, then ``conv``; the root nothing). One forward
   pass with hooks on every module records the same scope strings, so a node's scope names the
   module call that made it: a *leaf* call (a row of :func:`sepconv.cost.analyze`, ``name`` or
   ``name#2``) or a parent's own ``forward`` (a residual ``Add``, squeeze-excite's ``Mul``, a
   ``Flatten``: *functional* nodes, kept with that module's name). The exporter makes each call's
   scope name unique: the second call of ``/block/block.0/dw`` is ``/block/block.0/dw_1``, so a
   module called several times (weights shared across recursions) maps call by call.
2. **Optimised node -> exported nodes.** ONNX Runtime's optimizer fuses and renames: a fused
   ``Conv`` keeps the conv's name (``FusedConv`` at level ``extended``), its NCHWc rewrite is named
   after the fused node's output tensor plus ``_nchwc`` (``/blocks/blocks.1/dw/act/Clip_output_0_nchwc``
   is the depthwise conv with its ReLU6), a function op it inlines (ONNX's ``HardSwish``) becomes
   unnamed nodes that write the original output tensor. Each optimised node is *anchored* on the
   exported node its name (longest exported node or tensor name it starts with), or else its
   output, comes from. Exported nodes no optimised node is anchored on were fused away; each joins
   the optimised node beside it in the data flow: a conv (or Gemm/MatMul) the fused conv-type node
   it feeds or is fed by, anything else the node whose only consumer it was (an activation or a
   residual ``Add`` after its conv), else its single consumer's. A node's time counts for its
   *main* member: the exported node of the optimised op's own type (the ``Conv`` of a
   Conv+BN+activation node), so a fused conv counts as its conv's kind.

Layout changes ONNX Runtime inserts (``ReorderInput``/``ReorderOutput`` around NCHWc blocks) map
to no layer and are listed as such.

Example::

    >>> from torch import nn
    >>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    >>> mapped = node_map(m, (1, 3, 16, 16), optimization="extended")
    >>> [(n.op_type, n.origin.name) for n in mapped.nodes]
    [('FusedConv', '0')]
    >>> mapped.status("1"), mapped.status("2")
    ('folded', 'fused')
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._util.runtime import eval_mode
from ..cost import layer_kind
from ..models.provenance import provenance_of
from .fold import find_foldable
from .shapes import example_input

__all__ = ["INSTALL", "LAYOUT_OPS", "LeafCall", "NodeMap", "Origin", "OrtNode", "anchor_by_name", "export_for_layers",
           "exported_origins", "map_nodes", "model_label", "module_calls", "node_map", "optimize",
           "require_onnxruntime"]

INSTALL = "pip install 'sepconv[onnx]'"
# Ops ONNX Runtime inserts to change a tensor's layout or device: they belong to no layer.
LAYOUT_OPS = frozenset({"ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost"})
# Ops whose fused forms carry the multiply-accumulates: a fused node counts for its member of this type.
_LINEAR_OPS = ("ConvTranspose", "Conv", "Gemm", "MatMul")


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a ``ValueError`` naming the extra that installs it."""
    try:
        import onnx  # noqa: F401 - the export needs it too
        import onnxruntime
    except ImportError as e:
        raise ValueError(f"per-layer times on ONNX Runtime need the {e.name or 'onnxruntime'} package: "
                         f"{INSTALL}") from None
    return onnxruntime


def model_label(model: nn.Module) -> str:
    """The registry name of a zoo model, else its class name."""
    provenance = provenance_of(model)
    return provenance.model if provenance is not None else type(model).__name__


# ---------------------------------------------------------------------------------------------
# Step 1: exported node -> module call


@dataclass(frozen=True)
class LeafCall:
    """One call of a leaf module, named as in :class:`sepconv.cost.LayerCost`: ``module`` is its
    qualified name (``""`` for a model that is itself a leaf), ``call`` counts from 1."""

    name: str
    module: str
    call: int
    kind: str
    type: str


@dataclass(frozen=True)
class _ScopeCall:
    module: str
    leaf: LeafCall | None  # None for a module with children


def _unqualified(qualname: str) -> str:
    """The part of a qualified module name torch's exporter puts in node names: from the last
    non-numeric atom on (``blocks.1`` -> ``blocks.1``, ``blocks.1.dw`` -> ``dw``)."""
    atoms = qualname.split(".")
    for i in range(len(atoms) - 1, -1, -1):
        if not atoms[i].isnumeric():
            return ".".join(atoms[i:])
    return qualname


def module_calls(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, list[_ScopeCall]], list[LeafCall]]:
    """Run ``model(x)`` once (eval mode, no grad) and return, for every scope string the exporter
    writes (``/blocks/blocks.1/dw``; ``""`` for the root), the module calls made under it in
    order, and every leaf call in order."""
    names = {module: name for name, module in model.named_modules()}
    stack: list[str] = []
    counts: Counter[nn.Module] = Counter()
    scopes: dict[str, list[_ScopeCall]] = {}
    leaves: list[LeafCall] = []

    def push(module: nn.Module, args: Any) -> None:
        qualname = names.get(module)
        if qualname is None:  # a module that is not part of the model (called from its forward)
            stack.append("")
            return
        stack.append(qualname)
        counts[module] += 1
        scope = "".join("/" + _unqualified(q) for q in stack if q)
        leaf = None
        if next(module.children(), None) is None:
            suffix = f"#{counts[module]}" if counts[module] > 1 else ""
            leaf = LeafCall((qualname or "(model)") + suffix, qualname, counts[module], layer_kind(module),
                            type(module).__name__)
            leaves.append(leaf)
        scopes.setdefault(scope, []).append(_ScopeCall(qualname, leaf))

    def pop(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()

    handles = [h for m in names for h in (m.register_forward_pre_hook(push), m.register_forward_hook(pop))]
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return scopes, leaves


@dataclass(frozen=True)
class Origin:
    """What an exported node belongs to: ``category`` "layer" (``name`` is a leaf-call name),
    "functional" (``name`` is the module whose own forward made it; ``""`` the model's) or "none"
    (``reason`` says why)."""

    category: str
    name: str = ""
    reason: str = ""

    @property
    def label(self) -> str:
        """``name``, with ``(model)`` for the model's own forward."""
        return self.name or "(model)"


_REPEAT = re.compile(r"(?P<scope>.*)_(?P<k>\d+)")


def _scope_call(scope: str, scopes: dict[str, list[_ScopeCall]]) -> tuple[str, int] | None:
    """A node's scope string -> (the scope as :func:`module_calls` records it, which call of it).

    torch names each call's scope by the module path, and the exporter makes the names unique: the
    second call of a module that made nodes is ``path_1``, the third ``path_2`` (the parents' part of
    the path is never suffixed)."""
    if scope in scopes:
        return scope, 0
    match = _REPEAT.fullmatch(scope)
    if match and match["scope"] in scopes:
        return match["scope"], int(match["k"])
    return None


def exported_origins(nodes: Sequence[Any], scopes: dict[str, list[_ScopeCall]]) -> dict[int, Origin]:
    """Exported node index -> :class:`Origin`, from the scope in its name."""
    origins: dict[int, Origin] = {}
    for i, node in enumerate(nodes):
        if not node.name.startswith("/"):
            origins[i] = Origin("none", reason="no module scope in its name")
            continue
        scope = node.name.rpartition("/")[0]
        found = _scope_call(scope, scopes)
        if found is None:
            origins[i] = Origin("none", reason=f"scope {scope or '/'!r} is no module call of the model")
            continue
        calls = scopes[found[0]]
        modules = sorted({call.module for call in calls})
        if len(modules) > 1:
            origins[i] = Origin("none", reason=f"scope {scope!r} is shared by modules {', '.join(modules)}")
        elif found[1] >= len(calls):
            origins[i] = Origin("none", reason=f"scope {scope!r}: module {modules[0]!r} is called only "
                                               f"{len(calls)} time(s)")
        elif calls[found[1]].leaf is not None:
            origins[i] = Origin("layer", calls[found[1]].leaf.name)
        else:
            origins[i] = Origin("functional", modules[0])
    return origins


# ---------------------------------------------------------------------------------------------
# Step 2: optimised node -> exported nodes


@dataclass(frozen=True)
class OrtNode:
    """One node of the graph ONNX Runtime runs: its ``name`` (as its profiler names it; ``""`` for
    an unnamed node ONNX Runtime made), ``op_type`` and ``domain``; ``members``, the exported nodes
    it computes (``main`` first: the one whose layer its time counts for); ``origin``, what
    ``main`` belongs to (category "none" with the reason when nothing)."""

    name: str
    op_type: str
    domain: str
    members: tuple[str, ...]
    origin: Origin
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    @property
    def main(self) -> str | None:
        return self.members[0] if self.members else None


def _base_op(op_type: str) -> str:
    """The exported op a (possibly fused) ONNX Runtime op computes: FusedConv, NhwcFusedConv and the
    NCHWc Conv -> Conv; FusedGemm -> Gemm; FusedMatMul -> MatMul; anything else itself."""
    for op in _LINEAR_OPS:
        if op in op_type:
            return op
    return op_type


def anchor_by_name(name: str, known: dict[str, int]) -> int | None:
    """The exported node whose name (or output tensor name) is the longest prefix of ``name``
    ending at a separator."""
    for end in range(len(name), 0, -1):
        if (end == len(name) or name[end] in "_/:") and name[:end] in known:
            return known[name[:end]]
    return None


@dataclass
class _Graphs:
    exported: Any  # onnx.GraphProto
    optimized: Any
    producer: dict[str, int] = field(default_factory=dict)  # tensor -> exported node
    consumers: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, node in enumerate(self.exported.node):
            for t in node.output:
                self.producer[t] = i
            for t in node.input:
                if t:
                    self.consumers.setdefault(t, []).append(i)


def _anchors(graphs: _Graphs) -> dict[int, int | None]:
    """Optimised node index -> the exported node it is anchored on (None: a layout change, or nothing)."""
    exported, optimized = graphs.exported.node, graphs.optimized.node
    counts = Counter(n.name for n in exported)
    known = {n.name: i for i, n in enumerate(exported) if n.name and counts[n.name] == 1}
    known.update({t: i for t, i in graphs.producer.items() if t not in known})
    anchors: dict[int, int | None] = {}
    for j, node in enumerate(optimized):
        if node.op_type in LAYOUT_OPS:
            anchors[j] = None
        elif node.name:
            anchors[j] = anchor_by_name(node.name, known)
        else:
            anchors[j] = next((graphs.producer[t] for t in node.output if t in graphs.producer), None)
    # unnamed nodes that write only ONNX Runtime's own tensors (an inlined function's inner nodes)
    # belong to the exported node that all their consumers are anchored on
    readers: dict[str, list[int]] = {}
    for j, node in enumerate(optimized):
        for t in node.input:
            readers.setdefault(t, []).append(j)
    changed = True
    while changed:
        changed = False
        for j, node in enumerate(optimized):
            if anchors[j] is not None or node.name or node.op_type in LAYOUT_OPS:
                continue
            found = {anchors[k] for t in node.output for k in readers.get(t, [])}
            if len(found) == 1 and None not in found:
                anchors[j] = found.pop()
                changed = True
    return anchors


def _absorb(graphs: _Graphs, anchors: dict[int, int | None]) -> dict[int, list[int]]:
    """Clusters: optimised node -> the exported nodes it computes, its anchor first, then those no
    optimised node is anchored on that it absorbed (an exported node in no cluster was removed)."""
    exported, optimized = graphs.exported.node, graphs.optimized.node
    members: dict[int, list[int]] = {j: [a] for j, a in anchors.items() if a is not None}
    home: dict[int, int] = {}  # exported node -> optimised node holding it
    for j, a in anchors.items():
        if a is not None:
            home.setdefault(a, j)
    loose = [i for i in range(len(exported)) if i not in home]

    def has_op(j: int, op: str) -> bool:
        return any(exported[i].op_type == op for i in members[j])

    changed = True
    while changed and loose:
        changed = False
        for i in list(loose):
            node = exported[i]
            feeds = [graphs.producer[t] for t in node.input if t in graphs.producer]
            fed = [c for t in node.output for c in graphs.consumers.get(t, [])]
            target: int | None = None
            if node.op_type in _LINEAR_OPS:
                # a fused node of its op type, named after a neighbour (its activation's output)
                for side in (fed, feeds):
                    fits = [j for j in dict.fromkeys(home[k] for k in side if k in home)
                            if _base_op(optimized[j].op_type) == node.op_type and not has_op(j, node.op_type)]
                    if len(fits) == 1:
                        target = fits[0]
                        break
            else:
                # an activation / residual add joins the node it was the only consumer of (the latest
                # such producer: the one that ran last), else its single consumer's node
                only = [home[graphs.producer[t]] for t in node.input
                        if graphs.producer.get(t) in home and set(graphs.consumers[t]) == {i}]
                if only:
                    target = max(only)
                elif len(set(fed)) == 1 and fed[0] in home:
                    target = home[fed[0]]
            if target is not None:
                members[target].append(i)
                home[i] = target
                loose.remove(i)
                changed = True
    return members


def _main_first(members: list[int], op_type: str, nodes: Sequence[Any]) -> list[int]:
    base = _base_op(op_type)
    main = next((i for i in members if nodes[i].op_type == base), members[0])
    return [main] + [i for i in members if i != main]


# ---------------------------------------------------------------------------------------------
# The map


@dataclass(frozen=True)
class NodeMap:
    """Every node ONNX Runtime runs, what it maps to, and what happened to each sepconv layer.

    ``nodes``: :class:`OrtNode` in the optimised graph's order. ``exported``: exported node name ->
    :class:`Origin`. ``fused``: exported node name -> the ONNX Runtime node name it was fused into.
    ``removed``: exported nodes that no ONNX Runtime node computes. ``leaves``: every leaf call, in
    call order. ``folded``: BatchNorm leaf -> the layer it was folded into at export. ``ops``:
    exported node name -> its op type.
    """

    nodes: list[OrtNode]
    exported: dict[str, Origin]
    fused: dict[str, str]
    removed: tuple[str, ...]
    leaves: list[LeafCall]
    folded: dict[str, str]
    ops: dict[str, str] = field(default_factory=dict)

    def leaf(self, name: str) -> LeafCall:
        for leaf in self.leaves:
            if leaf.name == name:
                return leaf
        raise KeyError(name)

    def nodes_of(self, layer: str) -> list[OrtNode]:
        """The ONNX Runtime nodes whose time counts for leaf call ``layer``."""
        return [n for n in self.nodes if n.origin == Origin("layer", layer)]

    def exported_of(self, layer: str) -> list[str]:
        """The exported nodes leaf call ``layer`` made."""
        return [name for name, origin in self.exported.items() if origin == Origin("layer", layer)]

    def fused_into(self, layer: str) -> str | None:
        """The ONNX Runtime node leaf call ``layer``'s work went into when it has none of its own:
        the node its exported node was fused into, or, for a BatchNorm folded at export, its conv's."""
        if layer in self.folded:
            own = self.nodes_of(self.folded[layer])
            return own[0].name if own else self.fused_into(self.folded[layer])
        for name in self.exported_of(layer):
            if name in self.fused:
                return self.fused[name]
        return None

    def status(self, layer: str) -> str:
        """"executed" (ONNX Runtime runs a node for it), "fused" (its node was fused into another
        layer's), "folded" (a BatchNorm folded into its conv at export), "removed" (ONNX Runtime's
        optimizer dropped its node) or "absent" (it exported to no node: an eval-mode Dropout, an
        Identity)."""
        if self.nodes_of(layer):
            return "executed"
        if layer in self.folded:
            return "folded"
        exported = self.exported_of(layer)
        if any(name in self.fused for name in exported):
            return "fused"
        return "removed" if exported else "absent"


def map_nodes(model: nn.Module, x: torch.Tensor, exported: Any, optimized: Any) -> NodeMap:
    """The :class:`NodeMap` of ``model`` (run on ``x``), its TorchScript export ``exported`` (an
    ``onnx.ModelProto`` with the exporter's node names) and the graph ONNX Runtime made of it,
    ``optimized`` (the file ``SessionOptions.optimized_model_filepath`` writes)."""
    scopes, leaves = module_calls(model, x)
    graphs = _Graphs(exported.graph, optimized.graph)
    enodes = graphs.exported.node
    origins = exported_origins(enodes, scopes)
    anchors = _anchors(graphs)
    members = _absorb(graphs, anchors)
    nodes = []
    fused: dict[str, str] = {}  # exported node -> the optimised node it went into, not as its main
    for j, node in enumerate(graphs.optimized.node):
        if j in members:
            order = _main_first(members[j], node.op_type, enodes)
            fused.update((enodes[i].name, node.name) for i in order[1:])
            origin = origins[order[0]]
            names = tuple(enodes[i].name for i in order)
        else:
            names = ()
            origin = Origin("none", reason="a layout change inserted by ONNX Runtime" if node.op_type in LAYOUT_OPS
                            else "its name and outputs match no exported node")
        nodes.append(OrtNode(node.name, node.op_type, node.domain, names, origin, tuple(node.input),
                             tuple(node.output)))
    held = set().union(*[set(v) for v in members.values()]) if members else set()
    removed = tuple(n.name for i, n in enumerate(enodes) if i not in held)
    by_module = {leaf.module: leaf.name for leaf in leaves if leaf.call == 1}
    with eval_mode(model):
        pairs = find_foldable(model, x)
    folded = {by_module[p.norm]: by_module[p.producer] for p in pairs if p.norm in by_module and p.producer in by_module}
    return NodeMap(nodes, {n.name: origins[i] for i, n in enumerate(enodes)}, fused, removed, leaves, folded,
                   {n.name: n.op_type for n in enodes})


def node_map(model: nn.Module, input_shape: Sequence[int] | None = None, *, optimization: str = "all") -> NodeMap:
    """Export ``model`` as the ``onnxruntime`` backend does (BN folded), let ONNX Runtime optimise
    it at ``optimization`` (see :data:`sepconv.engines.ort_options.LEVELS`) and map its nodes
    (:func:`map_nodes`); nothing is timed. ``input_shape`` defaults to a zoo model's own."""
    require_onnxruntime()
    x = example_input(model, input_shape)
    exported = export_for_layers(model, x)
    optimized = optimize(exported, optimization, threads=1)[1]
    return map_nodes(model, x, exported, optimized)


def export_for_layers(model: nn.Module, x: torch.Tensor) -> Any:
    """The export the ``onnxruntime`` backend runs (:func:`~sepconv.engines.onnx_export.to_onnx`,
    BN folded, dynamic batch), with a ``ValueError`` naming the model when it cannot be exported."""
    from .onnx_export import to_onnx

    try:
        return to_onnx(model, tuple(x.shape)).proto
    except (ValueError, RuntimeError) as e:  # the exporter's reason, or the model cannot run on x at all
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{model_label(model)}: no per-layer times on ONNX Runtime: cannot export it on an input "
                         f"of shape {tuple(x.shape)}: {reason}") from None


def optimize(exported: Any, optimization: str, threads: int | None, profile_prefix: str | None = None,
             directory: str | Path | None = None) -> tuple[Any, Any]:
    """An ONNX Runtime session on ``exported`` and the optimised graph it wrote (read back as an
    ``onnx.ModelProto``); with ``profile_prefix`` the session profiles every run into ``directory``."""
    import onnx

    ort = require_onnxruntime()
    from .ort_options import session_options

    with tempfile.TemporaryDirectory() as tmp:
        so = session_options(threads, optimization)
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        # the weights go to a file beside it that is never read back: only the graph is needed
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "optimized.data")
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        if profile_prefix is not None:
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(directory or tmp) / profile_prefix)
        try:
            session = ort.InferenceSession(exported.SerializeToString(), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
            raise ValueError(f"ONNX Runtime cannot load the model: {str(e).splitlines()[0]}") from None
        return session, onnx.load(so.optimized_model_filepath, load_external_data=False)
