"""sepconv.engines.graph: the clean-up passes over an exported ONNX graph — constants folded,
identities bypassed, constant pads merged into the Conv or MaxPool they feed, squeeze-excite's mean
as GlobalAveragePool, unused nodes dropped — each computing what the graph computed before."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from sepconv.engines.graph import clean, fold_constants, global_pools, merge_pads, remove_identities, remove_unused

RNG = np.random.default_rng(0)


def model(nodes, inits, inputs=(("x", [1, 2, 5, 5]),), outputs=("y",), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None] * 4) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(proto)
    return proto


def run(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ReferenceEvaluator(proto).run(None, {"x": x})[0]


def ops(proto: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in proto.graph.node]


def attribute(proto: onnx.ModelProto, op: str, name: str):
    node = next(n for n in proto.graph.node if n.op_type == op)
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)


WEIGHT = RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)
X = RNG.standard_normal((1, 2, 5, 5)).astype(np.float32)


def test_fold_constants_computes_constant_subgraphs_once():
    nodes = [helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2.0), "v")),
             helper.make_node("Mul", ["w", "two"], ["w2"]),  # constant: folded into an initializer
             helper.make_node("Conv", ["x", "w2"], ["y"], pads=[1, 1, 1, 1])]
    proto = model(nodes, {"w": WEIGHT})
    want = run(proto, X)
    folded = fold_constants(proto)
    assert ops(folded) == ["Conv"]
    assert [i.name for i in folded.graph.initializer] == ["w2"]  # the unused original is dropped
    np.testing.assert_allclose(run(folded, X), want, rtol=1e-6)


def test_identities_are_bypassed_unless_they_feed_an_output():
    nodes = [helper.make_node("Identity", ["w"], ["w_alias"]), helper.make_node("Conv", ["x", "w_alias"], ["c"]),
             helper.make_node("Identity", ["c"], ["y"])]
    proto = model(nodes, {"w": WEIGHT})
    want = run(proto, X)
    cleaned = remove_identities(proto)
    assert ops(cleaned) == ["Conv", "Identity"]
    assert list(cleaned.graph.node[0].input) == ["x", "w"]
    np.testing.assert_allclose(run(cleaned, X), want)


def pad(value: float | None, amounts: list[int], target: str, **attrs) -> onnx.ModelProto:
    """A constant Pad (``amounts`` in ONNX's order: every axis's begin, then every end) feeding ``target``."""
    inputs = ["x", "pads"] + (["value"] if value is not None else [])
    inits = {"pads": np.array(amounts, np.int64), **({"value": np.float32(value)} if value is not None else {})}
    if target == "Conv":
        inits["w"] = WEIGHT
        last = helper.make_node("Conv", ["p", "w"], ["y"], **attrs)
    else:
        last = helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3], strides=[2, 2], **attrs)
    return model([helper.make_node("Pad", inputs, ["p"], mode="constant"), last], inits)


@pytest.mark.parametrize("target, value, attrs, merged", [
    ("Conv", None, {}, [0, 0, 1, 1]),  # TensorFlow's SAME: nothing before, one after
    ("Conv", 0.0, {"pads": [1, 1, 1, 1]}, [1, 1, 2, 2]),  # added to the conv's own pads
    ("MaxPool", float("-inf"), {}, [0, 0, 1, 1]),
])
def test_merge_pads_moves_a_constant_pad_into_the_conv_or_pool(target, value, attrs, merged):
    proto = pad(value, [0, 0, 0, 0, 0, 0, 1, 1], target, **attrs)
    want = run(proto, X)
    out = merge_pads(proto)
    assert ops(out) == [target] and list(attribute(out, target, "pads")) == merged
    np.testing.assert_allclose(run(out, X), want, rtol=1e-6)


@pytest.mark.parametrize("target, value, amounts", [
    ("Conv", 1.0, [0, 0, 0, 0, 0, 0, 1, 1]),  # padding with ones is not a conv's zero padding
    ("MaxPool", 0.0, [0, 0, 0, 0, 0, 0, 1, 1]),  # a pool pads with -inf
    ("Conv", 0.0, [0, 1, 0, 0, 0, 0, 1, 1]),  # a channel pad is no spatial padding
    ("Conv", 0.0, [0, 0, -1, 0, 0, 0, 1, 1]),  # a crop
])
def test_merge_pads_leaves_pads_it_cannot_merge(target, value, amounts):
    proto = pad(value, amounts, target)
    assert ops(merge_pads(proto)) == ["Pad", target]


def test_reduce_mean_over_the_map_becomes_a_global_pool():
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("ReduceMean", ["x", "channel"], ["n"], keepdims=1),
             helper.make_node("Add", ["m", "n"], ["y"])]
    proto = model(nodes, {"axes": np.array([-2, -1], np.int64), "channel": np.array([1], np.int64)}, opset=18)
    want = run(proto, X)
    out = global_pools(proto)
    assert ops(out) == ["GlobalAveragePool", "ReduceMean", "Add"]
    assert [i.name for i in out.graph.initializer] == ["channel"]
    np.testing.assert_allclose(run(out, X), want, rtol=1e-6)


def test_remove_unused_drops_dead_nodes_and_initializers():
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Conv", ["x", "w"], ["dead"])]
    out = remove_unused(model(nodes, {"w": WEIGHT}))
    assert ops(out) == ["Relu"] and len(out.graph.initializer) == 0


def test_clean_runs_every_pass():
    nodes = [helper.make_node("Identity", ["w"], ["w_alias"]),
             helper.make_node("Constant", [], ["pads"], value=numpy_helper.from_array(
                 np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "v")),
             helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
             helper.make_node("Conv", ["p", "w_alias"], ["y"])]
    proto = model(nodes, {"w": WEIGHT})
    want = run(proto, X)
    out = clean(proto)
    assert ops(out) == ["Conv"] and list(attribute(out, "Conv", "pads")) == [0, 0, 1, 1]
    onnx.checker.check_model(out)
    np.testing.assert_allclose(run(out, X), want, rtol=1e-6)
