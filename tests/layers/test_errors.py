"""Every validation path: a ValueError naming the argument, the value and the rule, never a deep torch error."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from sepconv.layers import (
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
    PointwiseConv2d,
    SegmentedSeparableConv2d,
    SeparableConv2d,
    SpatiallySeparableConv2d,
    SqueezeExcite,
    XceptionBlock,
    make_divisible,
)

P = functools.partial
CALLABLE = "must be a callable that builds a module"

# (constructor call, substrings the message must contain: the argument=value and the rule)
CONSTRUCTOR_ERRORS = [
    (P(Conv2d, 8, 8, 0), ["kernel_size=0", "integer >= 1"]),
    (P(Conv2d, 8, 8, (3, 0)), ["kernel_size=(3, 0)", "integer >= 1"]),
    (P(Conv2d, 8, 8, 3, stride=-1), ["stride=-1", "integer >= 1"]),
    (P(Conv2d, 8, 8, 3, dilation=0), ["dilation=0", "integer >= 1"]),
    (P(Conv2d, 8, 8, 3, padding="SAME"), ["padding='SAME'", "must be one of 'same', 'valid', 'tf_same'"]),
    (P(Conv2d, 8, 8, 3, padding=-1), ["padding=-1", "integer >= 0"]),
    (P(Conv2d, 8, 8, 3, padding=1.5), ["padding=1.5", "integer >= 0"]),
    (P(Conv2d, 0, 8, 3), ["in_channels=0", "positive integer"]),
    (P(Conv2d, 8, -4, 3), ["out_channels=-4", "positive integer"]),
    (P(Conv2d, True, 8, 3), ["in_channels=True", "positive integer"]),
    (P(Conv2d, 8, 8, True), ["kernel_size=True", "integer >= 1"]),
    (P(Conv2d, 8, 8, 3, stride=True), ["stride=True", "integer >= 1"]),
    (P(Conv2d, 8, 8, 3, groups=3), ["groups=3", "must divide", "in_channels=8"]),
    (P(Conv2d, 8.0, 8, 3), ["in_channels=8.0", "positive integer"]),
    (P(GroupedConv2d, 64, 128, 3, groups=3), ["groups=3", "must divide", "in_channels=64"]),
    (P(GroupedConv2d, 64, 100, 3, groups=8), ["groups=8", "must divide", "out_channels=100"]),
    (P(GroupedConv2d, 64, 128, 3, groups=0), ["groups=0", "positive integer"]),
    (P(DepthwiseConv2d, 8, 3, depth_multiplier=0), ["depth_multiplier=0", "positive integer"]),
    (P(DepthwiseConv2d, 8, 3, depth_multiplier=True), ["depth_multiplier=True", "positive integer"]),
    (P(DepthwiseConv2d, 0, 3), ["in_channels=0", "positive integer"]),
    (P(DepthwiseConv2d, 8, 0), ["kernel_size=0", "integer >= 1"]),
    (P(PointwiseConv2d, 8, 0), ["out_channels=0", "positive integer"]),
    (P(SeparableConv2d, 8, 16, 3, depth_multiplier=0), ["depth_multiplier=0", "positive integer"]),
    (P(SeparableConv2d, 8, 16, 3, mid_norm="bn"), ["mid_norm='bn'", CALLABLE]),
    (P(SeparableConv2d, 8, 16, 3, mid_act=nn.ReLU()), ["mid_act=ReLU()", "not a module instance"]),
    (P(SeparableConv2d, 8, 16, 3, stride=0), ["stride=0", "integer >= 1"]),
    (P(SeparableConv2d, 8, 16, 3, padding="full"), ["padding='full'", "must be one of"]),
    (P(SpatiallySeparableConv2d, 8, 8, 0), ["kernel_size=0", "positive integer"]),
    (P(SpatiallySeparableConv2d, 8, 8, (3, 3)), ["kernel_size=(3, 3)", "positive integer"]),
    (P(SpatiallySeparableConv2d, 8, 8, 3, stride=-2), ["stride=-2", "positive integer"]),
    (P(SpatiallySeparableConv2d, 8, 8, 3, dilation=0), ["dilation=0", "positive integer"]),
    (P(SpatiallySeparableConv2d, 8, 8, 3, mid_channels=0), ["mid_channels=0", "positive integer"]),
    (P(SpatiallySeparableConv2d, 8, 8, 3, padding=-1), ["padding=-1", "integer >= 0"]),
    (P(SpatiallySeparableConv2d, 8, 8, 3, mid_norm=3), ["mid_norm=3", CALLABLE]),
    (P(SegmentedSeparableConv2d, 8, 12, 3, segments=5), ["segments=5", "must divide", "out_channels=12"]),
    (P(SegmentedSeparableConv2d, 8, 12, 3, segments=0), ["segments=0", "positive integer"]),
    (P(SegmentedSeparableConv2d, 8, 0, 3, segments=1), ["out_channels=0", "positive integer"]),
    (P(SegmentedSeparableConv2d, 8, 12, 3, segments=2, padding="SAME"), ["padding='SAME'", "must be one of"]),
    (P(GlobalDepthwiseConv2d, 8, 0), ["spatial_size=0", "integer >= 1"]),
    (P(GlobalDepthwiseConv2d, 0, 7), ["channels=0", "positive integer"]),
    (P(ChannelShuffle, 0), ["groups=0", "positive integer"]),
    (P(ChannelShuffle, True), ["groups=True", "positive integer"]),
    (P(ConvNormAct, 8, 8, 3, norm_layer="bn"), ["norm_layer='bn'", CALLABLE]),
    (P(ConvNormAct, 8, 8, 3, act_layer="relu"), ["act_layer='relu'", CALLABLE]),
    (P(ConvNormAct, 8, 8, 3, act_layer=nn.ReLU()), ["act_layer=ReLU()", "not a module instance"]),
    (P(ConvNormAct, 8, 8, 0), ["kernel_size=0", "integer >= 1"]),
    (P(SqueezeExcite, 0), ["channels=0", "positive integer"]),
    (P(SqueezeExcite, 16, reduction=0), ["reduction=0", "positive integer"]),
    (P(SqueezeExcite, 16, divisor=0), ["divisor=0", "positive integer"]),
    (P(SqueezeExcite, 16, gate="hsigmoid"), ["gate='hsigmoid'", CALLABLE]),
    (P(SqueezeExcite, 16, squeeze_channels=0), ["squeeze_channels=0", "positive integer"]),
    (P(DepthwiseSeparableBlock, 8, 16, stride=0), ["stride=0", "integer >= 1"]),
    (P(DepthwiseSeparableBlock, 8, 16, norm_layer=1), ["norm_layer=1", CALLABLE]),
    (P(InvertedResidual, 8, 8, 0), ["mid_channels=0", "positive integer"]),
    (P(InvertedResidual, 8, 8, 16, stride=0), ["stride=0", "positive integer"]),
    (P(InvertedResidual, 8, 8, 16, kernel_size=0), ["kernel_size=0", "integer >= 1"]),
    (P(InvertedResidual, 8, 8, 16, se_layer="se"), ["se_layer='se'", CALLABLE]),
    (P(InvertedResidual, 8, 8, 16, act_layer="relu6"), ["act_layer='relu6'", CALLABLE]),
    (P(XceptionBlock, 8, 16, reps=0), ["reps=0", "positive integer"]),
    (P(XceptionBlock, 8, 16, reps=2, stride=0), ["stride=0", "positive integer"]),
    (P(XceptionBlock, 8, 8, reps=2, norm_layer="bn"), ["norm_layer='bn'", CALLABLE]),
    (P(XceptionBlock, 8, 16, reps=2, padding="SAME"), ["padding='SAME'", "must be one of"]),
    (P(InceptionModule, 192, 0, 96, 128, 16, 32, 32), ["ch1x1=0", "positive integer"]),
    (P(InceptionModule, 192, 64, 96, 128, 16, 32, -1), ["pool_proj=-1", "positive integer"]),
    (P(InceptionModule, 0, 64, 96, 128, 16, 32, 32), ["in_channels=0", "positive integer"]),
    (P(MaxPool2d, 0), ["kernel_size=0", "integer >= 1"]),
    (P(MaxPool2d, 3, -1), ["stride=-1", "integer >= 1"]),
    (P(MaxPool2d, 3, 2, padding="SAME"), ["padding='SAME'", "must be one of"]),
    (P(MaxPool2d, 3, 1, padding=2), ["padding=2", "at most half", "kernel_size=3"]),
    (P(make_divisible, 10, 0), ["divisor=0", "positive integer"]),
]


CONSTRUCTOR_IDS = [f"{b.func.__name__}-{p[0]}" for b, p in CONSTRUCTOR_ERRORS]


@pytest.mark.parametrize("build, parts", CONSTRUCTOR_ERRORS, ids=CONSTRUCTOR_IDS)
def test_constructor_error_names_argument_value_and_rule(build, parts):
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    assert message.startswith(parts[0]) and all(part in message for part in parts), message


# (module, the channel count it expects) for the forward-input checks
FORWARD = [
    (P(Conv2d, 8, 4, 3), 8),
    (P(ConvNormAct, 8, 4, 3), 8),
    (P(DepthwiseConv2d, 8, 3, depth_multiplier=2), 8),
    (P(PointwiseConv2d, 8, 4), 8),
    (P(SeparableConv2d, 8, 4, 3), 8),
    (P(SpatiallySeparableConv2d, 8, 4, 3), 8),
    (P(GroupedConv2d, 8, 4, 3, groups=2, shuffle=True), 8),
    (P(SegmentedSeparableConv2d, 8, 4, 3, segments=2), 8),
    (P(GlobalDepthwiseConv2d, 8, 5), 8),
    (P(SqueezeExcite, 8), 8),
    (P(DepthwiseSeparableBlock, 8, 4), 8),
    (P(InvertedResidual, 8, 8, 8), 8),  # no expand conv: the depthwise conv checks
    (P(InvertedResidual, 8, 4, 16, stride=2), 8),
    (P(XceptionBlock, 8, 8, reps=1), 8),
    (P(XceptionBlock, 8, 4, reps=1, start_with_relu=False), 8),
    (P(InceptionModule, 8, 2, 2, 2, 2, 2, 2), 8),
]
FORWARD_IDS = [f"{b.func.__name__}-{i}" for i, (b, _) in enumerate(FORWARD)]


@pytest.mark.parametrize("build, channels", FORWARD, ids=FORWARD_IDS)
def test_forward_wrong_channel_count_names_expected_and_received(build, channels):
    """The message names the class called, not the inner conv that met the input first."""
    expected = rf"^{build.func.__name__}: expected {channels} input channels, got 3 \(input shape \(2, 3, 5, 5\)\)"
    with pytest.raises(ValueError, match=expected):
        build()(torch.randn(2, 3, 5, 5))


@pytest.mark.parametrize("build, channels", FORWARD, ids=FORWARD_IDS)
def test_forward_three_d_input_is_refused(build, channels):
    expected = rf"^{build.func.__name__}: input must be 4-D \(B, C, H, W\), got shape \({channels}, 5, 5\)"
    with pytest.raises(ValueError, match=expected):
        build()(torch.randn(channels, 5, 5))


def test_composite_keeps_other_value_errors():
    """Only a wrong input is renamed; any other ValueError from inside passes through unchanged."""
    block = InvertedResidual(8, 8, 8)
    block.se = GlobalDepthwiseConv2d(8, 5)  # refuses a map of another size
    with pytest.raises(ValueError, match=r"^GlobalDepthwiseConv2d: expected a 5x5 feature map, got 4x4"):
        block(torch.randn(1, 8, 4, 4))


def test_channel_shuffle_input_checks():
    with pytest.raises(ValueError, match=r"groups=3 must divide the input's 8 channels"):
        ChannelShuffle(3)(torch.randn(1, 8, 2, 2))
    with pytest.raises(ValueError, match=r"ChannelShuffle: input must be 4-D"):
        ChannelShuffle(2)(torch.randn(4, 2, 2))


def test_valid_arguments_still_build():
    """The checks refuse only what is wrong: pairs, partials, classes and None are accepted."""
    Conv2d(8, 8, (3, 5), stride=(1, 2), padding=(1, 2), dilation=(2, 1))
    ConvNormAct(8, 8, 3, norm_layer=functools.partial(nn.BatchNorm2d, eps=1e-3), act_layer=None)
    SeparableConv2d(8, 8, 3, mid_norm=nn.BatchNorm2d, mid_act=functools.partial(nn.ReLU, inplace=True))
    XceptionBlock(8, 8, reps=1, norm_layer=None)
    MaxPool2d(3, 1, padding=1)
