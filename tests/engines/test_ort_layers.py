"""sepconv.engines.ort_layers / ort_node_map: ONNX Runtime's per-node times mapped back to sepconv's
layers. Every registered model: each conv layer has exactly its ONNX Runtime node and each conv node
a layer, kinds as the cost model gives them; a canned profile gives the rows; fused, folded,
functional and unmapped nodes are reported as such; bad input is named. No timing decides a test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch
from onnx import helper
from torch import nn

from sepconv.cost import analyze
from sepconv.engines.ort_layers import (
    ENGINE,
    MIN_RUNS,
    NodeEvent,
    ProfiledRun,
    _match_events,
    layer_rows,
    ort_layer_times,
    parse_profile,
)
from sepconv.engines.ort_node_map import (
    LAYOUT_OPS,
    Origin,
    OrtNode,
    export_for_layers,
    map_nodes,
    node_map,
)
from sepconv.models import create_model, list_models
from sepconv.models.registry import argument_defaults, model_entry

pytestmark = pytest.mark.usefixtures("threads_unchanged")

FIXTURE = Path(__file__).parent.parent / "fixtures" / "ort" / "tiny_profile.json"
CONV_KINDS = {"depthwise", "grouped", "pointwise", "spatial", "standard"}
CONV_OPS = {"Conv", "ConvTranspose"}
SIZES = (32, 64, 96, 128, 160, 224, 299)


def small(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    """A cheap instance of a registered model and the smallest input of SIZES it runs on: 10
    classes, half width where the model has a width, its backbone (``features_only``) where an
    adaptive pool to more than 1x1 could not be exported at a small size (VGG, AlexNet)."""
    defaults = argument_defaults(model_entry(name))
    kwargs = {}
    if "num_classes" in defaults:
        kwargs["num_classes"] = 10
    if "width_mult" in defaults:
        kwargs["width_mult"] = 0.5
    channels = defaults.get("in_chans", 3)
    for size in SIZES:
        if "img_size" in defaults:  # MobileFaceNet's global depthwise conv is built for one size
            kwargs["img_size"] = size
        model = create_model(name, **kwargs)
        pools = [m for m in model.modules()
                 if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size not in (1, (1, 1))]
        if pools and "features_only" in defaults:
            model = create_model(name, features_only=True, **{k: v for k, v in kwargs.items() if k != "num_classes"})
        shape = (1, channels, size, size)
        try:
            with torch.no_grad():
                model.eval()(torch.zeros(shape))
            return model, shape
        except (RuntimeError, ValueError):
            continue
    raise AssertionError(f"{name} runs on none of the sizes {SIZES}")


@pytest.mark.parametrize("name", list_models())
def test_every_conv_layer_maps_to_its_ort_node(name):
    model, shape = small(name)
    mapped = node_map(model, shape)
    cost = {row.name: row.kind for row in analyze(model, shape).layers}
    # the leaf calls are the cost model's rows, with its kinds
    assert {leaf.name: leaf.kind for leaf in mapped.leaves if leaf.type != "Identity"} == cost
    # every conv node of the export belongs to a conv layer
    for exported, origin in mapped.exported.items():
        if mapped.ops[exported] in CONV_OPS:
            assert origin.category == "layer" and cost[origin.name] in CONV_KINDS, (exported, origin)
    # every conv layer runs as exactly one ONNX Runtime conv node whose main node is its own conv
    for leaf in mapped.leaves:
        if leaf.kind in CONV_KINDS:
            nodes = mapped.nodes_of(leaf.name)
            assert len(nodes) == 1, (leaf.name, [(n.name, n.op_type) for n in nodes], mapped.status(leaf.name))
            assert "Conv" in nodes[0].op_type and mapped.ops[nodes[0].main] in CONV_OPS, nodes[0]
            assert mapped.exported[nodes[0].main] == Origin("layer", leaf.name)
    # ... and every ONNX Runtime conv node counts for a conv layer; only layout changes map to nothing
    for node in mapped.nodes:
        if "Conv" in node.op_type:
            assert node.origin.category == "layer" and cost[node.origin.name] in CONV_KINDS, node
        assert node.origin.category != "none" or node.op_type in LAYOUT_OPS, node
    # nothing the export computes is lost: each exported node is run or fused into a node that is
    assert not mapped.removed
    for leaf in mapped.leaves:
        status = mapped.status(leaf.name)
        if status in ("fused", "folded"):
            assert mapped.fused_into(leaf.name) in {n.name for n in mapped.nodes}, leaf


class Tiny(nn.Module):
    """conv-bn-relu, then a depthwise and a pointwise conv added back in the model's own forward
    (the model of tests/fixtures/ort/tiny_profile.json)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn(self.conv(x)))
        return y + self.pw(self.dw(y))


