"""MobileNetV1 (Howard et al. 2017, *MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications*), and its standard-convolution twin ("Conv MobileNet", Table 4).

Table 1 lists the body; its second-to-last depthwise layer is printed "Conv dw / s2" on a 7x7
input, but every reference implementation (TensorFlow slim, Keras, timm) and the paper's own
7x7x1024 output use stride 1 there, as here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .._util.checks import one_of
from ..layers import ConvNormAct, DepthwiseSeparableBlock
from ..layers._input import checked
from ._base import (
    Backbone,
    Body,
    Classifier,
    activation,
    batch_norm,
    check_width,
    classifier_or_backbone,
    first_conv,
)
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


def mobilenet_v1_body(width_mult: float, conv: str, in_chans: int, act: str, bn_eps: float, padding: str) -> Body:
    """Table 1: the stride-2 stem, then one depthwise-separable layer per row, every width times
    ``width_mult``; ``conv="standard"`` makes each a full 3x3 conv of the same widths and stride
    (Table 4's Conv MobileNet)."""
    alpha = check_width(width_mult, narrowest=STEM)
    one_of("conv", conv, ("separable", "standard"))
    cna: dict[str, Any] = {"norm_layer": batch_norm(bn_eps), "act_layer": activation(act), "padding": padding}
    width = int(STEM * alpha)
    stem, blocks, channels = first_conv(in_chans, width, **cna), [], [width]
    for row in MOBILENET_V1:
        out = int(row.out * alpha)
        if conv == "separable":
            blocks.append(DepthwiseSeparableBlock(width, out, row.s, **cna))
        else:
            blocks.append(ConvNormAct(width, out, 3, row.s, **cna))
        width = out
        channels.append(out)
    return Body(stem, blocks, [2] + [row.s for row in MOBILENET_V1], channels)


class MobileNetV1(Classifier):
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
    ) -> None:
        body = mobilenet_v1_body(width_mult, conv, in_chans, act, bn_eps, padding)
        super().__init__(body, num_classes, drop_rate)
        self.init_head(body.width)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 32a, H/2, W/2)
        return self.blocks(x)  # (B, 1024a, H/32, W/32)


class MobileNetV1Features(Backbone):
    """MobileNetV1's stem and layers (Table 1) as a backbone: the maps at strides 2 to 32.

    Example::

        >>> [f.shape[1] for f in MobileNetV1Features(width_mult=0.5)(torch.zeros(1, 3, 224, 224))]
        [32, 64, 128, 256, 512]
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        conv: str = "separable",
        in_chans: int = 3,
        act: str = "relu",
        bn_eps: float = 1e-5,
        padding: str = "same",
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__(mobilenet_v1_body(width_mult, conv, in_chans, act, bn_eps, padding), out_indices)


MOBILENETS = "Howard et al. 2017, MobileNets"


@register_model("mobilenet_v1", paper=PAPER, figures=[
    PaperFigures(f"{MOBILENETS}, Tables 4 and 6 (1.0 MobileNet-224)", 4.2e6, 569e6),
    PaperFigures(f"{MOBILENETS}, Table 4 (Conv MobileNet)", 29.3e6, 4866e6, {"conv": "standard"}),
    PaperFigures(f"{MOBILENETS}, Table 6 (width multiplier)", 2.6e6, 325e6, {"width_mult": 0.75}),
    PaperFigures(f"{MOBILENETS}, Table 6 (width multiplier)", 1.3e6, 149e6, {"width_mult": 0.5}),
    PaperFigures(f"{MOBILENETS}, Table 6 (width multiplier)", 0.5e6, 41e6, {"width_mult": 0.25}),
])
def mobilenet_v1(features_only: bool = False, out_indices: Sequence[int] | None = None, **kwargs: Any) -> MobileNetV1 | MobileNetV1Features:
    """MobileNetV1 (:class:`MobileNetV1Features` with ``features_only``); ``width_mult``
    1.0/0.75/0.5/0.25 gives Table 6's rows (569/325/149/41M MACs)."""
    return classifier_or_backbone(MobileNetV1, MobileNetV1Features, features_only, out_indices, kwargs)
