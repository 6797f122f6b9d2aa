"""ChannelPermutation and PermutedGroupedConv2d: a gather, and a standard conv whose weight is block
diagonal once the permutations line its channels up — checked against that dense conv."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from sepconv.layers import permuted
from sepconv.layers.permuted import ChannelPermutation, PermutedGroupedConv2d


def test_channel_permutation_gathers_and_is_saved():
    index = torch.tensor([3, 0, 2, 1])
    m = ChannelPermutation(index)
    x = torch.randn(2, 4, 3, 3)
    assert torch.equal(m(x), x[:, index])
    assert m.in_channels == m.out_channels == 4 and "channels=4" in repr(m)
    assert torch.equal(m.state_dict()["index"], index)  # a persistent buffer
    other = ChannelPermutation(torch.arange(4))
    other.load_state_dict(m.state_dict())
    assert torch.equal(other(x), m(x))


@pytest.mark.parametrize("index", [[0, 0, 1], [1, 2, 3], [[0, 1], [1, 0]], [-1, 0]])
def test_channel_permutation_refuses_what_is_not_a_permutation(index):
    with pytest.raises(ValueError, match="must be a permutation of 0.."):
        ChannelPermutation(torch.tensor(index))


def test_channel_permutation_checks_its_input():
    with pytest.raises(ValueError, match="ChannelPermutation: expected 3 input channels, got 4"):
        ChannelPermutation(torch.tensor([2, 0, 1]))(torch.zeros(1, 4, 2, 2))


def dense_weight(m: PermutedGroupedConv2d, in_perm: torch.Tensor, out_perm: torch.Tensor) -> torch.Tensor:
    """The standard conv's weight: group g's block, at the permuted rows and columns."""
    w = m.grouped.conv.weight  # (N, M/G, k, k), grouped order
    n, per_group = w.shape[0], w.shape[1]
    dense = torch.zeros(n, per_group * m.groups, *w.shape[2:], dtype=w.dtype)
    out_per_group = n // m.groups
    for j in range(n):
        g = j // out_per_group
        for i in range(per_group):
            dense[out_perm[j], in_perm[g * per_group + i]] = w[j, i]
    return dense


@pytest.mark.parametrize("stride", [1, 2])
def test_permuted_grouped_conv_is_a_block_diagonal_conv_under_the_permutations(stride):
    g = torch.Generator().manual_seed(0)
    in_perm, out_perm = torch.randperm(6, generator=g), torch.randperm(8, generator=g)
    m = PermutedGroupedConv2d(6, 8, 3, groups=2, stride=stride, padding=1, bias=True, in_perm=in_perm,
                              out_perm=out_perm).double()
    x = torch.randn(2, 6, 7, 7, dtype=torch.float64)
    bias = torch.zeros(8, dtype=torch.float64)
    bias[out_perm] = m.grouped.conv.bias.detach()
    with torch.no_grad():
        assert_close(m(x), F.conv2d(x, dense_weight(m, in_perm, out_perm), bias, stride, 1))


def test_without_permutations_it_is_the_grouped_conv():
    m = PermutedGroupedConv2d(4, 4, 1, groups=2)
    x = torch.randn(1, 4, 3, 3)
    assert_close(m(x), F.conv2d(x, m.grouped.conv.weight, None, groups=2))
    with pytest.raises(ValueError, match="PermutedGroupedConv2d: expected 4 input channels, got 3"):
        m(torch.zeros(1, 3, 3, 3))


def test_docstring_examples():
    result = doctest.testmod(permuted, extraglobs={"torch": torch})
    assert result.attempted >= 2 and result.failed == 0
