"""Functional ops of the parents' forwards (residual adds, SE gates, concatenations, shuffles) and any
model's modules classified right: captured, attributed, named stably, replayed exactly, timed.

The stand-ins are written here, small, in the shapes third-party models use them (no timm or
torchvision): timm's ``BatchNormAct2d`` (a BatchNorm2d subclass running its ``act`` child in its own
forward), ConvNeXt's ``LayerNorm2d`` (a LayerNorm over the channels of an NCHW map), timm's own
``GELU`` class (an ``nn.Module`` calling ``F.gelu``), an EfficientNet block (squeeze-and-excitation
``x * gate``, residual ``+``) and a ShuffleNet unit (``chunk``, ``torch.cat``, channel shuffle).
No timing decides a test.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sepconv.cost import analyze, leaf_modules
from sepconv.profile.functional import FUNCTIONAL_KINDS, capture_functional
from sepconv.profile.layers import FunctionalTiming, record_calls, record_forward, time_layers


class BatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d in miniature: the norm computed in its own forward, then its children."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.drop = nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                         self.momentum, self.eps)
        return self.act(self.drop(x))


class LayerNorm2d(nn.LayerNorm):
    """ConvNeXt's LayerNorm2d: a LayerNorm over the channels of an NCHW map (permute, norm, permute back)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Gelu(nn.Module):
    """timm's own GELU class: no torch activation type, but what it computes is aten.gelu."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


class SEBlock(nn.Module):
    """An EfficientNet block: conv, BatchNormAct, squeeze-and-excitation ``x * gate``, residual ``+``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn = BatchNormAct(channels)
        self.reduce = nn.Conv2d(channels, 4, 1)
        self.act = nn.SiLU()
        self.expand = nn.Conv2d(4, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        s = y.mean((2, 3), keepdim=True)
        y = y * self.gate(self.expand(self.act(self.reduce(s))))
        return x + y


class ShuffleUnit(nn.Module):
    """A ShuffleNetV2 unit: split the channels, transform one half, concatenate, shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(nn.Conv2d(half, half, 1), LayerNorm2d(half), Gelu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        out = torch.cat([a, self.branch(b)], dim=1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.Sequential(SEBlock(8), ShuffleUnit(8), SEBlock(8))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = self.blocks(x)
        return self.head(torch.flatten(x.mean((2, 3)), 1))


@pytest.fixture
def net() -> Net:
    torch.manual_seed(0)
    model = Net().eval()
    with torch.no_grad():  # running statistics that are not the identity
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model


X = (1, 3, 8, 8)


def ops_by_parent(calls) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for call in calls:
        out.setdefault(call.parent, []).append(call.name.split(":", 1)[1].split("#")[0])
    return out


def test_every_module_is_classified_by_its_type_or_listed_as_fallback(net):
    report = analyze(net, X)
    rows = {row.name: row for row in report.layers}
    assert rows["blocks.0.bn"].kind == "norm" and rows["blocks.0.bn"].inner == ("SiLU",)  # the BN with its act
    assert "blocks.0.bn.act" not in rows  # inside the norm's row, not a row of its own
    assert rows["blocks.1.branch.1"].kind == "norm"  # LayerNorm over channels: a norm, by type
    assert rows["blocks.0.gate"].kind == rows["blocks.0.act"].kind == "activation"
    assert rows["blocks.1.branch.2"].kind == "activation"  # the GELU of no torch type, by what it computes
    assert [(row.name, row.kind_source, row.ops) for row in report.fallback] == [("blocks.1.branch.2", "ops",
                                                                                   ("gelu",))]
    assert all(row.kind_source == "type" for row in report.layers if row.name != "blocks.1.branch.2")
    assert [row.name for row in report.layers] == [name for name, _ in leaf_modules(net)]


def test_functional_ops_are_captured_and_attributed_to_the_module_that_ran_them(net):
    recording = record_forward(net, torch.randn(X))
    by_parent = ops_by_parent(recording.functional)
    assert by_parent["(model)"] == ["relu", "mean", "flatten"]  # the root's own forward, F.relu included
    for block in ("blocks.0", "blocks.2"):
        assert by_parent[block] == ["mean", "mul", "add"]  # the SE squeeze, the gate, the residual
    assert by_parent["blocks.1"] == ["chunk", "cat", "view", "transpose", "contiguous", "view"]  # split, cat, shuffle
    assert set(by_parent) == {"(model)", "blocks.0", "blocks.1", "blocks.2"}  # nothing from inside a unit:
    # no batch_norm of the BatchNormAct, no permute of the LayerNorm2d, no gelu of the Gelu module
    kinds = {call.name: call.kind for call in recording.functional}
    assert kinds["blocks.0:add"] == kinds["blocks.0:mul"] == "elementwise" and kinds["(model):relu"] == "activation"
    assert kinds["blocks.1:cat"] == "copy" and kinds["blocks.1:contiguous"] == "copy"  # a transposed map copied
    assert kinds["blocks.1:view"] == kinds["blocks.1:transpose"] == kinds["blocks.1:chunk"] == "view"
    assert kinds["blocks.0:mean"] == "reduce" and set(kinds.values()) <= set(FUNCTIONAL_KINDS)
    assert all(call.bytes == 0 for call in recording.functional if call.kind == "view")
    add = next(call for call in recording.functional if call.name == "blocks.0:add")
    assert add.bytes == 3 * 8 * 8 * 8 * 4 and add.op == "aten.add.Tensor"  # two maps read, one written, fp32
    assert [call.name for call in recording.calls] == [row.name for row in analyze(net, X).layers]


def test_names_are_stable_and_repeated_ops_numbered(net):
    x = torch.randn(X)
    first = [call.name for call in record_forward(net, x).functional]
    assert first == [call.name for call in record_forward(net, x).functional]
    assert "blocks.1:view" in first and "blocks.1:view#2" in first and len(set(first)) == len(first)


def test_a_replay_computes_what_the_forward_computed(net):
    recording = record_forward(net, torch.randn(X))
    for call in recording.functional:
        for _ in range(2):  # twice: a replay leaves nothing changed for the next
            out = call.replay()
            if not isinstance(out, torch.Tensor):  # chunk: a tuple of views
                out, call_output = torch.cat(out), torch.cat(call.output)
            else:
                call_output = call.output
            got, want = out, call_output
            assert torch.equal(got, want), call.name


class InPlace(nn.Module):
    """The residual and the gate written in place, as timm writes some blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y.mul_(torch.sigmoid(y.mean((2, 3), keepdim=True)))
        y += x
        return y


def test_an_in_place_op_is_replayed_on_its_own_copy_put_back_each_time():
    torch.manual_seed(0)
    model, x = InPlace().eval(), torch.randn(1, 4, 5, 5)
    with torch.inference_mode():
        conv_out = model.conv(x)
        gate = torch.sigmoid(conv_out.mean((2, 3), keepdim=True))
        expected_mul, expected_out = conv_out * gate, conv_out * gate + x
        recording = record_forward(model, x)
        forward_out = model(x)
    ops = {call.name: call for call in recording.functional}
    assert {"(model):mul_", "(model):add_", "(model):sigmoid"} <= set(ops)
    assert ops["(model):add_"].kind == "elementwise" and ops["(model):sigmoid"].kind == "activation"
    for _ in range(3):
        assert torch.allclose(ops["(model):mul_"].replay(), expected_mul)
        assert torch.allclose(ops["(model):add_"].replay(), expected_out)
    assert torch.allclose(forward_out, expected_out)
    assert torch.allclose(recording.calls[0].args[0], x)  # the recorded input is not what the replays write


def test_a_channels_last_norm_wrapper_has_a_norm_row_and_its_permutes_as_functional_ops():
    class ChannelsLastNorm(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(channels)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    model = nn.Sequential(nn.Conv2d(3, 6, 1), ChannelsLastNorm(6))
    report = analyze(model, (1, 3, 4, 4))
    assert [(row.name, row.kind, row.kind_source) for row in report.layers] == [("0", "pointwise", "type"),
                                                                               ("1.norm", "norm", "type")]
    functional = record_forward(model.eval(), torch.randn(1, 3, 4, 4)).functional
    assert [(call.name, call.kind) for call in functional] == [("1:permute", "view"), ("1:permute#2", "view")]


def test_time_layers_times_the_functional_ops_and_each_layer_in_the_model(net):
    x = torch.randn(X)
    names = [row.name for row in analyze(net, X).layers]
    profile = time_layers(net, x, names, repeats=2, warmup=0)
    recorded = record_forward(net, x).functional
    assert [(op.name, op.parent, op.op, op.kind, op.bytes) for op in profile.functional] == \
        [(op.name, op.parent, op.op, op.kind, op.bytes) for op in recorded]
    assert all(isinstance(op, FunctionalTiming) and len(op.timing.samples_ms) == 2 for op in profile.functional)
    assert all(row.in_model is not None and len(row.in_model.samples_ms) == 2 for row in profile.layers)
    assert len(profile.instrumented.samples_ms) == 2
    assert profile.functional_ms == pytest.approx(sum(op.timing.median_ms for op in profile.functional))
    assert profile.accounted_ms == pytest.approx(profile.layers_ms + profile.functional_ms)
    assert profile.in_model_ms == pytest.approx(sum(row.in_model.median_ms for row in profile.layers))
    parents = profile.functional_by_parent()
    assert set(parents) == {"(model)", "blocks.0", "blocks.1", "blocks.2"}
    assert list(parents.values()) == sorted(parents.values(), reverse=True)
    plain = time_layers(net, x, names[:2], repeats=1, warmup=0, functional=False, in_model=False)
    assert plain.functional == [] and plain.instrumented is None and plain.in_model_ms is None
    assert [row.name for row in plain.layers] == names[:2]


def test_record_calls_names_a_norm_with_children_as_analyze_does_with_and_without_grad(net):
    x = torch.randn(2, 3, 8, 8)
    names = [row.name for row in analyze(net, x).layers]
    assert [call.name for call in record_calls(net, x)] == names
    assert [call.name for call in record_calls(net, x, grad=True)] == names
    assert "blocks.0.bn" in names and "blocks.0.bn.act" not in names


def test_capture_functional_sees_only_the_forward_and_removes_its_hooks(net):
    with torch.inference_mode(), capture_functional(net) as capture:
        x = torch.randn(X) * 2  # outside the model's forward: nobody's op
        net(x)
    assert capture.calls and all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert [call.name for call in capture.calls] == [call.name for call in record_forward(net, x).functional]
