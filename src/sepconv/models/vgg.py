"""VGG16 (Simonyan & Zisserman 2015, *Very Deep Convolutional Networks*, Table 1, column D).

The standard-convolution baseline the separable networks are measured against: thirteen 3x3
convs with bias and ReLU in five stages, each ended by a 2x2 max-pool, then three fully connected
layers (138,357,544 parameters with the 1000-class head; the paper's Table 2 gives 138M). The VGG
paper prints no mult-add count; MobileNets (Howard et al. 2017) Table 8 gives VGG 16 15,300M
mult-adds and 138M parameters, against 15,470,264,320 MACs here (Conv2d + Linear at 224 px).

``groups=g`` makes every conv after the first a Deep Roots root module (Ioannou et al. 2017, arXiv
1605.06489, Section 3 and Fig. 4, who build root variants of VGG-11 the same way): the 3x3 conv in
``g`` filter groups, then a 1x1 conv mixing them (:mod:`sepconv.models.roots`); ``groups=1``, the
default, is the paper's VGG16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from ..layers._input import checked
from ._base import Backbone, Body, Classifier, classifier_layer, classifier_or_backbone, first_conv
from .registry import PaperFigures, register_model
from .roots import check_groups, conv_or_root

PAPER = "Simonyan & Zisserman 2015, VGG, Table 1 (D)"


@dataclass(frozen=True)
class Stage:
    """A column-D stage: ``convs`` 3x3 convs of ``out`` channels, then a 2x2 max-pool."""

    out: int
    convs: int


# Table 1, configuration D.
VGG16 = [Stage(out=64, convs=2), Stage(out=128, convs=2), Stage(out=256, convs=3),
         Stage(out=512, convs=3), Stage(out=512, convs=3)]
HIDDEN = 4096
POOLED = 7


def vgg_body(table: Sequence[Stage], in_chans: int, groups: int = 1) -> Body:
    """Table 1's conv stages: the first conv is the stem, each stage (the rest of its convs, then a
    2x2 max-pool) a block; no norm, so every conv has a bias. ``groups > 1``: every conv after the
    stem is a Deep Roots root module (:func:`~sepconv.models.roots.conv_or_root`)."""
    stem = first_conv(in_chans, table[0].out, stride=1, norm_layer=None)
    layers = [[(prev.out if j == 0 else stage.out, stage.out) for j in range(1 if i == 0 else 0, stage.convs)]
              for i, (prev, stage) in enumerate(zip([table[0], *table], table))]
    check_groups(groups, [pair for stage in layers for pair in stage])
    stages = [nn.Sequential(*[conv_or_root(cin, cout, 3, groups=groups, norm_layer=None) for cin, cout in stage],
                            nn.MaxPool2d(2, 2)) for stage in layers]
    return Body(stem, stages, [1] + [2] * len(table), [table[0].out] + [stage.out for stage in table])


class VGG(Classifier):
    """VGG (no batch norm, as in the paper); the stem is the first conv.

    Example::

        >>> VGG(VGG16, num_classes=10)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        table: Sequence[Stage],
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        groups: int = 1,
    ) -> None:
        body = vgg_body(table, in_chans, groups)
        super().__init__(body, num_classes, drop_rate)
        self.num_features = HIDDEN
        self.global_pool = nn.AdaptiveAvgPool2d(POOLED)
        self.fc1 = nn.Linear(body.width * POOLED * POOLED, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, HIDDEN)
        self.act = nn.ReLU()
        self.head_drop = nn.Dropout(self.drop_rate)
        self.classifier = classifier_layer(HIDDEN, num_classes)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 64, H, W)
        return self.blocks(x)  # (B, 512, H/32, W/32)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x).flatten(1)  # (B, 512*7*7)
        x = self.head_drop(self.act(self.fc1(x)))  # (B, 4096)
        x = self.head_drop(self.act(self.fc2(x)))  # (B, 4096)
        return x if pre_logits else self.classifier(x)  # (B, num_classes)


class VGGFeatures(Backbone):
    """VGG's conv stages (Table 1) as a backbone: the map before the first pool (stride 1), then
    each stage's pooled map (strides 2 to 32).

    Example::

        >>> [f.stride for f in VGGFeatures(VGG16).feature_info]
        [1, 2, 4, 8, 16, 32]
    """

    def __init__(self, table: Sequence[Stage], in_chans: int = 3, groups: int = 1,
                 out_indices: Sequence[int] | None = None) -> None:
        super().__init__(vgg_body(table, in_chans, groups), out_indices)


@register_model("vgg16", paper=PAPER, figures=[
    PaperFigures("Simonyan & Zisserman 2015, VGG, Table 2 (params); Howard et al. 2017, MobileNets, Table 8 (MACs)",
                 138e6, 15300e6),
])
def vgg16(features_only: bool = False, out_indices: Sequence[int] | None = None, **kwargs: Any) -> VGG | VGGFeatures:
    """VGG16 (configuration D; :class:`VGGFeatures` with ``features_only``); ``groups=g``: Deep Roots'
    root-g variant."""
    return classifier_or_backbone(partial(VGG, VGG16), partial(VGGFeatures, VGG16), features_only, out_indices, kwargs)
