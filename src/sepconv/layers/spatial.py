"""Spatially separable convolution: ``k x 1`` then ``1 x k``.

A rank-1 kernel such as Sobel's factors into a column and a row; Szegedy et al. 2016,
*Rethinking the Inception Architecture*, Section 3.2, factorise ``n x n`` convs into ``n x 1``
followed by ``1 x n``. On a 5x5 single-channel map without padding a 3x3 kernel costs
9 x 9 = 81 multiplications; the 3x1 (3x5 outputs, 45) then 1x3 (3x3 outputs, 27) pair costs 72.
"""

from __future__ import annotations

import torch
from torch import nn

from .._util.checks import int_pair, optional_callable, positive_int
from ._input import checked
from .conv import Conv2d, ModuleFactory, build
from .padding import Padding


class SpatiallySeparableConv2d(nn.Module):
    """``k x 1`` conv (``conv_kx1``, M -> mid) then ``1 x k`` conv (``conv_1xk``, mid -> N).

    Szegedy et al. 2016, *Rethinking the Inception Architecture for Computer Vision*, Section 3.2
    and Fig. 3: an ``n x n`` conv factorised into ``n x 1`` then ``1 x n``, exact for a rank-1
    kernel (Sobel) and a cheaper approximation otherwise. The example is the 5x5 map of the module
    docstring: 45 + 27 = 72 multiplications against a 3x3 kernel's 81.

    ``mid_channels`` defaults to ``out_channels`` (Inception-v3's factorisation); the stride and
    dilation are split between the two, vertical in the first, horizontal in the second.

    Example::

        >>> SpatiallySeparableConv2d(1, 1, 3, padding="valid")(torch.zeros(1, 1, 5, 5)).shape
        torch.Size([1, 1, 3, 3])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        mid_channels: int | None = None,
        stride: int = 1,
        padding: Padding = "same",
        dilation: int = 1,
        mid_norm: ModuleFactory | None = None,
        mid_act: ModuleFactory | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        k = positive_int("kernel_size", kernel_size)
        s = positive_int("stride", stride)
        d = positive_int("dilation", dilation)
        mid = out_channels if mid_channels is None else positive_int("mid_channels", mid_channels)
        optional_callable("mid_norm", mid_norm)
        optional_callable("mid_act", mid_act)
        pad_v, pad_h = _split_padding(padding, k, d)
        self.conv_kx1 = Conv2d(in_channels, mid, (k, 1), (s, 1), pad_v, (d, 1), bias=False)
        self.mid_norm = build(mid_norm, mid)
        self.mid_act = build(mid_act)
        self.conv_1xk = Conv2d(mid, out_channels, (1, k), (1, s), pad_h, (1, d), bias=bias)
        self.in_channels, self.out_channels, self.mid_channels = in_channels, out_channels, mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, M, H, W)
        x = self.conv_kx1(x)  # (B, mid, H/s, W)
        x = self.mid_act(self.mid_norm(x))
        return self.conv_1xk(x)  # (B, N, H/s, W/s)


def _split_padding(padding: Padding, k: int, d: int) -> tuple[Padding, Padding]:
    """Give each half of the factorisation the padding of its own spatial dimension."""
    if padding is None or isinstance(padding, str):
        return padding, padding
    ph, pw = int_pair("padding", padding, minimum=0)
    return (ph, 0), (0, pw)
