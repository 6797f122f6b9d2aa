"""SpatiallySeparableConv2d: a k x 1 then a 1 x k conv, equal to one full conv with its low-rank kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from support.layers import EVEN_KERNEL_SAME, bn_ref, conv_ref, randomize_norms
from torch import nn
from torch.testing import assert_close

from sepconv.layers import SpatiallySeparableConv2d


def _set(conv: nn.Conv2d, weight: torch.Tensor) -> None:
    with torch.no_grad():
        conv.weight.copy_(weight)


def test_sobel_factorises_exactly():
    """Sobel's x kernel is the outer product of [1, 2, 1] (column) and [1, 0, -1] (row)."""
    col, row = torch.tensor([1.0, 2.0, 1.0]), torch.tensor([1.0, 0.0, -1.0])
    sobel = torch.outer(col, row).view(1, 1, 3, 3)
    assert sobel[0, 0].tolist() == [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    m = SpatiallySeparableConv2d(1, 1, 3, padding="valid")
    _set(m.conv_kx1, col.view(1, 1, 3, 1))
    _set(m.conv_1xk, row.view(1, 1, 1, 3))
    x = torch.randn(2, 1, 5, 5)
    y = m(x)
    assert y.shape == (2, 1, 3, 3)
    assert_close(y, F.conv2d(x, sobel), rtol=0, atol=1e-5)


@EVEN_KERNEL_SAME
@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("mode", ["same", "valid", "tf_same", 1])
def test_spatially_separable_equals_full_conv_with_its_low_rank_kernel(k, s, mode):
    """k x 1 (M -> P) then 1 x k (P -> N) is one k x k conv with W[n, m] = sum_p col[p, m] (x) row[n, p]."""
    m = SpatiallySeparableConv2d(3, 4, k, mid_channels=2, stride=s, padding=mode, bias=True).double()
    col, row = m.conv_kx1.weight[:, :, :, 0], m.conv_1xk.weight[:, :, 0, :]  # (P, M, k), (N, P, k)
    full = torch.einsum("pma,npb->nmab", col, row)  # (N, M, k, k), rank <= P per (n, m) pair
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    y = m(x)
    assert_close(y, conv_ref(x, full, m.conv_1xk.bias, mode, s))


def test_spatially_separable_rank_one_kernel_with_mid_one():
    """mid_channels=1: every (n, m) kernel is the outer product of one column and one row."""
    m = SpatiallySeparableConv2d(2, 3, 3, mid_channels=1, padding="same").double()
    col, row = m.conv_kx1.weight[0, :, :, 0], m.conv_1xk.weight[:, 0, 0, :]  # (M, k), (N, k)
    full = torch.stack([torch.stack([torch.outer(col[i], row[o]) for i in range(2)]) for o in range(3)])
    assert torch.linalg.matrix_rank(full[1, 0]) == 1
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    assert_close(m(x), F.conv2d(x, full, padding=1))


def test_spatially_separable_layout_and_mid_layers():
    m = randomize_norms(SpatiallySeparableConv2d(3, 5, 3, stride=2, mid_norm=nn.BatchNorm2d, mid_act=nn.ReLU))
    assert m.conv_kx1.kernel_size == (3, 1) and m.conv_kx1.stride == (2, 1)
    assert m.conv_1xk.kernel_size == (1, 3) and m.conv_1xk.stride == (1, 2)
    assert m.mid_channels == 5  # defaults to out_channels (Inception-v3)
    x = torch.randn(1, 3, 9, 9)
    mid = bn_ref(conv_ref(x, m.conv_kx1.weight, None, "same", (2, 1)), m.mid_norm).relu()
    assert_close(m(x), conv_ref(mid, m.conv_1xk.weight, None, "same", (1, 2)))


def test_spatially_separable_dilation_and_pair_padding():
    m = SpatiallySeparableConv2d(2, 2, 3, dilation=2, padding=(2, 1)).double()
    full = torch.einsum("pma,npb->nmab", m.conv_kx1.weight[..., 0], m.conv_1xk.weight[:, :, 0])
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    assert_close(m(x), F.conv2d(x, full, padding=(2, 1), dilation=2))
