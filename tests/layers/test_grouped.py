"""GroupedConv2d and ChannelShuffle: a concatenation of per-group convs, and an index permutation."""

from __future__ import annotations

import pytest
import torch
from support.layers import grouped_ref
from torch.testing import assert_close

from sepconv.layers import ChannelShuffle, GroupedConv2d


@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("mode", ["same", "tf_same"])
def test_grouped_is_concatenation_of_group_convs(groups, s, mode):
    x = torch.randn(2, 8, 8, 8)
    m = GroupedConv2d(8, 12, 3, groups=groups, stride=s, padding=mode, bias=True)
    assert m.conv.weight.shape == (12, 8 // groups, 3, 3)
    assert_close(m(x), grouped_ref(x, m.conv.weight, m.conv.bias, groups, mode, s))


def _shuffle_permutation(channels: int, groups: int) -> list[int]:
    """Output position j * g + i takes input channel i * n + j (group i, member j, n = C / g)."""
    n = channels // groups
    return [i * n + j for j in range(n) for i in range(groups)]


def test_shuffle_permutation_reference():
    assert _shuffle_permutation(6, 2) == [0, 3, 1, 4, 2, 5]
    assert _shuffle_permutation(6, 3) == [0, 2, 4, 1, 3, 5]


@pytest.mark.parametrize("groups", [2, 3, 4])
def test_grouped_shuffle_is_an_index_permutation(groups):
    x = torch.randn(2, 12, 6, 6)
    m = GroupedConv2d(12, 24, 3, groups=groups, shuffle=True)
    plain = grouped_ref(x, m.conv.weight, None, groups, "same")
    assert_close(m(x), plain[:, _shuffle_permutation(24, groups)])


@pytest.mark.parametrize("channels, groups", [(4, 2), (12, 3), (12, 4), (8, 1), (6, 6)])
def test_channel_shuffle(channels, groups):
    x = torch.randn(2, channels, 3, 3)
    y = ChannelShuffle(groups)(x)
    assert torch.equal(y, x[:, _shuffle_permutation(channels, groups)])
    assert torch.equal(ChannelShuffle(channels // groups)(y), x)  # shuffling by n undoes shuffling by g


def test_channel_shuffle_example_and_refusal():
    assert ChannelShuffle(2)(torch.arange(4.0).view(1, 4, 1, 1)).flatten().tolist() == [0.0, 2.0, 1.0, 3.0]
    with pytest.raises(ValueError, match=r"groups=3 must divide the input's 8 channels"):
        ChannelShuffle(3)(torch.randn(1, 8, 2, 2))


def test_channel_shuffle_backward():
    x = torch.randn(1, 6, 2, 2, requires_grad=True)
    w = torch.randn(1, 6, 2, 2)
    (ChannelShuffle(3)(x) * w).sum().backward()
    assert torch.equal(x.grad, w[:, _shuffle_permutation(6, 2)])  # the inverse permutation


# --- SegmentedSeparableConv2d ---------------------------------------------------------------------
