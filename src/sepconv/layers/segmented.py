"""Xception's spectrum between a regular convolution and a depthwise-separable one.

Chollet 2017, *Xception*, Section 1.2 and Fig. 4: a 1x1 conv, then a ``k x k`` conv over
``segments`` non-overlapping channel segments. One segment is a regular conv preceded by a 1x1
(the Inception "extreme" reading); ``segments = out_channels`` is the depthwise-separable extreme
(with the order of the two operations reversed).
"""

from __future__ import annotations

import torch
from torch import nn

from .._util.checks import divides, positive_int
from ._input import checked
from .conv import Conv2d
from .padding import Padding


class SegmentedSeparableConv2d(nn.Module):
    """``pw`` (1x1, M -> N) then ``spatial`` (``k x k``, N -> N in ``segments`` groups).

    Chollet 2017, *Xception*, Section 1.2 and Fig. 4: ``segments=1`` is a regular ``k x k`` conv
    after a 1x1 (the Inception reading), ``segments=out_channels`` the "extreme" version, a
    depthwise-separable conv with its two operations in the reverse order; values in between are
    the intermediate points of the spectrum.

    Example::

        >>> SegmentedSeparableConv2d(64, 128, 3, segments=4)(torch.zeros(1, 64, 28, 28)).shape
        torch.Size([1, 128, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        segments: int,
        stride: int | tuple[int, int] = 1,
        padding: Padding = "same",
        bias: bool = False,
    ) -> None:
        super().__init__()
        positive_int("segments", segments)
        positive_int("out_channels", out_channels)
        divides("segments", segments, "out_channels", out_channels)
        self.pw = Conv2d(in_channels, out_channels, 1, padding=0, bias=False)
        self.spatial = Conv2d(out_channels, out_channels, kernel_size, stride, padding, groups=segments, bias=bias)
        self.in_channels, self.out_channels, self.segments = in_channels, out_channels, segments

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, M, H, W)
        x = self.pw(x)  # (B, N, H, W)
        return self.spatial(x)  # (B, N, H/s, W/s)
