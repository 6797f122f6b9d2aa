"""Inception v3's modules and the auxiliary classifiers of GoogLeNet and Inception v3.

Szegedy et al. 2016, *Rethinking the Inception Architecture for Computer Vision*: Fig. 5 (the 35x35
module, the 5x5 factored into two 3x3s), Fig. 6 (17x17, n x n factored into 1 x n and n x 1), Fig. 7
(8x8, the expanded filter bank) and Fig. 10 (grid reduction by parallel stride-2 branches). The paper
prints no filter counts; these are those of the authors' released TensorFlow model (TF-slim's
``inception_v3``), which torchvision (``InceptionA`` ... ``InceptionE``, the letters used here) and
Keras (``InceptionV3``) reproduce. Submodules carry torchvision's names, so that its weights map one to one.
``width_mult`` scales every width (rounded to a multiple of 8), as TF-slim's ``depth_multiplier`` does
(with its own rounding).

Two details differ between the TensorFlow model and torchvision's port, and are arguments here: the
BatchNorm (TensorFlow's has no scale, :class:`~sepconv.layers.norm.BatchNorm2dNoScale`; pass it as
``norm_layer``) and the 3x3 average pool in front of each pool-projection branch: TensorFlow's "SAME"
average pool divides by the number of input pixels in each window (``count_include_pad=False``),
torchvision's ``F.avg_pool2d(x, 3, 1, 1)`` by 9 everywhere (``count_include_pad=True``), which dims
the border of the map.

Szegedy et al. 2015, *Going Deeper with Convolutions*, Section 5: GoogLeNet's auxiliary classifier.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._util.checks import ArgumentError, boolean, positive_int
from ._input import checked
from ._utils import make_divisible
from .conv import ConvNormAct, ModuleFactory


def widths(width_mult: float) -> Callable[[int], int]:
    """The table's width ``c`` times ``width_mult``, rounded to a multiple of 8 (:func:`make_divisible`, the
    zoo's rule): the identity at 1.0, where every width of these modules is a multiple of 8 already.
    (TF-slim's ``depth_multiplier`` rounds otherwise, ``max(int(c * m), 16)``.)"""
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or width_mult <= 0:
        raise ArgumentError("width_mult", f"width_mult={width_mult!r} must be a positive number")
    return lambda c: make_divisible(c * width_mult)


def pool_3x3(count_include_pad: bool) -> nn.AvgPool2d:
    """The stride-1 3x3 average pool in front of a pool-projection branch (module docstring)."""
    return nn.AvgPool2d(3, 1, 1, count_include_pad=boolean("count_include_pad", count_include_pad))


class InceptionV3A(nn.Module):
    """The 35x35 module (Fig. 5; Mixed_5b/5c/5d): 1x1 (64); 1x1 (48) -> 5x5 (64); 1x1 (64) -> 3x3 (96)
    -> 3x3 (96); 3x3 average pool -> 1x1 (``pool_features``), concatenated: 224 + ``pool_features`` channels.

    Example::

        >>> InceptionV3A(192, pool_features=32)(torch.zeros(1, 192, 35, 35)).shape
        torch.Size([1, 256, 35, 35])
    """

    def __init__(self, in_channels: int, pool_features: int, norm_layer: ModuleFactory | None = nn.BatchNorm2d,
                 count_include_pad: bool = True, padding: str = "same", width_mult: float = 1.0) -> None:
        super().__init__()
        positive_int("pool_features", pool_features)
        w = widths(width_mult)
        cna = dict(norm_layer=norm_layer, padding=padding)
        self.branch1x1 = ConvNormAct(in_channels, w(64), 1, **cna)
        self.branch5x5_1 = ConvNormAct(in_channels, w(48), 1, **cna)
        self.branch5x5_2 = ConvNormAct(w(48), w(64), 5, **cna)
        self.branch3x3dbl_1 = ConvNormAct(in_channels, w(64), 1, **cna)
        self.branch3x3dbl_2 = ConvNormAct(w(64), w(96), 3, **cna)
        self.branch3x3dbl_3 = ConvNormAct(w(96), w(96), 3, **cna)
        self.pool = pool_3x3(count_include_pad)
        self.branch_pool = ConvNormAct(in_channels, w(pool_features), 1, **cna)
        self.in_channels, self.out_channels = in_channels, w(64) + w(64) + w(96) + w(pool_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        b1 = self.branch1x1(x)  # (B, 64, H, W)
        b5 = self.branch5x5_2(self.branch5x5_1(x))  # (B, 64, H, W)
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))  # (B, 96, H, W)
        bp = self.branch_pool(self.pool(x))  # (B, pool_features, H, W)
        return torch.cat([b1, b5, b3, bp], dim=1)  # (B, 224 + pool_features, H, W)


