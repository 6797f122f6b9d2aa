"""DepthwiseConv2d, PointwiseConv2d, SeparableConv2d and GlobalDepthwiseConv2d against references."""

from __future__ import annotations

import pytest
import torch
from support.layers import bn_ref, depthwise_ref, pointwise_ref, randomize_norms
from torch import nn
from torch.testing import assert_close

from sepconv.layers import DepthwiseConv2d, GlobalDepthwiseConv2d, PointwiseConv2d, SeparableConv2d


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("mode", ["same", "valid", "tf_same"])
@pytest.mark.parametrize("bias", [False, True])
def test_depthwise_matches_per_channel_convs(d, s, mode, bias):
    x = torch.randn(2, 4, 8, 8)
    m = DepthwiseConv2d(4, 3, stride=s, padding=mode, depth_multiplier=d, bias=bias)
    assert m.weight.shape == (4 * d, 1, 3, 3) and m.groups == 4 and (m.bias is not None) == bias
    assert_close(m(x), depthwise_ref(x, m.weight, m.bias, d, mode, s))


def test_depthwise_dilation():
    x = torch.randn(1, 3, 9, 9)
    m = DepthwiseConv2d(3, 3, dilation=2, depth_multiplier=2)
    assert_close(m(x), depthwise_ref(x, m.weight, None, 2, "same", 1, 2))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_depthwise_channel_order_is_c_times_d_plus_j(d):
    """With 1x1 filters of value j + 1, output c * d + j must be (j + 1) * input channel c."""
    c_in = 3
    x = torch.randn(1, c_in, 4, 4)
    m = DepthwiseConv2d(c_in, 1, depth_multiplier=d)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([j + 1.0 for _ in range(c_in) for j in range(d)]).view(-1, 1, 1, 1))
    y = m(x)
    for c in range(c_in):
        for j in range(d):
            assert_close(y[:, c * d + j], (j + 1.0) * x[:, c])


def test_pointwise_is_a_channel_matrix_product():
    x = torch.randn(2, 6, 5, 7)
    m = PointwiseConv2d(6, 4)
    assert m.weight.shape == (4, 6, 1, 1) and m.bias is None
    assert_close(m(x), pointwise_ref(x, m.weight))
    mb = PointwiseConv2d(6, 4, bias=True)
    assert_close(mb(x), pointwise_ref(x, mb.weight, mb.bias))


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("mode", ["same", "tf_same", "valid"])
def test_separable_is_depthwise_then_pointwise(d, s, mode):
    x = torch.randn(2, 4, 9, 9)
    m = SeparableConv2d(4, 6, 3, stride=s, padding=mode, depth_multiplier=d, bias=True)
    assert m.dw.bias is None and m.pw.bias is not None  # the bias, if any, is the pointwise one
    assert m.dw.out_channels == 4 * d and m.pw.in_channels == 4 * d
    mid = depthwise_ref(x, m.dw.weight, None, d, mode, s)
    assert_close(m(x), pointwise_ref(mid, m.pw.weight, m.pw.bias))


def test_separable_with_mid_norm_and_act():
    x = torch.randn(2, 4, 8, 8)
    m = randomize_norms(SeparableConv2d(4, 6, 3, depth_multiplier=2, mid_norm=nn.BatchNorm2d, mid_act=nn.ReLU))
    assert isinstance(m.mid_norm, nn.BatchNorm2d) and m.mid_norm.num_features == 8
    mid = bn_ref(depthwise_ref(x, m.dw.weight, None, 2, "same"), m.mid_norm).relu()
    assert_close(m(x), pointwise_ref(mid, m.pw.weight))


def test_separable_without_mid_layers_has_identity_between():
    m = SeparableConv2d(4, 6, 3)
    assert isinstance(m.mid_norm, nn.Identity) and isinstance(m.mid_act, nn.Identity)
    assert [n for n, _ in m.named_children()] == ["dw", "mid_norm", "mid_act", "pw"]


@pytest.mark.parametrize("size", [7, (7, 5)])
def test_global_depthwise_is_a_weighted_sum_per_channel(size):
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.randn(3, 8, h, w)
    m = GlobalDepthwiseConv2d(8, size, bias=True)
    y = m(x)
    assert y.shape == (3, 8, 1, 1)
    expected = (x * m.weight[:, 0][None]).sum((2, 3)) + m.bias
    assert_close(y[:, :, 0, 0], expected)


def test_global_depthwise_refuses_other_map_sizes():
    m = GlobalDepthwiseConv2d(8, 7)
    with pytest.raises(ValueError, match=r"expected a 7x7 feature map, got 8x8"):
        m(torch.randn(1, 8, 8, 8))
    with pytest.raises(ValueError, match=r"expected 8 input channels, got 4"):
        m(torch.randn(1, 4, 7, 7))
