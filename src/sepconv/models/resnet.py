"""ResNet (He et al. 2016, *Deep Residual Learning for Image Recognition*, Table 1): every column of the
table as data, and ResNet-18, -50 and -152 registered (``ResNet(RESNET34, bottleneck=False)`` and
``ResNet(RESNET101, bottleneck=True)`` build the other two).

Each column of Table 1 is a list of stages (conv2_x ... conv5_x): how many residual blocks, the width of
their 3x3 convs, the stride of the first. ResNet-18/34 stack basic blocks (two 3x3 convs), ResNet-50/101/152
bottlenecks (1x1 reduce, 3x3, 1x1 expand by 4); shortcuts are identities, or projections where the shape
changes (option B). Every conv is followed by BatchNorm and has no bias; the stem is a 7x7/2 conv and a
3x3/2 max-pool; the head a global average pool and the classifier.

``variant`` picks between the paper's network and torchvision's (:data:`VARIANTS`), which have the same
parameters but not the same MACs:

- ``"paper"``: as the authors' released Caffe models (github.com/KaimingHe/deep-residual-networks): a
  bottleneck's stride is on its first 1x1 conv ("ResNet v1"), and the stem's max-pool is Caffe's, unpadded
  and rounding up (``ceil_mode``; the same 56x56 map at 224 px).
- ``"torchvision"``: ``torchvision.models.resnet*`` ("v1.5", after Goyal et al. 2017): the stride is on the
  3x3 conv, which then runs at the input's resolution (ResNet-50: 4.09G MACs against 3.86G), and the
  max-pool pads one pixel. ResNet-18/34 have no 1x1 conv to stride, so only the pool differs.

Table 1 prints FLOPs, which the paper defines as multiply-adds: 1.8, 3.6, 3.8, 7.6 and 11.3 x 10^9; it
prints no parameter count for the ImageNet models. Counts here (1000 classes, 224 px, Conv2d + Linear MACs):
ResNet-18 11,689,512 parameters and 1,814,073,344 MACs in both variants; ResNet-50 25,557,032 and
3,857,973,248 ("paper", as Keras' ResNet50 computes) or 4,089,184,256 ("torchvision"); ResNet-152
60,192,808 and 11,282,415,616 or 11,513,626,624; the parameters and the torchvision MACs are torchvision's
own. Weights start as torchvision's ResNets do (Kaiming fan-out convs, BatchNorm 1 and 0) except the
classifier, which gets the zoo's normal(0, 0.01) where torchvision keeps PyTorch's default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from .._util.checks import one_of, positive_int
from ..layers import ConvNormAct, make_divisible
from ..layers._input import checked
from ..layers.residual import BasicBlock, Bottleneck
from ._base import Backbone, Body, Classifier, batch_norm, check_width, classifier_or_backbone
from .registry import PaperFigures, register_model

PAPER = "He et al. 2016, Deep Residual Learning, Table 1"
VARIANTS = ("paper", "torchvision")


@dataclass(frozen=True)
class Stage:
    """One conv{n}_x row of Table 1: ``n`` residual blocks whose 3x3 convs are ``width`` wide, the first
    with stride ``s`` (conv2_x follows the stem's max-pool, so its stride is 1)."""

    name: str  # Table 1's layer name
    width: int  # the 3x3 convs' output channels (a bottleneck expands by 4 after them)
    n: int  # blocks
    s: int  # stride of the first block


def stages(n2: int, n3: int, n4: int, n5: int) -> list[Stage]:
    """Table 1's four stages with the repeats of one of its columns."""
    return [Stage("conv2_x", 64, n2, 1), Stage("conv3_x", 128, n3, 2), Stage("conv4_x", 256, n4, 2),
            Stage("conv5_x", 512, n5, 2)]


# Table 1, one column each (18 and 34: basic blocks; 50, 101, 152: bottlenecks).
RESNET18 = stages(2, 2, 2, 2)
RESNET34 = stages(3, 4, 6, 3)
RESNET50 = stages(3, 4, 6, 3)
RESNET101 = stages(3, 4, 23, 3)
RESNET152 = stages(3, 8, 36, 3)
STEM = 64
EXPANSION = 4  # a bottleneck's output is 4x its 3x3 width


def resnet_body(table: Sequence[Stage], bottleneck: bool, variant: str, width_mult: float, in_chans: int,
                bn_eps: float, padding: str) -> Body:
    """Table 1 up to conv5_x: the 7x7/2 conv (the stem), the 3x3/2 max-pool (``blocks.0``), then one block
    per residual block of each stage; every width times ``width_mult``, rounded to a multiple of 8."""
    paper = one_of("variant", variant, VARIANTS) == "paper"
    alpha = check_width(width_mult, narrowest=STEM)
    norm = batch_norm(bn_eps)
    positive_int("in_chans", in_chans)
    width = make_divisible(STEM * alpha)
    stem = ConvNormAct(in_chans, width, 7, 2, padding=padding, norm_layer=norm)  # conv1
    pool = nn.MaxPool2d(3, 2, ceil_mode=True) if paper else nn.MaxPool2d(3, 2, padding=1)
    blocks: list[nn.Module] = [pool]
    strides, channels = [2, 2], [width, width]
    for stage in table:
        mid = make_divisible(stage.width * alpha)
        out = mid * EXPANSION if bottleneck else mid
        for i in range(stage.n):
            stride = stage.s if i == 0 else 1
            if bottleneck:
                blocks.append(Bottleneck(width, out, mid, stride, stride_in_1x1=paper, norm_layer=norm,
                                         padding=padding))
            else:
                blocks.append(BasicBlock(width, out, stride, norm_layer=norm, padding=padding))
            width = out
            strides.append(stride)
            channels.append(out)
    return Body(stem, blocks, strides, channels)


class ResNet(Classifier):
    """A ResNet from a column of Table 1 (:class:`Stage` rows) and its block kind.

    ``variant``: "paper" (stride on the bottleneck's 1x1, Caffe's max-pool) or "torchvision" (stride on
    the 3x3; module docstring). ``width_mult`` scales every width (rounded to a multiple of 8; 1.0 is the
    paper's). ``padding`` ("same" or "tf_same") is the rule of the 7x7 and 3x3 convs.

    Example::

        >>> ResNet(RESNET50, bottleneck=True, num_classes=10)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        table: Sequence[Stage],
        bottleneck: bool,
        variant: str = "paper",
        width_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        bn_eps: float = 1e-5,
        padding: str = "same",
    ) -> None:
        body = resnet_body(table, bottleneck, variant, width_mult, in_chans, bn_eps, padding)
        super().__init__(body, num_classes, drop_rate)
        self.variant = variant
        self.init_head(body.width)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 64, H/2, W/2)
        return self.blocks(x)  # (B, 2048 | 512, H/32, W/32)


class ResNetFeatures(Backbone):
    """A ResNet's stem and stages (Table 1) as a backbone: the maps at strides 2 (conv1) to 32 (conv5_x).

    Example::

        >>> [f.channels for f in ResNetFeatures(RESNET50, bottleneck=True).feature_info]
        [64, 256, 512, 1024, 2048]
    """

    def __init__(self, table: Sequence[Stage], bottleneck: bool, variant: str = "paper", width_mult: float = 1.0,
                 in_chans: int = 3, bn_eps: float = 1e-5, padding: str = "same",
                 out_indices: Sequence[int] | None = None) -> None:
        super().__init__(resnet_body(table, bottleneck, variant, width_mult, in_chans, bn_eps, padding), out_indices)
        self.variant = variant


def _builder(table: Sequence[Stage], bottleneck: bool, features_only: bool, out_indices: Sequence[int] | None,
             kwargs: dict[str, Any]) -> ResNet | ResNetFeatures:
    return classifier_or_backbone(partial(ResNet, table, bottleneck), partial(ResNetFeatures, table, bottleneck),
                                  features_only, out_indices, kwargs)


TABLE_1 = "He et al. 2016, ResNet, Table 1 (FLOPs = multiply-adds)"


@register_model("resnet18", paper=PAPER, figures=[PaperFigures(TABLE_1, None, 1.8e9)])
def resnet18(features_only: bool = False, out_indices: Sequence[int] | None = None,
             **kwargs: Any) -> ResNet | ResNetFeatures:
    """ResNet-18 (Table 1, basic blocks; :class:`ResNetFeatures` with ``features_only``)."""
    return _builder(RESNET18, False, features_only, out_indices, kwargs)


@register_model("resnet50", paper=PAPER, figures=[PaperFigures(TABLE_1, None, 3.8e9)])
def resnet50(features_only: bool = False, out_indices: Sequence[int] | None = None,
             **kwargs: Any) -> ResNet | ResNetFeatures:
    """ResNet-50 (Table 1, bottlenecks; :class:`ResNetFeatures` with ``features_only``)."""
    return _builder(RESNET50, True, features_only, out_indices, kwargs)


@register_model("resnet152", paper=PAPER, figures=[PaperFigures(TABLE_1, None, 11.3e9)])
def resnet152(features_only: bool = False, out_indices: Sequence[int] | None = None,
              **kwargs: Any) -> ResNet | ResNetFeatures:
    """ResNet-152 (Table 1, bottlenecks; :class:`ResNetFeatures` with ``features_only``)."""
    return _builder(RESNET152, True, features_only, out_indices, kwargs)
