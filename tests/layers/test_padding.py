"""Padding rules and MaxPool2d: TensorFlow's SAME amounts against worked values, and pooling pads with -inf."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from support.layers import max_pool_ref, pad_amounts, tf_same_amounts
from torch.testing import assert_close

from sepconv.layers import MaxPool2d
from sepconv.layers import padding as P


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


@pytest.mark.parametrize("n", [1, 7, 8, 9, 224, 225])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("s", [1, 2, 3])
def test_tf_same_amounts_equal_the_reference(n, k, s):
    for d in (1, 2):
        assert P.tf_same_amounts(n, k, s, d) == tf_same_amounts(n, k, s, d)


def test_resolve_padding_rules():
    one, two = (1, 1), (2, 2)
    # None and "same": symmetric d * (k - 1) // 2, torch's asymmetric "same" only at stride 1 with an even kernel
    assert P.resolve_padding(None, (3, 3), two, one) == ((1, 1), False)
    assert P.resolve_padding("same", (5, 3), one, (1, 2)) == ((2, 2), False)
    assert P.resolve_padding("same", (4, 4), one, one) == ("same", False)
    assert P.resolve_padding("same", (4, 4), two, one) == ((1, 1), False)
    assert P.resolve_padding("valid", (3, 3), one, one) == ((0, 0), False)
    assert P.resolve_padding("tf_same", (3, 3), two, one) == ((0, 0), True)  # padded at run time
    assert P.resolve_padding(2, (5, 5), one, one) == ((2, 2), False)
    assert P.resolve_padding((0, 3), (7, 7), one, one) == ((0, 3), False)
    with pytest.raises(ValueError, match="padding='full' must be one of"):
        P.resolve_padding("full", (3, 3), one, one)
    with pytest.raises(ValueError, match="padding"):
        P.resolve_padding(-1, (3, 3), one, one)


def test_tf_same_pad_pads_after_on_even_input_and_leaves_a_no_op_alone():
    x = torch.randn(1, 2, 8, 9)
    padded = P.tf_same_pad(x, (3, 3), (2, 2))
    assert padded.shape == (1, 2, 9, 11)  # rows: 0 before, 1 after; columns (odd): 1 and 1
    assert_close(padded[:, :, :8, 1:10], x)
    assert float(padded[:, :, 8].abs().max()) == 0 and float(padded[:, :, :, 0].abs().max()) == 0
    assert P.tf_same_pad(x, (1, 1), (1, 1)) is x
    assert float(P.tf_same_pad(x, (2, 2), (1, 1), value=float("-inf"))[0, 0, -1, -1]) == float("-inf")


def test_max_pool_refuses_padding_over_half_the_kernel():
    with pytest.raises(ValueError, match=r"padding=2 must be at most half of kernel_size=3"):
        MaxPool2d(3, 1, padding=2)
