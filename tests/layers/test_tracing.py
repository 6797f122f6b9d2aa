"""Every operator traces with ``torch.fx.symbolic_trace``: the graph computes what eager computes, and
raises what eager raises (the input checks and TensorFlow's SAME padding stay calls in the graph)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from sepconv import layers
from sepconv.layers import (
    ChannelPermutation,
    ChannelShuffle,
    Conv2d,
    ConvNormAct,
    DepthwiseConv2d,
    DepthwiseSeparableBlock,
    GlobalDepthwiseConv2d,
    GroupedConv2d,
    InceptionModule,
    InvertedResidual,
    MaxPool2d,
    PermutedGroupedConv2d,
    PointwiseConv2d,
    SegmentedSeparableConv2d,
    SeparableConv2d,
    SpatiallySeparableConv2d,
    SqueezeExcite,
    XceptionBlock,
)
from sepconv.layers._input import checked_input

P = functools.partial

# One instance of every operator class in sepconv.layers.__all__, the tf_same padding where it takes
# one (its amounts depend on the input size), and the channels it takes.
OPERATORS = {
    "ChannelPermutation": (P(ChannelPermutation, torch.tensor([2, 0, 3, 1])), 4),
    "ChannelShuffle": (P(ChannelShuffle, 2), 4),
    "Conv2d": (P(Conv2d, 4, 6, 3, stride=2, padding="tf_same"), 4),
    "ConvNormAct": (P(ConvNormAct, 4, 6, 3, stride=2, padding="tf_same", act_layer=nn.Hardswish), 4),
    "DepthwiseConv2d": (P(DepthwiseConv2d, 4, 3, stride=2, padding="tf_same", depth_multiplier=2), 4),
    "DepthwiseSeparableBlock": (P(DepthwiseSeparableBlock, 4, 8, stride=2, padding="tf_same"), 4),
    "GlobalDepthwiseConv2d": (P(GlobalDepthwiseConv2d, 4, 7), 4),
    "GroupedConv2d": (P(GroupedConv2d, 4, 8, 3, groups=2, shuffle=True), 4),
    "InceptionModule": (P(InceptionModule, 4, 2, 2, 3, 2, 3, 2), 4),
    "InvertedResidual": (P(InvertedResidual, 4, 4, 16, 5, act_layer=nn.Hardswish, se_layer=SqueezeExcite), 4),
    "MaxPool2d": (P(MaxPool2d, 3, 2, padding="tf_same"), 4),
    "PermutedGroupedConv2d": (P(PermutedGroupedConv2d, 4, 8, 3, groups=2, in_perm=torch.tensor([3, 1, 2, 0]),
                                out_perm=torch.arange(8).flip(0)), 4),
    "PointwiseConv2d": (P(PointwiseConv2d, 4, 6), 4),
    "SegmentedSeparableConv2d": (P(SegmentedSeparableConv2d, 4, 8, 3, segments=2, stride=2, padding="tf_same"), 4),
    "SeparableConv2d": (P(SeparableConv2d, 4, 8, 3, stride=2, padding="tf_same", mid_norm=nn.BatchNorm2d,
                          mid_act=nn.ReLU), 4),
    "SpatiallySeparableConv2d": (P(SpatiallySeparableConv2d, 4, 6, 3, stride=2), 4),
    "SqueezeExcite": (P(SqueezeExcite, 4, squeeze_channels=2), 4),
    "XceptionBlock": (P(XceptionBlock, 4, 8, reps=2, stride=2, padding="tf_same"), 4),
}


def test_every_operator_is_listed():
    exported = {n for n in layers.__all__ if isinstance(getattr(layers, n), type)
                and issubclass(getattr(layers, n), nn.Module)}
    assert exported == set(OPERATORS)


def build(name: str) -> tuple[nn.Module, int]:
    torch.manual_seed(0)
    make, channels = OPERATORS[name]
    return make().eval(), channels


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_symbolic_trace_computes_what_eager_computes(name):
    module, channels = build(name)
    traced = torch.fx.symbolic_trace(module)
    sizes = [7] if name == "GlobalDepthwiseConv2d" else [7, 8, 9]  # tf_same pads odd and even sizes differently
    for size in sizes:
        x = torch.randn(2, channels, size, size)
        with torch.no_grad():
            assert torch.equal(traced(x), module(x)), size


@pytest.mark.parametrize("name", sorted(set(OPERATORS) - {"MaxPool2d"}))  # a pool takes any channel count
def test_traced_operator_raises_what_eager_raises(name):
    module, channels = build(name)
    traced = torch.fx.symbolic_trace(module)
    wrong = torch.randn(2, channels + 1, 7, 7)  # 5 channels: also what 2 groups do not divide
    with pytest.raises(ValueError) as eager:
        module(wrong)
    with pytest.raises(ValueError) as graph:
        traced(wrong)
    assert str(graph.value) == str(eager.value)
    assert str(eager.value).startswith(f"{name}: ")


def test_the_check_is_the_first_node_and_survives_dead_code_elimination():
    traced = torch.fx.symbolic_trace(InvertedResidual(8, 8, 32))
    traced.graph.eliminate_dead_code()
    first = next(n for n in traced.graph.nodes if n.op != "placeholder")
    assert first.op == "call_function" and first.target is checked_input
    assert first.args[1:3] == ("InvertedResidual", 8)
    traced.recompile()
    with pytest.raises(ValueError, match=r"^InvertedResidual: expected 8 input channels, got 4"):
        traced(torch.randn(1, 4, 5, 5))


def test_global_depthwise_map_size_is_checked_in_the_graph():
    traced = torch.fx.symbolic_trace(GlobalDepthwiseConv2d(4, 7))
    with pytest.raises(ValueError, match=r"^GlobalDepthwiseConv2d: expected a 7x7 feature map, got 6x6"):
        traced(torch.randn(1, 4, 6, 6))
