"""Conv2d's padding modes against F.conv2d on an explicitly padded input, and ConvNormAct's rules."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from support.layers import (
    EVEN_KERNEL_SAME,
    bn_ref,
    conv_ref,
    pad_amounts,
    randomize_norms,
)
from torch import nn
from torch.testing import assert_close

from sepconv.layers import Conv2d, ConvNormAct


def _conv(x, mode, k, s=1, d=1, bias=True, out=5):
    m = Conv2d(x.shape[1], out, k, stride=s, padding=mode, dilation=d, bias=bias)
    return m, m(x)


# --- Conv2d against F.conv2d on an explicitly padded input ----------------------------------------


@EVEN_KERNEL_SAME
@pytest.mark.parametrize("n", [7, 8])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("d", [1, 2])
def test_conv2d_same(n, k, s, d):
    x = torch.randn(2, 3, n, n)
    m, y = _conv(x, "same", k, s, d)
    assert_close(y, conv_ref(x, m.weight, m.bias, "same", s, d))
    if s == 1:
        assert y.shape[-2:] == (n, n)
    else:
        p = d * (k - 1) // 2
        assert y.shape[-1] == (n + 2 * p - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("n", [7, 8])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("d", [1, 2])
def test_conv2d_tf_same(n, k, s, d):
    x = torch.randn(2, 3, n, n)
    m, y = _conv(x, "tf_same", k, s, d)
    assert_close(y, conv_ref(x, m.weight, m.bias, "tf_same", s, d))
    assert y.shape[-2:] == (math.ceil(n / s),) * 2


def test_conv2d_tf_same_is_asymmetric_on_even_input():
    """3x3 stride 2 on 8x8: TF pads 0 before and 1 after; a symmetric 1/1 gives other numbers."""
    x = torch.randn(1, 2, 8, 8)
    m, y = _conv(x, "tf_same", 3, 2)
    assert_close(y, F.conv2d(F.pad(x, (0, 1, 0, 1)), m.weight, m.bias, 2))
    symmetric = F.conv2d(x, m.weight, m.bias, 2, padding=1)
    assert symmetric.shape == y.shape and not torch.allclose(symmetric, y)
    x9 = torch.randn(1, 2, 9, 9)
    assert_close(m(x9), F.conv2d(x9, m.weight, m.bias, 2, padding=1))  # odd input: symmetric


def test_conv2d_tf_same_rectangular():
    x = torch.randn(1, 2, 8, 11)
    m = Conv2d(2, 3, (3, 5), stride=(2, 3), padding="tf_same")
    y = m(x)
    assert y.shape == (1, 3, 4, 4)
    left, right, top, bottom = pad_amounts("tf_same", (8, 11), (3, 5), (2, 3))
    assert (top, bottom, left, right) == (0, 1, 1, 2)
    assert_close(y, F.conv2d(F.pad(x, (1, 2, 0, 1)), m.weight, m.bias, (2, 3)))


@pytest.mark.parametrize("k", [1, 3, 4])
@pytest.mark.parametrize("s", [1, 2])
def test_conv2d_valid(k, s):
    x = torch.randn(2, 3, 9, 9)
    m, y = _conv(x, "valid", k, s)
    assert_close(y, F.conv2d(x, m.weight, m.bias, s))
    assert y.shape[-1] == (9 - k) // s + 1


@pytest.mark.parametrize("padding", [0, 1, 2, (1, 2), (0, 3)])
def test_conv2d_int_padding(padding):
    x = torch.randn(2, 3, 9, 9)
    m, y = _conv(x, padding, 3, 2)
    assert_close(y, F.conv2d(x, m.weight, m.bias, 2, padding))


@EVEN_KERNEL_SAME
def test_conv2d_none_padding_is_same():
    for k in (3, 4):
        a, b = Conv2d(3, 4, k, padding=None), Conv2d(3, 4, k, padding="same")
        b.load_state_dict(a.state_dict())
        x = torch.randn(1, 3, 7, 7)
        assert_close(a(x), b(x))


def test_conv2d_is_nn_conv2d_and_without_bias():
    m = Conv2d(4, 8, 3, bias=False, groups=2)
    assert isinstance(m, nn.Conv2d) and m.bias is None and m.weight.shape == (8, 2, 3, 3)
    assert "tf_same" in repr(Conv2d(4, 8, 3, padding="tf_same"))


def test_conv2d_gradients_flow():
    m = Conv2d(3, 4, 3, stride=2, padding="tf_same")
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    m(x).square().sum().backward()
    assert x.grad is not None and m.weight.grad is not None and x.grad.abs().sum() > 0


# --- ConvNormAct ----------------------------------------------------------------------------------


def test_conv_norm_act_bias_rule():
    assert ConvNormAct(3, 8, 3).conv.bias is None  # norm present: no bias
    assert ConvNormAct(3, 8, 3, norm_layer=None).conv.bias is not None  # no norm: bias
    assert ConvNormAct(3, 8, 3, bias=True).conv.bias is not None  # explicit wins
    assert ConvNormAct(3, 8, 3, norm_layer=None, bias=False).conv.bias is None


def test_conv_norm_act_injected_layers():
    m = ConvNormAct(3, 8, 3, norm_layer=functools.partial(nn.BatchNorm2d, eps=1e-3), act_layer=nn.Hardswish)
    assert isinstance(m.norm, nn.BatchNorm2d) and m.norm.eps == 1e-3 and m.norm.num_features == 8
    assert isinstance(m.act, nn.Hardswish)
    linear = ConvNormAct(3, 8, 3, act_layer=None)
    assert isinstance(linear.act, nn.Identity)
    bare = ConvNormAct(3, 8, 3, norm_layer=None, act_layer=None)
    assert isinstance(bare.norm, nn.Identity) and isinstance(bare.act, nn.Identity)


ACTIVATIONS = [(nn.ReLU, F.relu), (nn.ReLU6, F.relu6), (nn.Hardswish, F.hardswish), (None, None)]


@pytest.mark.parametrize("act, f", ACTIVATIONS)
@pytest.mark.parametrize("s", [1, 2])
def test_conv_norm_act_matches_reference(act, f, s):
    m = randomize_norms(ConvNormAct(3, 6, 3, stride=s, act_layer=act))
    x = torch.randn(2, 3, 9, 9)
    ref = bn_ref(conv_ref(x, m.conv.weight, None, "same", s), m.norm)
    y = m(x)
    assert_close(y, ref if f is None else f(ref))
    assert y.shape == ((2, 6, 9, 9) if s == 1 else (2, 6, 5, 5))  # symmetric pad 1: (9 + 2 - 3) // 2 + 1


def test_conv_norm_act_without_activation_is_linear():
    m = ConvNormAct(3, 4, 3, norm_layer=None, act_layer=None, bias=False)
    x, z = torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6)
    assert_close(m(2.0 * x - 3.0 * z), 2.0 * m(x) - 3.0 * m(z))
    assert (m(x) < 0).any()  # not clipped


def test_conv_norm_act_padding_none_is_symmetric_same():
    m = ConvNormAct(3, 4, 3, stride=2)
    x = torch.randn(1, 3, 8, 8)
    assert_close(m.eval()(x), m.norm(F.conv2d(x, m.conv.weight, None, 2, 1)).relu())
