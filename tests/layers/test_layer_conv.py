"""Conv2d's padding modes, ConvNormAct's rules, MaxPool2d, make_divisible, and the docstring examples."""

from __future__ import annotations

import doctest
import functools
import importlib
import math

import pytest
import torch
import torch.nn.functional as F
from layer_refs import (
    EVEN_KERNEL_SAME,
    bn_ref,
    conv_ref,
    max_pool_ref,
    pad_amounts,
    randomize_norms,
    tf_same_amounts,
)
from torch import nn
from torch.testing import assert_close

import sepconv.layers as L
from sepconv.layers import Conv2d, ConvNormAct, MaxPool2d, make_divisible


def _conv(x, mode, k, s=1, d=1, bias=True, out=5):
    m = Conv2d(x.shape[1], out, k, stride=s, padding=mode, dilation=d, bias=bias)
    return m, m(x)


# --- the reference padding itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, k, s, d, expected",
    [
        (8, 3, 2, 1, (0, 1)),  # even input, stride 2: TF pads only after
        (9, 3, 2, 1, (1, 1)),  # odd input: symmetric
        (224, 3, 2, 1, (0, 1)),  # MobileNet's stem
        (225, 3, 2, 1, (1, 1)),
        (147, 1, 2, 1, (0, 0)),  # Xception's strided 1x1 shortcut
        (7, 3, 1, 1, (1, 1)),
        (7, 4, 1, 1, (1, 2)),  # stride 1, even kernel: the extra one after
        (8, 5, 3, 1, (1, 2)),
        (8, 3, 1, 2, (2, 2)),  # dilation 2: effective kernel 5
        (4, 7, 4, 1, (1, 2)),  # kernel larger than the input
    ],
)
def test_tf_same_reference_values(n, k, s, d, expected):
    assert tf_same_amounts(n, k, s, d) == expected
    before, after = expected
    assert (n + before + after - ((k - 1) * d + 1)) // s + 1 == math.ceil(n / s)  # TF's output size


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


# --- MaxPool2d ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [8, 9])
def test_max_pool_tf_same_pads_with_minus_infinity(n):
    x = -1.0 - torch.rand(1, 3, n, n)  # all negative: a zero pad would win at the border
    y = MaxPool2d(3, 2, padding="tf_same")(x)
    assert_close(y, max_pool_ref(x, 3, 2, pad_amounts("tf_same", (n, n), 3, 2)))
    assert (y < 0).all()
    zero_padded = F.max_pool2d(F.pad(x, pad_amounts("tf_same", (n, n), 3, 2)), 3, 2)
    assert (zero_padded == 0).any()  # what padding with zeros would have produced instead


def test_max_pool_padding_modes():
    x = -1.0 - torch.rand(1, 2, 8, 8)
    assert_close(MaxPool2d(3, 2, padding="same")(x), F.max_pool2d(x, 3, 2, padding=1))
    assert_close(MaxPool2d(3, 2, padding="valid")(x), F.max_pool2d(x, 3, 2))
    assert_close(MaxPool2d(3, 1, padding=1)(x), F.max_pool2d(x, 3, 1, padding=1))
    # stride 1 and an even kernel under "same" follows TF: the extra -inf row and column after
    assert_close(MaxPool2d(2, 1, padding="same")(x), max_pool_ref(x, 2, 1, (0, 1, 0, 1)))
    assert MaxPool2d(3)(x).shape == (1, 2, 3, 3)  # stride defaults to the kernel
    assert MaxPool2d(3, 2, padding="tf_same")(torch.zeros(1, 8, 74, 74)).shape == (1, 8, 37, 37)


# --- make_divisible -------------------------------------------------------------------------------

# Expected values worked by hand from the TF rule: new = max(8, int(v + 4) // 8 * 8), plus 8 if new < 0.9 v.
@pytest.mark.parametrize(
    "value, expected",
    [
        (32 * 0.35, 16),  # int(15.2) // 8 * 8 = 8 < 10.08 -> 16
        (16 * 0.5, 8),  # int(12.0) // 8 * 8 = 8
        (24 * 0.75, 24),  # 16 < 16.2 -> 24
        (96 * 0.35, 32),  # int(37.6) // 8 * 8 = 32 >= 30.24
        (1280 * 1.4, 1792),
        (3, 8),  # int(7) // 8 * 8 = 0 -> the minimum 8
        (12, 16),  # halves round up
        (36, 40),
        (35.9, 40),  # 32 < 32.31 -> 40
        (72 // 4, 24),  # MobileNetV3's SE squeeze for 72 channels
        (120 // 4, 32),
        (240 // 4, 64),
        (960 // 4, 240),
    ],
)
def test_make_divisible_known_values(value, expected):
    assert make_divisible(value, 8) == expected


def test_make_divisible_other_divisors_and_minimum():
    assert make_divisible(10, 4) == 12  # int(12) // 4 * 4
    assert make_divisible(3, 8, min_value=4) == 4
    assert make_divisible(100, 1) == 100


# --- docstring examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", ["padding", "conv", "depthwise", "grouped", "segmented", "spatial", "squeeze_excite", "blocks"]
)
def test_docstring_examples(module):
    mod = importlib.import_module(f"sepconv.layers.{module}")
    result = doctest.testmod(mod, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_public_api_is_complete():
    assert [n for n in L.__all__ if not hasattr(L, n)] == []
    assert {"SeparableConv2d", "DepthwiseConv2d", "make_divisible", "MaxPool2d"} <= set(L.__all__)
