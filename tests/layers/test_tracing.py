"""Every operator traces with ``torch.fx.symbolic_trace``: the graph computes what eager computes, and
raises what eager raises (the input checks and TensorFlow's SAME padding stay calls in the graph)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from sepconv import layers
from sepconv.layers import (
    BasicBlock,
    BatchNorm2dNoScale,
    Bottleneck,
    ChannelPermutation,
    ChannelShuffle,
    Conv2d,
    ConvNormAct,
    DepthwiseConv2d,
    DepthwiseSeparableBlock,
    GlobalDepthwiseConv2d,
    GoogLeNetAux,
    GroupedConv2d,
    InceptionModule,
    InceptionV3A,
    InceptionV3Aux,
    InceptionV3B,
    InceptionV3C,
    InceptionV3D,
    InceptionV3E,
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
    "BasicBlock": (P(BasicBlock, 4, 8, stride=2, padding="tf_same"), 4),
    "BatchNorm2dNoScale": (P(BatchNorm2dNoScale, 4, eps=1e-3), 4),
    "Bottleneck": (P(Bottleneck, 4, 16, 4, stride=2, stride_in_1x1=False, padding="tf_same"), 4),
    "GoogLeNetAux": (P(GoogLeNetAux, 4, 5, adaptive_pool=True), 4),
    "InceptionV3A": (P(InceptionV3A, 4, 8, count_include_pad=False, width_mult=0.125), 4),
    "InceptionV3Aux": (P(InceptionV3Aux, 4, 5, width_mult=0.125), 4),
    "InceptionV3B": (P(InceptionV3B, 4, width_mult=0.125), 4),
    "InceptionV3C": (P(InceptionV3C, 4, 8, width_mult=0.125), 4),
    "InceptionV3D": (P(InceptionV3D, 4, width_mult=0.125), 4),
    "InceptionV3E": (P(InceptionV3E, 4, count_include_pad=False, width_mult=0.125), 4),
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
    # tf_same pads odd and even sizes differently; GDC takes its own size, Inception v3's aux head a 17x17 map
    sizes = {"GlobalDepthwiseConv2d": [7], "InceptionV3Aux": [17, 18]}.get(name, [7, 8, 9])
    for size in sizes:
        x = torch.randn(2, channels, size, size)
        with torch.no_grad():
            assert torch.equal(traced(x), module(x)), size


@pytest.mark.parametrize("name", sorted(set(OPERATORS) - {"MaxPool2d"}))  # a pool takes any channel count
def test_traced_operator_raises_what_eager_raises(name):
    module, channels = build(name)
    traced = torch.fx.symbolic_trace(module)
    size = 17 if name == "InceptionV3Aux" else 7
    wrong = torch.randn(2, channels + 1, size, size)  # 5 channels: also what 2 groups do not divide
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
