"""Depthwise, pointwise and depthwise-separable convolutions.

Sifre & Mallat 2014 (rigid-motion scattering); Chollet 2017, *Xception*; Howard et al. 2017,
*MobileNets*, Section 3.1 and Fig. 2. A standard ``k x k`` conv from M to N channels costs
``k^2 M N H W`` MACs; the depthwise-separable factorisation ``k^2 M H W + M N H W``, a ratio of
``1/N + 1/k^2``.
"""

from __future__ import annotations

import torch
from torch import nn

from .._util.checks import int_pair, optional_callable, positive_int
from ._input import checked
from .conv import Conv2d, ModuleFactory, build
from .padding import Padding


class DepthwiseConv2d(Conv2d):
    """One ``k x k`` filter per input channel (``groups = in_channels``), Keras semantics.

    ``depth_multiplier`` d gives ``in_channels * d`` outputs; output ``c * d + j`` is input
    channel ``c``'s j-th filter, the order of Keras ``DepthwiseConv2D`` (kernel ``(k, k, C, d)``).
    MobileNets (Howard et al. 2017), Section 3.1.

    Example::

        >>> DepthwiseConv2d(32, 3, depth_multiplier=2)(torch.zeros(1, 32, 56, 56)).shape
        torch.Size([1, 64, 56, 56])
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: Padding = "same",
        depth_multiplier: int = 1,
        dilation: int | tuple[int, int] = 1,
        bias: bool = False,
    ) -> None:
        positive_int("in_channels", in_channels)
        positive_int("depth_multiplier", depth_multiplier)
        super().__init__(
            in_channels, in_channels * depth_multiplier, kernel_size, stride, padding, dilation,
            groups=in_channels, bias=bias,
        )
        self.depth_multiplier = depth_multiplier


class PointwiseConv2d(Conv2d):
    """A 1x1 convolution: mixes channels, no spatial extent (MobileNets, Section 3.1).

    Example::

        >>> PointwiseConv2d(32, 64)(torch.zeros(1, 32, 56, 56)).shape
        torch.Size([1, 64, 56, 56])
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, 1, padding=0, bias=bias)


class SeparableConv2d(nn.Module):
    """Depthwise ``k x k`` (``dw``) then pointwise 1x1 (``pw``): Keras ``SeparableConv2D``.

    With no ``mid_norm``/``mid_act`` it computes exactly what Keras ``SeparableConv2D`` computes
    with the same weights (the bias, if any, is the pointwise one). With ``mid_norm=nn.BatchNorm2d,
    mid_act=nn.ReLU`` it is the first half of the MobileNetV1 unit (Howard et al. 2017, Fig. 3).
    Chollet 2017, *Xception*, Section 2.

    Example::

        >>> SeparableConv2d(32, 64, 3, stride=2)(torch.zeros(1, 32, 56, 56)).shape
        torch.Size([1, 64, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: Padding = "same",
        depth_multiplier: int = 1,
        dilation: int | tuple[int, int] = 1,
        mid_norm: ModuleFactory | None = None,
        mid_act: ModuleFactory | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        optional_callable("mid_norm", mid_norm)
        optional_callable("mid_act", mid_act)
        self.dw = DepthwiseConv2d(in_channels, kernel_size, stride, padding, depth_multiplier, dilation)
        mid = in_channels * depth_multiplier
        self.mid_norm = build(mid_norm, mid)
        self.mid_act = build(mid_act)
        self.pw = PointwiseConv2d(mid, out_channels, bias=bias)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, C, H, W)
        x = self.dw(x)  # (B, C*d, H/s, W/s)
        x = self.mid_act(self.mid_norm(x))
        return self.pw(x)  # (B, N, H/s, W/s)


class GlobalDepthwiseConv2d(DepthwiseConv2d):
    """MobileFaceNet's global depthwise conv (GDC): a depthwise kernel as large as the map.

    A learned, per-channel weighted global pooling: unlike global average pooling it can weigh the
    centre of a face differently from its corners (Chen et al. 2018, *MobileFaceNets*, Section 2.2).
    ``spatial_size`` is the input's (H, W); other sizes are refused.

    Example::

        >>> GlobalDepthwiseConv2d(512, 7)(torch.zeros(2, 512, 7, 7)).shape
        torch.Size([2, 512, 1, 1])
    """

    def __init__(self, channels: int, spatial_size: int | tuple[int, int], bias: bool = False) -> None:
        positive_int("channels", channels)
        size = int_pair("spatial_size", spatial_size)
        super().__init__(channels, size, padding="valid", bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x, size=self.kernel_size)  # (B, C, k, k)
        return super().forward(x)  # (B, C, 1, 1)