class InceptionV3B(nn.Module):
    """Grid reduction 35x35 -> 17x17 (Fig. 10; Mixed_6a): 3x3/2 (384); 1x1 (64) -> 3x3 (96) -> 3x3/2 (96);
    3x3/2 max pool; the stride-2 layers unpadded. ``in_channels + 480`` channels.

    Example::

        >>> InceptionV3B(288)(torch.zeros(1, 288, 35, 35)).shape
        torch.Size([1, 768, 17, 17])
    """

    def __init__(self, in_channels: int, norm_layer: ModuleFactory | None = nn.BatchNorm2d,
                 padding: str = "same", width_mult: float = 1.0) -> None:
        super().__init__()
        w = widths(width_mult)
        self.branch3x3 = ConvNormAct(in_channels, w(384), 3, 2, padding="valid", norm_layer=norm_layer)
        self.branch3x3dbl_1 = ConvNormAct(in_channels, w(64), 1, norm_layer=norm_layer, padding=padding)
        self.branch3x3dbl_2 = ConvNormAct(w(64), w(96), 3, norm_layer=norm_layer, padding=padding)
        self.branch3x3dbl_3 = ConvNormAct(w(96), w(96), 3, 2, padding="valid", norm_layer=norm_layer)
        self.pool = nn.MaxPool2d(3, 2)
        self.in_channels, self.out_channels = in_channels, w(384) + w(96) + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        b3 = self.branch3x3(x)  # (B, 384, (H-3)/2+1, ...)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))  # (B, 96, (H-3)/2+1, ...)
        return torch.cat([b3, bd, self.pool(x)], dim=1)  # (B, 480 + in, (H-3)/2+1, (W-3)/2+1)


class InceptionV3C(nn.Module):
    """The 17x17 module (Fig. 6, n = 7; Mixed_6b-6e): 1x1 (192); 1x1 (c7) -> 1x7 -> 7x1 (192); 1x1 (c7)
    -> 7x1 -> 1x7 -> 7x1 -> 1x7 (192); 3x3 average pool -> 1x1 (192): 768 channels.

    Example::

        >>> InceptionV3C(768, channels_7x7=128)(torch.zeros(1, 768, 17, 17)).shape
        torch.Size([1, 768, 17, 17])
    """

    def __init__(self, in_channels: int, channels_7x7: int, norm_layer: ModuleFactory | None = nn.BatchNorm2d,
                 count_include_pad: bool = True, padding: str = "same", width_mult: float = 1.0) -> None:
        super().__init__()
        w = widths(width_mult)
        c7, c = w(positive_int("channels_7x7", channels_7x7)), w(192)
        cna = dict(norm_layer=norm_layer, padding=padding)
        self.branch1x1 = ConvNormAct(in_channels, c, 1, **cna)
        self.branch7x7_1 = ConvNormAct(in_channels, c7, 1, **cna)
        self.branch7x7_2 = ConvNormAct(c7, c7, (1, 7), **cna)
        self.branch7x7_3 = ConvNormAct(c7, c, (7, 1), **cna)
        self.branch7x7dbl_1 = ConvNormAct(in_channels, c7, 1, **cna)
        self.branch7x7dbl_2 = ConvNormAct(c7, c7, (7, 1), **cna)
        self.branch7x7dbl_3 = ConvNormAct(c7, c7, (1, 7), **cna)
        self.branch7x7dbl_4 = ConvNormAct(c7, c7, (7, 1), **cna)
        self.branch7x7dbl_5 = ConvNormAct(c7, c, (1, 7), **cna)
        self.pool = pool_3x3(count_include_pad)
        self.branch_pool = ConvNormAct(in_channels, c, 1, **cna)
        self.in_channels, self.out_channels = in_channels, 4 * c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        b1 = self.branch1x1(x)  # (B, 192, H, W)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))  # (B, 192, H, W)
        bd = self.branch7x7dbl_1(x)  # (B, c7, H, W)
        bd = self.branch7x7dbl_3(self.branch7x7dbl_2(bd))  # (B, c7, H, W)
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))  # (B, 192, H, W)
        bp = self.branch_pool(self.pool(x))  # (B, 192, H, W)
        return torch.cat([b1, b7, bd, bp], dim=1)  # (B, 768, H, W)