def canned() -> tuple[dict, onnx.ModelProto]:
    doc = json.loads(FIXTURE.read_text())
    nodes = [helper.make_node(n["op_type"], n["input"], n["output"], name=n["name"], domain=n["domain"])
             for n in doc["optimized"]]
    return doc, helper.make_model(helper.make_graph(nodes, "optimized", [], []))


def node_durations(events: list[dict], run: int) -> dict[str, float]:
    """Node name -> µs in profiled run ``run``, read straight from the events."""
    runs = [e for e in events if e["name"] == "model_run"]
    start, end = runs[run]["ts"], runs[run]["ts"] + runs[run]["dur"]
    return {e["name"].removesuffix("_kernel_time"): e["dur"] for e in events
            if e["cat"] == "Node" and start <= e["ts"] <= end}


def test_canned_profile_gives_rows():
    doc, optimized = canned()
    model = Tiny().eval()
    x = torch.randn(1, 3, 16, 16)
    mapped = map_nodes(model, x, export_for_layers(model, x), optimized)
    runs = parse_profile(doc["events"])
    assert [run.model_us for run in runs] == [277.0, 56.0, 43.0]
    assert [len(run.nodes) for run in runs] == [5, 5, 5]
    timed = runs[1:]  # the first run is the warm-up
    layers, functional, unmapped = layer_rows(mapped, timed)
    rows = {row.name: row for row in layers}
    assert list(rows) == ["conv", "bn", "act", "dw", "pw"]
    want = [node_durations(doc["events"], r) for r in (1, 2)]
    fused = "/act/Relu_output_0_nchwc"
    # the Conv+ReLU node (named after the ReLU's output) is the conv's time, of the conv's kind
    assert rows["conv"].nodes == (fused,) and rows["conv"].kind == "standard" and rows["conv"].status == "executed"
    assert rows["conv"].timing.samples_ms == tuple(w[fused] / 1e3 for w in want)
    assert (rows["bn"].status, rows["bn"].fused_into, rows["bn"].timing.median_ms) == ("folded", fused, 0.0)
    assert (rows["act"].status, rows["act"].fused_into, rows["act"].timing.median_ms) == ("fused", fused, 0.0)
    assert rows["dw"].kind == "depthwise" and rows["pw"].kind == "pointwise"
    assert rows["pw"].timing.samples_ms == tuple(w["/pw/Conv_output_0_nchwc"] / 1e3 for w in want)
    # the model's own residual Add went into the pointwise conv (its Sum input)
    assert [(f.module, f.op_type, f.fused_into, f.timing.median_ms) for f in functional] == \
        [("(model)", "Add", "/pw/Conv_output_0_nchwc", 0.0)]
    assert {u.node: (u.op_type, u.timing.samples_ms) for u in unmapped} == {
        name: ("ReorderOutput", tuple(w[name] / 1e3 for w in want)) for name in ("ReorderOutput_token_8", "ReorderOutput")}
    assert all("layout" in u.reason for u in unmapped)
    # every node's time is in exactly one row, run by run
    for r, run in enumerate(timed):
        total = sum(row.timing.samples_ms[r] for row in [*layers, *functional, *unmapped])
        assert total == pytest.approx(run.nodes_us / 1e3)


