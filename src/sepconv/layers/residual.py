"""ResNet's residual blocks (He et al. 2016, *Deep Residual Learning for Image Recognition*, Fig. 5).

``F(x) + shortcut(x)``, then ReLU. The shortcut is the identity when the block keeps the shape and
otherwise a strided 1x1 projection with BatchNorm (Section 3.3, option B: "projection shortcuts are
used for increasing dimensions, and other shortcuts are identity").
"""

from __future__ import annotations

import torch
from torch import nn

from .._util.checks import boolean, optional_callable, positive_int
from ._input import checked
from .conv import ConvNormAct, ModuleFactory, build
from .padding import Padding


def shortcut(in_channels: int, out_channels: int, stride: int, norm_layer: ModuleFactory | None) -> nn.Module:
    """Option B: identity when the shape is kept, else a strided 1x1 projection + norm (no activation)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return ConvNormAct(in_channels, out_channels, 1, stride, padding=0, norm_layer=norm_layer, act_layer=None)


class BasicBlock(nn.Module):
    """Two 3x3 convs (Fig. 5 left; ResNet-18 and -34 in Table 1): ``conv1`` (stride ``stride``) -> ``conv2``
    (no activation), plus ``shortcut``, then ``act``. ``padding`` is the 3x3 convs' rule (symmetric "same"
    by default).

    Example::

        >>> BasicBlock(64, 128, stride=2)(torch.zeros(1, 64, 56, 56)).shape
        torch.Size([1, 128, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        norm_layer: ModuleFactory | None = nn.BatchNorm2d,
        act_layer: ModuleFactory | None = nn.ReLU,
        padding: Padding = None,
    ) -> None:
        super().__init__()
        positive_int("stride", stride)
        optional_callable("norm_layer", norm_layer)
        self.conv1 = ConvNormAct(in_channels, out_channels, 3, stride, padding, norm_layer=norm_layer,
                                 act_layer=act_layer)
        self.conv2 = ConvNormAct(out_channels, out_channels, 3, 1, padding, norm_layer=norm_layer, act_layer=None)
        self.shortcut = shortcut(in_channels, out_channels, stride, norm_layer)
        self.act = build(act_layer)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        y = self.conv1(x)  # (B, out, H/s, W/s)
        y = self.conv2(y)  # (B, out, H/s, W/s)
        return self.act(y + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 (reduce to ``mid_channels``) -> 3x3 -> 1x1 (expand to ``out_channels``, no activation), plus
    ``shortcut``, then ``act`` (Fig. 5 right; ResNet-50/101/152 in Table 1).

    ``stride_in_1x1=True`` strides the first 1x1 conv, as the paper's released Caffe models do (ResNet
    "v1"); ``False`` strides the 3x3 conv, as torchvision does ("v1.5", after Goyal et al. 2017): the
    same parameters, but the 3x3 conv then runs at the input's resolution, so more MACs. ``padding`` is
    the 3x3 conv's rule (symmetric "same" by default).

    Example::

        >>> Bottleneck(256, 512, 128, stride=2)(torch.zeros(1, 256, 56, 56)).shape
        torch.Size([1, 512, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        stride: int = 1,
        stride_in_1x1: bool = True,
        norm_layer: ModuleFactory | None = nn.BatchNorm2d,
        act_layer: ModuleFactory | None = nn.ReLU,
        padding: Padding = None,
    ) -> None:
        super().__init__()
        positive_int("mid_channels", mid_channels)
        positive_int("stride", stride)
        optional_callable("norm_layer", norm_layer)
        s1, s3 = (stride, 1) if boolean("stride_in_1x1", stride_in_1x1) else (1, stride)
        cna = dict(norm_layer=norm_layer, act_layer=act_layer)
        self.conv1 = ConvNormAct(in_channels, mid_channels, 1, s1, padding=0, **cna)
        self.conv2 = ConvNormAct(mid_channels, mid_channels, 3, s3, padding, **cna)
        self.conv3 = ConvNormAct(mid_channels, out_channels, 1, padding=0, norm_layer=norm_layer, act_layer=None)
        self.shortcut = shortcut(in_channels, out_channels, stride, norm_layer)
        self.act = build(act_layer)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        y = self.conv1(x)  # (B, mid, H/s or H, ...)
        y = self.conv2(y)  # (B, mid, H/s, W/s)
        y = self.conv3(y)  # (B, out, H/s, W/s)
        return self.act(y + self.shortcut(x))