class InceptionV3D(nn.Module):
    """Grid reduction 17x17 -> 8x8 (Mixed_7a): 1x1 (192) -> 3x3/2 (320); 1x1 (192) -> 1x7 -> 7x1 -> 3x3/2
    (192); 3x3/2 max pool; the stride-2 layers unpadded. ``in_channels + 512`` channels.

    Example::

        >>> InceptionV3D(768)(torch.zeros(1, 768, 17, 17)).shape
        torch.Size([1, 1280, 8, 8])
    """

    def __init__(self, in_channels: int, norm_layer: ModuleFactory | None = nn.BatchNorm2d,
                 padding: str = "same", width_mult: float = 1.0) -> None:
        super().__init__()
        w = widths(width_mult)
        c = w(192)
        cna = dict(norm_layer=norm_layer, padding=padding)
        self.branch3x3_1 = ConvNormAct(in_channels, c, 1, **cna)
        self.branch3x3_2 = ConvNormAct(c, w(320), 3, 2, padding="valid", norm_layer=norm_layer)
        self.branch7x7x3_1 = ConvNormAct(in_channels, c, 1, **cna)
        self.branch7x7x3_2 = ConvNormAct(c, c, (1, 7), **cna)
        self.branch7x7x3_3 = ConvNormAct(c, c, (7, 1), **cna)
        self.branch7x7x3_4 = ConvNormAct(c, c, 3, 2, padding="valid", norm_layer=norm_layer)
        self.pool = nn.MaxPool2d(3, 2)
        self.in_channels, self.out_channels = in_channels, w(320) + c + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        b3 = self.branch3x3_2(self.branch3x3_1(x))  # (B, 320, (H-3)/2+1, ...)
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))  # (B, 192, H, W)
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(b7))  # (B, 192, (H-3)/2+1, ...)
        return torch.cat([b3, b7, self.pool(x)], dim=1)  # (B, 512 + in, (H-3)/2+1, (W-3)/2+1)


class InceptionV3E(nn.Module):
    """The 8x8 module with the expanded filter bank (Fig. 7; Mixed_7b/7c): 1x1 (320); 1x1 (384) -> [1x3,
    3x1] (2 x 384); 1x1 (448) -> 3x3 (384) -> [1x3, 3x1] (2 x 384); 3x3 average pool -> 1x1 (192): 2048
    channels.

    Example::

        >>> InceptionV3E(1280)(torch.zeros(1, 1280, 8, 8)).shape
        torch.Size([1, 2048, 8, 8])
    """

    def __init__(self, in_channels: int, norm_layer: ModuleFactory | None = nn.BatchNorm2d,
                 count_include_pad: bool = True, padding: str = "same", width_mult: float = 1.0) -> None:
        super().__init__()
        w = widths(width_mult)
        c = w(384)
        cna = dict(norm_layer=norm_layer, padding=padding)
        self.branch1x1 = ConvNormAct(in_channels, w(320), 1, **cna)
        self.branch3x3_1 = ConvNormAct(in_channels, c, 1, **cna)
        self.branch3x3_2a = ConvNormAct(c, c, (1, 3), **cna)
        self.branch3x3_2b = ConvNormAct(c, c, (3, 1), **cna)
        self.branch3x3dbl_1 = ConvNormAct(in_channels, w(448), 1, **cna)
        self.branch3x3dbl_2 = ConvNormAct(w(448), c, 3, **cna)
        self.branch3x3dbl_3a = ConvNormAct(c, c, (1, 3), **cna)
        self.branch3x3dbl_3b = ConvNormAct(c, c, (3, 1), **cna)
        self.pool = pool_3x3(count_include_pad)
        self.branch_pool = ConvNormAct(in_channels, w(192), 1, **cna)
        self.in_channels, self.out_channels = in_channels, w(320) + 4 * c + w(192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        b1 = self.branch1x1(x)  # (B, 320, H, W)
        b3 = self.branch3x3_1(x)  # (B, 384, H, W)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)  # (B, 768, H, W)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))  # (B, 384, H, W)
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], dim=1)  # (B, 768, H, W)
        bp = self.branch_pool(self.pool(x))  # (B, 192, H, W)
        return torch.cat([b1, b3, bd, bp], dim=1)  # (B, 2048, H, W)