def test_nodes_the_graph_does_not_hold_are_listed_unmapped():
    doc, optimized = canned()
    events = doc["events"] + [
        {"cat": "Session", "name": "model_run", "ts": 20000, "dur": 100},
        {"cat": "Node", "name": "/dw/Conv_output_0_nchwc_kernel_time", "ts": 20010, "dur": 20,
         "args": {"op_name": "Conv", "provider": "CPUExecutionProvider"}},
        {"cat": "Node", "name": "Mystery_7_kernel_time", "ts": 20040, "dur": 30,
         "args": {"op_name": "Mystery", "provider": "CPUExecutionProvider"}},
    ]
    model = Tiny().eval()
    x = torch.randn(1, 3, 16, 16)
    mapped = map_nodes(model, x, export_for_layers(model, x), optimized)
    layers, _, unmapped = layer_rows(mapped, parse_profile(events)[3:])
    assert {row.name: row.timing.samples_ms for row in layers}["dw"] == (0.02,)
    stray = {u.node: u for u in unmapped}["Mystery_7"]
    assert stray.op_type == "Mystery" and stray.timing.samples_ms == (0.03,) and "does not hold" in stray.reason
    # a layer left out of `names` keeps its time, as unmapped, saying which layer it is
    layers, _, unmapped = layer_rows(mapped, parse_profile(events)[3:], names=["conv", "pw"])
    assert [row.name for row in layers] == ["conv", "pw"]
    assert "maps to layer 'dw', not among the names asked for" in {u.node: u.reason for u in unmapped}[
        "/dw/Conv_output_0_nchwc"]


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def test_functional_add_is_attributed_to_its_parent():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), Residual(), nn.ReLU()).eval()
    unfused = node_map(model, (1, 3, 8, 8), optimization="basic")
    adds = [n for n in unfused.nodes if n.op_type == "Add"]
    assert [(n.origin, n.origin.label) for n in adds] == [(Origin("functional", "1"), "1")]
    assert unfused.exported["/1/Add"] == Origin("functional", "1")
    # at the deployed level ONNX Runtime fuses the Add (and the ReLU) into the residual's conv
    # at the deployed level ONNX Runtime (NCHWc, x86) fuses the Add into the residual's conv; either
    # way the Add is the parent's, run on its own or inside that conv's node
    deployed = node_map(model, (1, 3, 8, 8))
    own = [n for n in deployed.nodes if n.main == "/1/Add"]
    if own:
        assert [n.origin for n in own] == [Origin("functional", "1")]
    else:
        assert deployed.fused["/1/Add"] == deployed.nodes_of("1.conv")[0].name


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.act(self.conv(x))))


def test_a_module_called_twice_maps_call_by_call():
    mapped = node_map(Twice(), (1, 4, 8, 8), optimization="disable")
    assert [leaf.name for leaf in mapped.leaves] == ["conv", "act", "conv#2", "act#2"]
    first, second = mapped.nodes_of("conv"), mapped.nodes_of("conv#2")
    assert len(first) == len(second) == 1 and first[0].name != second[0].name
    assert [n.origin.name for n in mapped.nodes] == ["conv", "act", "conv#2", "act#2"]


def test_ort_layer_times_rows_add_up_to_the_nodes_run_by_run():
    model = Tiny().eval()
    names = [row.name for row in analyze(model, (1, 3, 16, 16)).layers]
    steps = []
    result = ort_layer_times(model, (1, 3, 16, 16), names, threads=1, repeats=3, warmup=1, baseline=True,
                             advance=lambda: steps.append(1))
    assert len(steps) == 3
    assert (result.engine, result.version, result.threads) == (ENGINE, onnxruntime.__version__, 1)
    assert result.providers == ("CPUExecutionProvider",) and result.optimization == "all"
    assert [row.name for row in result.layers] == names
    assert len(result.model.samples_ms) == len(result.wall.samples_ms) == len(result.unprofiled.samples_ms) == 3
    rows = [*result.layers, *result.functional, *result.unmapped]
    for r in range(3):
        assert sum(row.timing.samples_ms[r] for row in rows) == pytest.approx(result.nodes.samples_ms[r])
    report = json.loads(json.dumps(result.to_dict()))
    assert report["engine"] == "onnxruntime" and report["engine_version"] == onnxruntime.__version__
    assert set(report["by_kind_ms"]) == {"standard", "norm", "activation", "depthwise", "pointwise", "functional",
                                         "unmapped"}
    assert {row["name"]: row["status"] for row in report["layers"]} == {
        "conv": "executed", "bn": "folded", "act": "fused", "dw": "executed", "pw": "executed"}


