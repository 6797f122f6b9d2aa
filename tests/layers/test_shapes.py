"""Property tests: every factorisation of a conv keeps the standard conv's output shape.

Over random valid configurations (channels, kernel 1..7, stride 1..3, dilation 1..2, each padding
mode, depth multiplier, groups dividing both widths) the grouped, depthwise-separable, spatially
separable and segmented variants give the same (B, N, H', W') as ``Conv2d`` with the same kernel,
stride, padding and dilation, and ``Conv2d``'s own H', W' follow the closed form of each mode.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support.layers import EVEN_KERNEL_SAME

from sepconv.layers import (
    Conv2d,
    ConvNormAct,
    DepthwiseConv2d,
    GroupedConv2d,
    SegmentedSeparableConv2d,
    SeparableConv2d,
    SpatiallySeparableConv2d,
)

pytestmark = EVEN_KERNEL_SAME


def expected_size(n: int, k: int, s: int, d: int, padding) -> int:
    """The output length of one dimension under each padding mode, from its definition."""
    k_eff = d * (k - 1) + 1
    if padding == "tf_same":
        return math.ceil(n / s)
    if padding == "same":
        return n if s == 1 else (n + 2 * (d * (k - 1) // 2) - k_eff) // s + 1
    p = 0 if padding == "valid" else padding
    return (n + 2 * p - k_eff) // s + 1


@st.composite
def configs(draw, padding):
    k = draw(st.integers(1, 7))
    d = draw(st.integers(1, 2))
    s = draw(st.integers(1, 3))
    padding = draw(st.integers(0, 3)) if padding == "int" else padding
    groups = draw(st.sampled_from([1, 2, 3, 4]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    k_eff = d * (k - 1) + 1
    h = k_eff + draw(st.integers(0, 6))  # large enough for "valid" and every int padding
    w = k_eff + draw(st.integers(0, 6))
    return dict(c_in=c_in, c_out=c_out, k=k, s=s, d=d, padding=padding, groups=groups, h=h, w=w,
                dm=draw(st.integers(1, 3)), shuffle=draw(st.booleans()))


def _check_variants(cfg):
    c_in, c_out, k, s, d, p, g = (cfg[n] for n in ("c_in", "c_out", "k", "s", "d", "padding", "groups"))
    x = torch.randn(1, c_in, cfg["h"], cfg["w"])
    with torch.no_grad():
        standard = Conv2d(c_in, c_out, k, s, p, d)(x).shape
        assert standard == (1, c_out, expected_size(cfg["h"], k, s, d, p), expected_size(cfg["w"], k, s, d, p))
        variants = {
            "ConvNormAct": ConvNormAct(c_in, c_out, k, s, p, d, groups=g).eval(),
            "GroupedConv2d": GroupedConv2d(c_in, c_out, k, g, cfg["shuffle"], s, p, d),
            "SeparableConv2d": SeparableConv2d(c_in, c_out, k, s, p, cfg["dm"], d),
            "SpatiallySeparableConv2d": SpatiallySeparableConv2d(c_in, c_out, k, stride=s, padding=p, dilation=d),
        }
        for name, module in variants.items():
            assert module(x).shape == standard, name
        depthwise = DepthwiseConv2d(c_in, k, s, p, cfg["dm"], d)(x).shape
        assert depthwise == (1, c_in * cfg["dm"], *standard[2:])
        # the segmented spectrum has no dilation: compare with the undilated standard conv
        undilated = Conv2d(c_in, c_out, k, s, p)(x).shape
        assert SegmentedSeparableConv2d(c_in, c_out, k, g, s, p)(x).shape == undilated


@pytest.mark.parametrize("padding", ["same", "tf_same", "valid", "int"])  # each mode gets its share
@settings(max_examples=40)
@given(data=st.data())
def test_every_variant_keeps_the_standard_output_shape(padding, data):
    _check_variants(data.draw(configs(padding)))