class InceptionV3Aux(nn.Module):
    """Inception v3's auxiliary classifier on the last 17x17 map (Fig. 8): 5x5/3 average pool -> 1x1 (128)
    -> 5x5 (768, unpadded) -> global average pool -> ``fc`` (a linear layer; TensorFlow's is a 1x1 conv
    with a bias on the 1x1 map, the same thing). The paper's "BN-auxiliary" (Section 7) normalizes that
    last layer too; neither the released TensorFlow model nor torchvision's does, nor this one. Needs a
    map of at least 17x17 (299 px input): the unpadded 5x5 conv reads the pool's 5x5 output.

    Example::

        >>> InceptionV3Aux(768, 1000)(torch.zeros(2, 768, 17, 17)).shape
        torch.Size([2, 1000])
    """

    def __init__(self, in_channels: int, num_classes: int, norm_layer: ModuleFactory | None = nn.BatchNorm2d,
                 width_mult: float = 1.0) -> None:
        super().__init__()
        positive_int("num_classes", num_classes)
        w = widths(width_mult)
        self.pool = nn.AvgPool2d(5, 3)
        self.conv0 = ConvNormAct(in_channels, w(128), 1, norm_layer=norm_layer)
        self.conv1 = ConvNormAct(w(128), w(768), 5, padding="valid", norm_layer=norm_layer)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w(768), num_classes)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, 768, 17, 17) at 299 px
        x = self.conv0(self.pool(x))  # (B, 128, 5, 5)
        x = self.conv1(x)  # (B, 768, 1, 1)
        return self.fc(self.global_pool(x).flatten(1))  # (B, num_classes)


class GoogLeNetAux(nn.Module):
    """GoogLeNet's auxiliary classifier (Szegedy et al. 2015, Section 5), on the outputs of (4a) and (4d):
    5x5/3 average pool (14x14 -> 4x4) -> 1x1 conv (128) + ReLU -> ``fc1`` (1024) + ReLU -> dropout (70%)
    -> ``fc2``. ``adaptive_pool=True`` pools to 4x4 whatever the map, as torchvision does (the same 4x4
    at 224 px, other averages at other sizes); the paper's pool needs a map of at least 5x5.

    Example::

        >>> GoogLeNetAux(512, 1000)(torch.zeros(1, 512, 14, 14)).shape
        torch.Size([1, 1000])
    """

    def __init__(self, in_channels: int, num_classes: int, norm_layer: ModuleFactory | None = None,
                 adaptive_pool: bool = False, drop_rate: float = 0.7) -> None:
        super().__init__()
        positive_int("num_classes", num_classes)
        self.pool = nn.AdaptiveAvgPool2d(4) if boolean("adaptive_pool", adaptive_pool) else nn.AvgPool2d(5, 3)
        self.conv = ConvNormAct(in_channels, 128, 1, norm_layer=norm_layer)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(1024, num_classes)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, C, 14, 14) at 224 px
        x = self.conv(self.pool(x)).flatten(1)  # (B, 128 * 4 * 4)
        x = self.dropout(self.act(self.fc1(x)))  # (B, 1024)
        return self.fc2(x)  # (B, num_classes)