def test_unnamed_nodes_onnx_runtime_makes_count_for_their_layer():
    # ONNX Runtime inlines ONNX's HardSwish function (no conv before it to fuse into) as two unnamed
    # nodes; its profiler calls them <op>_<index>
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(288, 8), nn.Hardswish()).eval()
    result = ort_layer_times(model, (1, 3, 8, 8), threads=1, repeats=2, warmup=1)
    rows = {row.name: row for row in result.layers}
    assert rows["3"].status == "executed" and rows["3"].kind == "activation"
    assert all(node for node in rows["3"].nodes) and not [u for u in result.unmapped if u.op_type != "ReorderOutput"]


def test_events_out_of_the_saved_order_still_find_their_nodes():
    origin = Origin("layer", "x")
    nodes = [OrtNode("/a/Conv", "Conv", "", ("/a/Conv",), origin, ("input", "w"), ("a",)),
             OrtNode("/b/Conv", "Conv", "", ("/b/Conv",), origin, ("input", "w"), ("b",)),
             OrtNode("", "HardSigmoid", "", ("/c/HardSwish",), origin, ("a",), ("c",)),
             OrtNode("", "HardSigmoid", "", ("/d/HardSwish",), origin, ("b",), ("d",))]
    run = ProfiledRun(10.0, tuple(NodeEvent(name, op, "CPUExecutionProvider", 1.0) for name, op in [
        ("/b/Conv", "Conv"), ("HardSigmoid_9", "HardSigmoid"), ("/a/Conv", "Conv"), ("HardSigmoid_8", "HardSigmoid"),
        ("Mystery_1", "Mystery")]))
    # each unnamed event is the one unnamed node of its op whose inputs exist by then
    assert _match_events(run, nodes, {"input", "w"}) == [1, 3, 0, 2, None]


def test_a_spent_budget_still_makes_the_minimum_runs():
    result = ort_layer_times(Tiny().eval(), (1, 3, 8, 8), threads=1, repeats=50, warmup=0, budget_s=1e-9)
    assert len(result.model.samples_ms) == MIN_RUNS
    assert all(len(row.timing.samples_ms) == MIN_RUNS for row in result.layers)


class Shuffle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv(x))


class Pooled(Tiny):
    """Tiny that needs an input of at least 4x4 (its pool)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(super().forward(x))


def test_bad_input_is_named(monkeypatch):
    with pytest.raises(ValueError, match=r"Shuffle: no per-layer times on ONNX Runtime: .*layer 'shuffle'"):
        ort_layer_times(Shuffle(), (1, 4, 8, 8), threads=1)
    with pytest.raises(ValueError, match=r"Pooled: no per-layer times on ONNX Runtime: .*shape \(1, 3, 2, 2\)"):
        ort_layer_times(Pooled(), (1, 3, 2, 2), threads=1)
    with pytest.raises(ValueError, match=r"names: 'nope' are not leaf-module calls"):
        ort_layer_times(Tiny(), (1, 3, 8, 8), ["conv", "nope"], threads=1, repeats=1)
    with pytest.raises(ValueError, match=r"repeats=0 must be a positive integer"):
        ort_layer_times(Tiny(), (1, 3, 8, 8), repeats=0)
    with pytest.raises(ValueError, match=r"optimization='max' must be one of"):
        ort_layer_times(Tiny(), (1, 3, 8, 8), optimization="max")
    with pytest.raises(ValueError, match=r"budget_s=0 must be a positive number"):
        ort_layer_times(Tiny(), (1, 3, 8, 8), budget_s=0)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(ValueError, match=r"need the onnxruntime package: pip install 'sepconv\[onnx\]'"):
        ort_layer_times(Tiny(), (1, 3, 8, 8), threads=1)


def test_parse_profile_refuses_what_is_not_a_profile():
    with pytest.raises(ValueError, match="must be a JSON list of event objects"):
        parse_profile({"events": []})
    with pytest.raises(ValueError, match="no model_run event"):
        parse_profile([{"cat": "Node", "name": "x_kernel_time", "ts": 1, "dur": 1}])
    with pytest.raises(ValueError, match=r"profile event 0: dur='7' must be a non-negative number"):
        parse_profile([{"cat": "Session", "name": "model_run", "ts": 1, "dur": "7"}])
