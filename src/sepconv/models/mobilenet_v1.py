"""MobileNetV1 (Howard et al. 2017, *MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications*), and its standard-convolution twin ("Conv MobileNet", Table 4).

Table 1 lists the body; its second-to-last depthwise layer is printed "Conv dw / s2" on a 7x7
input, but every reference implementation (TensorFlow slim, Keras, timm) and the paper's own
7x7x1024 output use stride 1 there, as here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .._util.checks import one_of
from ..layers import ConvNormAct, DepthwiseSeparableBlock
from ._base import ConvNet, activation, batch_norm, check_common, check_width, cumulative, drop_head
from .registry import PaperFigures, register_model

PAPER = "Howard et al. 2017, MobileNets, Table 1"


@dataclass(frozen=True)
class DWConv:
    """One row of Table 1 after the stem: a depthwise-separable layer (dw 3x3, then pw 1x1)."""

    out: int  # pointwise filters (before the width multiplier)
    s: int  # stride of the depthwise conv


# Table 1 (stride of the last dw corrected to 1, see the module docstring).
MOBILENET_V1 = [
    DWConv(out=64, s=1),
    DWConv(out=128, s=2),
    DWConv(out=128, s=1),
    DWConv(out=256, s=2),
    DWConv(out=256, s=1),
    DWConv(out=512, s=2),
    *[DWConv(out=512, s=1)] * 5,
    DWConv(out=1024, s=2),
    DWConv(out=1024, s=1),
]
STEM = 32


class MobileNetV1(ConvNet):
    """MobileNetV1 with width multiplier alpha and any input resolution (rho = size / 224).

    ``conv="standard"`` replaces every depthwise-separable layer by a full 3x3 conv of the same
    input/output widths and stride: the paper's "Conv MobileNet" of Table 4 (29.3M params,
    4866M mult-adds against 4.2M / 569M). ``act="relu6"`` and ``padding="tf_same"`` with
    ``bn_eps=1e-3`` match Keras' ``MobileNet``.

    Example::

        >>> MobileNetV1(width_mult=0.5)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        conv: str = "separable",
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        act: str = "relu",
        bn_eps: float = 1e-5,
        padding: str = "same",
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_common(num_classes, in_chans, drop_rate)
        alpha = check_width(width_mult, narrowest=STEM)
        one_of("conv", conv, ("separable", "standard"))
        norm, act_layer = batch_norm(bn_eps), activation(act)
        cna = dict(norm_layer=norm, act_layer=act_layer, padding=padding)

        width = int(STEM * alpha)
        self.stem = ConvNormAct(in_chans, width, 3, stride=2, **cna)
        blocks, strides, channels = [], [2], [width]
        for row in MOBILENET_V1:
            out = int(row.out * alpha)
            if conv == "separable":
                blocks.append(DepthwiseSeparableBlock(width, out, row.s, **cna))
            else:
                blocks.append(ConvNormAct(width, out, 3, row.s, **cna))
            width = out
            strides.append(row.s)
            channels.append(out)
        self.blocks = nn.Sequential(*blocks)
        self.init_features(cumulative(strides), channels, features_only, out_indices)
        self.init_head(width, num_classes, drop_rate)
        if features_only:
            drop_head(self, "global_pool", "head_drop", "classifier")

    def _forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 32a, H/2, W/2)
        return self.blocks(x)  # (B, 1024a, H/32, W/32)


MOBILENETS = "Howard et al. 2017, MobileNets"


@register_model("mobilenet_v1", paper=PAPER, figures=[
    PaperFigures(f"{MOBILENETS}, Tables 4 and 6 (1.0 MobileNet-224)", 4.2e6, 569e6),
    PaperFigures(f"{MOBILENETS}, Table 4 (Conv MobileNet)", 29.3e6, 4866e6, {"conv": "standard"}),
    PaperFigures(f"{MOBILENETS}, Table 6 (width multiplier)", 2.6e6, 325e6, {"width_mult": 0.75}),
    PaperFigures(f"{MOBILENETS}, Table 6 (width multiplier)", 1.3e6, 149e6, {"width_mult": 0.5}),
    PaperFigures(f"{MOBILENETS}, Table 6 (width multiplier)", 0.5e6, 41e6, {"width_mult": 0.25}),
])
def mobilenet_v1(**kwargs) -> MobileNetV1:
    """MobileNetV1; ``width_mult`` 1.0/0.75/0.5/0.25 gives Table 6's rows (569/325/149/41M MACs)."""
    return MobileNetV1(**kwargs)
