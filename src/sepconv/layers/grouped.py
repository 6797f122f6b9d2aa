"""Grouped convolution and channel shuffle.

Krizhevsky et al. 2012 (AlexNet's two groups); Xie et al. 2017, *ResNeXt*; Zhang et al. 2018,
*ShuffleNet*, Section 3.1: with ``g`` groups a conv has ``1/g`` of the parameters and MACs, and a
channel shuffle lets the next grouped conv see every group.
"""

from __future__ import annotations

import torch
from torch import nn

from .._util.checks import positive_int
from ._input import checked
from .conv import Conv2d
from .padding import Padding


class ChannelShuffle(nn.Module):
    """Interleave ``groups`` channel groups: (B, g*n, H, W) -> view (g, n) -> transpose -> flatten.

    ShuffleNet (Zhang et al. 2018), Fig. 1(c). ``nn.ChannelShuffle`` exists but has no autograd
    for every backend and no ONNX export; this is a reshape-transpose that exports and traces.

    Example::

        >>> ChannelShuffle(2)(torch.arange(4.).view(1, 4, 1, 1)).flatten().tolist()
        [0.0, 2.0, 1.0, 3.0]
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = positive_int("groups", groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x, groups=self.groups)  # (B, C, H, W)
        x = x.unflatten(1, (self.groups, -1))  # (B, g, C/g, H, W)
        return x.transpose(1, 2).flatten(1, 2)  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class GroupedConv2d(nn.Module):
    """A ``k x k`` conv in ``groups`` independent groups (``conv``), optionally then a shuffle.

    Krizhevsky et al. 2012 (AlexNet's two groups); Xie et al. 2017, *ResNeXt*; Zhang et al. 2018,
    *ShuffleNet*, Section 3.1 and Fig. 1: each group maps ``in_channels / groups`` inputs to
    ``out_channels / groups`` outputs, so the conv has ``1/groups`` of a standard conv's parameters
    and MACs; ``shuffle=True`` appends ShuffleNet's :class:`ChannelShuffle` so that a following
    grouped conv sees every group.

    Example::

        >>> GroupedConv2d(64, 128, 3, groups=4, shuffle=True)(torch.zeros(1, 64, 28, 28)).shape
        torch.Size([1, 128, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        groups: int,
        shuffle: bool = False,
        stride: int | tuple[int, int] = 1,
        padding: Padding = "same",
        dilation: int | tuple[int, int] = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.shuffle = ChannelShuffle(groups) if shuffle else nn.Identity()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, M, H, W)
        return self.shuffle(self.conv(x))  # (B, N, H/s, W/s)
