"""MobileNetV3-Large and -Small (Howard et al. 2019, *Searching for MobileNetV3*, Tables 1 and 2).

Each row is (k, exp, out, se, nl, s): kernel, expansion width, output width, squeeze-excite, the
non-linearity (RE = ReLU, HS = hard-swish) and stride. All widths, the expansions included, are
scaled by the width multiplier and rounded to multiples of 8; the squeeze width is a quarter of
the expansion, rounded likewise; the gate is the hard sigmoid (Section 5.3). The head is the
paper's efficient last stage (Fig. 5): 1x1 conv to 6x the last width, pool, a 1x1 (here linear)
layer to 1280 (1024 for Small) with hard-swish and no norm, then the classifier.

Fractional widths follow one of two conventions (``rounding``): "timm" (the default; also
TensorFlow's reference and Keras) expands each block by the ratio exp/in of the table applied to
the already-rounded input width, and keeps the 1280/1024 head for widths up to 1; "torchvision"
scales every expansion width directly and scales the head too. At width 1.0 the two agree; at 0.75
only "timm" gives Table 3's 155M (Large) and 44M (Small) MACs.

``minimalistic=True`` is the reference code's variant without SE, hard-swish and 5x5 kernels
(every non-linearity ReLU, every depthwise kernel 3x3); the paper prints no figures for it.
Differences from the paper's figures: 5.48M/217M (Large) and 2.54M/57M (Small) here and in every
implementation, against the paper's 5.4M/219M and 2.5M/56M (Table 3 of the final version; arXiv
v1 printed Small 1.0 as 66M/2.9M and Small 0.75 as 2.4M).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import torch
from torch import nn

from .._util.checks import boolean, one_of, positive_int
from ..layers import ConvNormAct, InvertedResidual, SqueezeExcite, make_divisible
from ..layers._input import checked
from ._base import (
    Backbone,
    Body,
    Classifier,
    batch_norm,
    check_width,
    classifier_layer,
    classifier_or_backbone,
    first_conv,
)
from .registry import PaperFigures, register_model

PAPER = "Howard et al. 2019, Searching for MobileNetV3, Tables 1-2"


@dataclass(frozen=True)
class Bneck:
    """One row of Table 1/2: an inverted residual ("bneck")."""

    k: int  # depthwise kernel size
    exp: int  # expansion width
    out: int  # output width
    se: bool  # squeeze-and-excite
    nl: str  # "RE" (ReLU) or "HS" (hard-swish)
    s: int  # stride


# Table 1.
MOBILENET_V3_LARGE = [
    Bneck(k=3, exp=16, out=16, se=False, nl="RE", s=1),
    Bneck(k=3, exp=64, out=24, se=False, nl="RE", s=2),
    Bneck(k=3, exp=72, out=24, se=False, nl="RE", s=1),
    Bneck(k=5, exp=72, out=40, se=True, nl="RE", s=2),
    Bneck(k=5, exp=120, out=40, se=True, nl="RE", s=1),
    Bneck(k=5, exp=120, out=40, se=True, nl="RE", s=1),
    Bneck(k=3, exp=240, out=80, se=False, nl="HS", s=2),
    Bneck(k=3, exp=200, out=80, se=False, nl="HS", s=1),
    Bneck(k=3, exp=184, out=80, se=False, nl="HS", s=1),
    Bneck(k=3, exp=184, out=80, se=False, nl="HS", s=1),
    Bneck(k=3, exp=480, out=112, se=True, nl="HS", s=1),
    Bneck(k=3, exp=672, out=112, se=True, nl="HS", s=1),
    Bneck(k=5, exp=672, out=160, se=True, nl="HS", s=2),
    Bneck(k=5, exp=960, out=160, se=True, nl="HS", s=1),
    Bneck(k=5, exp=960, out=160, se=True, nl="HS", s=1),
]

# Table 2.
MOBILENET_V3_SMALL = [
    Bneck(k=3, exp=16, out=16, se=True, nl="RE", s=2),
    Bneck(k=3, exp=72, out=24, se=False, nl="RE", s=2),
    Bneck(k=3, exp=88, out=24, se=False, nl="RE", s=1),
    Bneck(k=5, exp=96, out=40, se=True, nl="HS", s=2),
    Bneck(k=5, exp=240, out=40, se=True, nl="HS", s=1),
    Bneck(k=5, exp=240, out=40, se=True, nl="HS", s=1),
    Bneck(k=5, exp=120, out=48, se=True, nl="HS", s=1),
    Bneck(k=5, exp=144, out=48, se=True, nl="HS", s=1),
    Bneck(k=5, exp=288, out=96, se=True, nl="HS", s=2),
    Bneck(k=5, exp=576, out=96, se=True, nl="HS", s=1),
    Bneck(k=5, exp=576, out=96, se=True, nl="HS", s=1),
]
STEM = 16
NONLINEARITY = {"RE": nn.ReLU, "HS": nn.Hardswish}


def hard_swish(minimalistic: bool) -> type[nn.Module]:
    """The stem's and the head's non-linearity: hard-swish, or ReLU in the minimalistic variant."""
    return nn.ReLU if minimalistic else nn.Hardswish


def mobilenet_v3_body(table: Sequence[Bneck], width_mult: float, minimalistic: bool, rounding: str, in_chans: int,
                      bn_eps: float, padding: str) -> Body:
    """Table 1 or 2 up to its last bneck: the stride-2 stem and one inverted residual per row, widths
    scaled and rounded by the ``rounding`` convention (module docstring)."""
    alpha = check_width(width_mult, narrowest=min(STEM, *(row.out for row in table)))
    by_ratio = one_of("rounding", rounding, ("timm", "torchvision")) == "timm"
    if boolean("minimalistic", minimalistic):
        table = [replace(row, k=3, se=False, nl="RE") for row in table]
    norm = batch_norm(bn_eps)

    width = make_divisible(STEM * alpha)
    stem = first_conv(in_chans, width, padding=padding, norm_layer=norm, act_layer=hard_swish(minimalistic))
    blocks: list[nn.Module] = []
    channels = [width]
    prev = STEM  # the table's (unscaled) input width of the current row
    for row in table:
        out = make_divisible(row.out * alpha)
        mid = make_divisible(width * row.exp / prev) if by_ratio else make_divisible(row.exp * alpha)
        prev = row.out
        se = partial(SqueezeExcite, reduction=4, divisor=8, gate=nn.Hardsigmoid) if row.se else None
        blocks.append(InvertedResidual(width, out, mid, row.k, row.s, act_layer=NONLINEARITY[row.nl],
                                       se_layer=se, norm_layer=norm, padding=padding))
        width = out
        channels.append(out)
    return Body(stem, blocks, [2] + [row.s for row in table], channels)


class MobileNetV3(Classifier):
    """MobileNetV3 from a table of :class:`Bneck` rows and the width of its last hidden layer.

    ``head_channels`` is the 1280/1024 hidden layer before the classifier. ``rounding`` picks
    the width convention for fractional ``width_mult`` (see the module docstring).

    Example::

        >>> MobileNetV3(MOBILENET_V3_SMALL, 1024)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        table: Sequence[Bneck],
        head_channels: int,
        width_mult: float = 1.0,
        minimalistic: bool = False,
        rounding: str = "timm",
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.2,
        bn_eps: float = 1e-3,
        padding: str = "same",
    ) -> None:
        positive_int("head_channels", head_channels)
        body = mobilenet_v3_body(table, width_mult, minimalistic, rounding, in_chans, bn_eps, padding)
        super().__init__(body, num_classes, drop_rate)
        act = hard_swish(minimalistic)
        last_conv = make_divisible(6 * body.width)
        scale_head = width_mult > 1 or rounding == "torchvision"
        self.num_features = make_divisible(head_channels * width_mult) if scale_head else head_channels
        self.head_conv = ConvNormAct(body.width, last_conv, 1, norm_layer=batch_norm(bn_eps), act_layer=act)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_fc = nn.Linear(last_conv, self.num_features)
        self.head_act = act()
        self.head_drop = nn.Dropout(self.drop_rate)
        self.classifier = classifier_layer(self.num_features, num_classes)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 16a, H/2, W/2)
        x = self.blocks(x)  # (B, 160a | 96a, H/32, W/32)
        return self.head_conv(x)  # (B, 960a | 576a, H/32, W/32)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x).flatten(1)  # (B, 960a | 576a)
        x = self.head_act(self.head_fc(x))  # (B, 1280 | 1024)
        x = self.head_drop(x)
        return x if pre_logits else self.classifier(x)  # (B, num_classes)


