"""The two modules separation needs that :mod:`sepconv.layers` does not have.

A grouped conv only sees channels that sit in the same contiguous group, so keeping the
block-diagonal part of a conv under a channel permutation needs the permutation applied to the
input and undone on the output (ShuffleNet's channel shuffle, Zhang et al. 2018, is the fixed
special case; here the permutation is whatever keeps most of the trained weights).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._util.checks import ArgumentError
from ._input import checked
from .grouped import GroupedConv2d
from .padding import Padding


def permutation_index(name: str, value: Any) -> torch.Tensor:
    """``value`` as a 1-D long tensor holding a permutation of ``0..n-1``; anything else (floats,
    bools, another shape, repeats) is an :class:`ArgumentError` naming ``name``."""
    rule = "must be a permutation of 0..n-1: a 1-D tensor of integer channel indices"
    try:
        index = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise ArgumentError(name, f"{name}={value!r} {rule}") from None
    if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool or index.dim() != 1:
        raise ArgumentError(name, f"{name}={_short(index)} {rule}")
    index = index.long()
    if not torch.equal(torch.sort(index).values, torch.arange(len(index), device=index.device)):
        raise ArgumentError(name, f"{name}={_short(index)} must be a permutation of 0..{len(index) - 1}")
    return index


def _permutation_of(name: str, value: Any, channels_name: str, channels: int) -> torch.Tensor:
    index = permutation_index(name, value)
    if len(index) != channels:
        raise ArgumentError(name, f"{name} permutes {len(index)} channels; {channels_name}={channels}")
    return index


def _short(index: torch.Tensor) -> str:
    values = index.flatten()[:16].tolist()
    return f"{values}{' ...' if index.numel() > 16 else ''}" if index.dim() else repr(index.item())


class ChannelPermutation(nn.Module):
    """Reorder channels: ``y[:, q] = x[:, index[q]]`` (a gather; exports to ONNX as ``Gather``).

    ``index`` is a persistent buffer, so it is saved and loaded with the state dict.

    Example::

        >>> ChannelPermutation(torch.tensor([2, 0, 1]))(torch.arange(3.).view(1, 3, 1, 1)).flatten().tolist()
        [2.0, 0.0, 1.0]
    """

    def __init__(self, index: torch.Tensor) -> None:
        super().__init__()
        index = permutation_index("index", index)
        self.register_buffer("index", index)
        self.in_channels = self.out_channels = len(index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, C, H, W)
        return x.index_select(1, self.index)  # (B, C, H, W), channels reordered

    def extra_repr(self) -> str:
        return f"channels={self.in_channels}"


class PermutedGroupedConv2d(nn.Module):
    """Permute input channels (``perm_in``), grouped conv (``grouped``), un-permute outputs (``perm_out``).

    Computes a standard conv whose weight is zero outside the blocks that the permutations line
    up: what :func:`sepconv.separation.factor.grouped_factors` keeps. ``in_perm``/``out_perm`` as
    there; ``None`` means the identity (no gather at run time).

    Example::

        >>> m = PermutedGroupedConv2d(8, 16, 3, groups=4, in_perm=torch.arange(8).flip(0))
        >>> m(torch.zeros(1, 8, 14, 14)).shape
        torch.Size([1, 16, 14, 14])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        groups: int,
        stride: int | tuple[int, int] = 1,
        padding: Padding = "same",
        dilation: int | tuple[int, int] = 1,
        bias: bool = False,
        in_perm: torch.Tensor | None = None,
        out_perm: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        grouped = GroupedConv2d(in_channels, out_channels, kernel_size, groups, False, stride, padding, dilation,
                                bias)  # checks the channel counts the permutations are checked against
        self.perm_in = nn.Identity() if in_perm is None else ChannelPermutation(
            _permutation_of("in_perm", in_perm, "in_channels", in_channels))
        self.grouped = grouped
        self.perm_out = nn.Identity() if out_perm is None else ChannelPermutation(
            torch.argsort(_permutation_of("out_perm", out_perm, "out_channels", out_channels)))
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, M, H, W)
        x = self.perm_in(x)  # (B, M, H, W), grouped order
        x = self.grouped(x)  # (B, N, H/s, W/s), grouped order
        return self.perm_out(x)  # (B, N, H/s, W/s), original channel order
