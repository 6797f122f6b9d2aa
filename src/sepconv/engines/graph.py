"""Clean-up passes over an exported ONNX graph: constants folded, padding merged into convs.

torch's TorchScript exporter turns TensorFlow-style "SAME" padding (an ``F.pad`` whose amounts
are Python ints at trace time) into a ten-node subgraph that converts torch's pad order to
ONNX's (ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast) and does not fold it, and it
de-duplicates equal initializers through ``Identity`` nodes. These passes leave one ``Conv`` (or
``MaxPool``) with asymmetric ``pads`` per layer, and squeeze-excite's mean as ``GlobalAveragePool``. ORT's own optimizer would do some of this at
session start, but the file is the product: other runtimes, and people, read it too. No
maintained package does it for ONNX files written by torch (onnxoptimizer is archived), so it is
written here, with the ONNX reference evaluator computing the constant subgraphs.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _evaluate(node: onnx.NodeProto, inputs: list[np.ndarray], opset: int) -> list[np.ndarray]:
    """Run one node on constant inputs with the ONNX reference implementation."""
    names = [f"in{i}" for i in range(len(inputs))]
    renamed = helper.make_node(node.op_type, [n if node.input[i] else "" for i, n in enumerate(names)],
                               [f"out{i}" for i in range(len(node.output))], domain=node.domain)
    renamed.attribute.extend(node.attribute)
    feeds = {n: a for n, a, orig in zip(names, inputs, node.input) if orig}
    return ReferenceEvaluator(renamed, opsets={"": opset}).run(None, feeds)


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every node whose inputs are all constant by initializers holding its outputs."""
    graph, opset = model.graph, _opset(model)
    known = _constants(graph)
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute):
            kept.append(node)
            continue
        if node.op_type == "Constant":
            known[node.output[0]] = numpy_helper.to_array(node.attribute[0].t) if node.attribute[0].name == "value" \
                else _evaluate(node, [], opset)[0]
            continue
        if all(not name or name in known for name in node.input):
            outs = _evaluate(node, [known[n] for n in node.input if n], opset)
            known.update(zip(node.output, outs))
            continue
        kept.append(node)
    used = {name for node in kept for name in node.input} | {o.name for o in graph.output}
    initial = {init.name for init in graph.initializer}
    extra = [numpy_helper.from_array(np.asarray(known[n]), n) for n in sorted(used) if n in known and n not in initial]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(extra)
    return remove_unused(model)


def remove_identities(model: onnx.ModelProto) -> onnx.ModelProto:
    """Bypass ``Identity`` nodes (the exporter's de-duplicated initializers) unless they feed an output."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    alias: dict[str, str] = {}
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and node.output[0] not in outputs:
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
            continue
        kept.append(node)
    for node in kept:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    del graph.node[:]
    graph.node.extend(kept)
    return remove_unused(model)


def merge_pads(model: onnx.ModelProto) -> onnx.ModelProto:
    """Merge a constant spatial ``Pad`` into the ``Conv`` (zero padding) or ``MaxPool`` (-inf) it feeds."""
    graph = model.graph
    consts = _constants(graph)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    removed = set()
    for pad in graph.node:
        if pad.op_type != "Pad" or len(consumers.get(pad.output[0], [])) != 1:
            continue
        target = consumers[pad.output[0]][0]
        attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
        mode = attrs.get("mode", b"constant")
        if target.op_type not in ("Conv", "MaxPool") or mode != b"constant" or len(pad.input) < 2 \
                or pad.input[1] not in consts or (len(pad.input) > 3 and pad.input[3]):
            continue
        value = float(consts[pad.input[2]]) if len(pad.input) > 2 and pad.input[2] else 0.0
        if value != (0.0 if target.op_type == "Conv" else -np.inf):
            continue
        pads = [int(p) for p in consts[pad.input[1]]]
        rank = len(pads) // 2
        begin, end = pads[:rank], pads[rank:]
        if any(begin[:2]) or any(end[:2]) or any(p < 0 for p in pads):
            continue
        target_attrs = {a.name: a for a in target.attribute}
        auto_pad = helper.get_attribute_value(target_attrs["auto_pad"]) if "auto_pad" in target_attrs else b"NOTSET"
        if auto_pad != b"NOTSET":
            continue
        old = list(helper.get_attribute_value(target_attrs["pads"])) if "pads" in target_attrs else [0] * (2 * (rank - 2))
        spatial = rank - 2
        new = [old[i] + begin[2 + i] for i in range(spatial)] + [old[spatial + i] + end[2 + i] for i in range(spatial)]
        for i, a in enumerate(target.attribute):
            if a.name == "pads":
                del target.attribute[i]
                break
        target.attribute.append(helper.make_attribute("pads", new))
        target.input[0] = pad.input[0]
        removed.add(id(pad))
    kept = [n for n in graph.node if id(n) not in removed]
    del graph.node[:]
    graph.node.extend(kept)
    return remove_unused(model)


def remove_unused(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop nodes whose outputs nothing reads, then initializers nothing reads."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    return model


def clean(model: onnx.ModelProto) -> onnx.ModelProto:
    """All passes, in order."""
    return global_pools(merge_pads(remove_identities(fold_constants(model))))


def global_pools(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite ``ReduceMean`` over H and W of a 4-D map (squeeze-excite's ``x.mean((2, 3), keepdim=True)``)
    as ``GlobalAveragePool``: the same numbers, but an op ORT keeps in its NCHWc layout, where
    ``ReduceMean`` forces a layout change back and forth around every squeeze-excite block."""
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model).graph
    rank = {v.name: len(v.type.tensor_type.shape.dim) for v in list(inferred.value_info) + list(inferred.input)
            if v.type.tensor_type.HasField("shape")}
    consts = _constants(graph)
    for node in graph.node:
        if node.op_type != "ReduceMean" or rank.get(node.input[0]) != 4:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1] in consts:
            axes = consts[node.input[1]].tolist()
        if axes is None or sorted(a % 4 for a in axes) != [2, 3] or attrs.get("keepdims", 1) != 1:
            continue
        node.op_type = "GlobalAveragePool"
        del node.attribute[:]
        del node.input[1:]
    return remove_unused(model)