class MobileNetV3Features(Backbone):
    """MobileNetV3's stem and bnecks (Table 1 or 2) as a backbone: the maps at strides 2 to 32.

    Example::

        >>> b = MobileNetV3Features(MOBILENET_V3_LARGE, out_indices=(2, 3, 4))
        >>> [f.shape[1] for f in b(torch.zeros(1, 3, 224, 224))], [f.stride for f in b.feature_info]
        ([40, 112, 160], [8, 16, 32])
    """

    def __init__(
        self,
        table: Sequence[Bneck],
        width_mult: float = 1.0,
        minimalistic: bool = False,
        rounding: str = "timm",
        in_chans: int = 3,
        bn_eps: float = 1e-3,
        padding: str = "same",
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__(mobilenet_v3_body(table, width_mult, minimalistic, rounding, in_chans, bn_eps, padding),
                         out_indices)


TABLE_3 = "Howard et al. 2019, MobileNetV3, Table 3"


@register_model("mobilenet_v3_large", paper=PAPER, figures=[
    PaperFigures(TABLE_3, 5.4e6, 219e6),
    PaperFigures(TABLE_3, 4.0e6, 155e6, {"width_mult": 0.75}),
])
def mobilenet_v3_large(features_only: bool = False, out_indices: Sequence[int] | None = None,
                       **kwargs: Any) -> MobileNetV3 | MobileNetV3Features:
    """MobileNetV3-Large (Table 1; :class:`MobileNetV3Features` with ``features_only``); Table 3
    gives 0.75: 155M MACs, 4.0M params."""
    return classifier_or_backbone(partial(MobileNetV3, MOBILENET_V3_LARGE, 1280),
                                  partial(MobileNetV3Features, MOBILENET_V3_LARGE), features_only, out_indices, kwargs)


@register_model("mobilenet_v3_small", paper=PAPER, figures=[
    PaperFigures(TABLE_3, 2.5e6, 56e6),
    PaperFigures(TABLE_3, 2.0e6, 44e6, {"width_mult": 0.75}),
])
def mobilenet_v3_small(features_only: bool = False, out_indices: Sequence[int] | None = None,
                       **kwargs: Any) -> MobileNetV3 | MobileNetV3Features:
    """MobileNetV3-Small (Table 2; :class:`MobileNetV3Features` with ``features_only``); Table 3
    gives 0.75: 44M MACs, 2.0M params."""
    return classifier_or_backbone(partial(MobileNetV3, MOBILENET_V3_SMALL, 1024),
                                  partial(MobileNetV3Features, MOBILENET_V3_SMALL), features_only, out_indices, kwargs)
