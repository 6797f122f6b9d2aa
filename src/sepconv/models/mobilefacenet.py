"""MobileFaceNet (Chen et al. 2018, *MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
Verification on Mobile Devices*, Table 1).

A MobileNetV2-style body for 112x112 faces whose head replaces global average pooling by a
global depthwise convolution (GDC, Section 2.2): a 7x7 depthwise kernel over the 7x7 map, so that
the corners of a face weigh differently from its centre, followed by a linear 1x1 conv to the
128-d embedding. PReLU everywhere (one slope per layer here).

The paper gives 0.99M parameters and 221M MACs (Table 2); this table, with one PReLU slope per
layer and the 128-d embedding as output (no classifier), gives 995,617 parameters and 220,965,376
MACs at 112 px: 0.6% more parameters than "0.99M" read literally, 0.02% fewer MACs than "221M".
(976,000 of the parameters are conv weights; the rest are BatchNorm and PReLU.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._util.checks import positive_int
from ..layers import ConvNormAct, GlobalDepthwiseConv2d
from ..layers._input import checked
from ._base import (
    HEAD_ARGUMENTS,
    Backbone,
    Body,
    Classifier,
    batch_norm,
    classifier_layer,
    classifier_or_backbone,
    first_conv,
)
from .mobilenet_v2 import Bottleneck, bottlenecks
from .registry import PaperFigures, register_model

PAPER = "Chen et al. 2018, MobileFaceNets, Table 1"


# Table 1, between the stem (conv 3x3/64/s2, depthwise 3x3/64) and the head.
MOBILEFACENET = [
    Bottleneck(t=2, c=64, n=5, s=2),
    Bottleneck(t=4, c=128, n=1, s=2),
    Bottleneck(t=2, c=128, n=6, s=1),
    Bottleneck(t=4, c=128, n=1, s=2),
    Bottleneck(t=2, c=128, n=2, s=1),
]
STEM, HEAD, EMBEDDING = 64, 512, 128


def mobilefacenet_body(in_chans: int, bn_eps: float) -> Body:
    """Table 1 up to the last bottleneck: conv 3x3/64/s2, depthwise 3x3/64 (the stem), then the
    bottleneck rows; PReLU throughout."""
    cna: dict[str, Any] = {"norm_layer": batch_norm(bn_eps), "act_layer": nn.PReLU}
    stem = nn.Sequential(first_conv(in_chans, STEM, **cna), ConvNormAct(STEM, STEM, 3, groups=STEM, **cna))
    blocks, strides, channels = bottlenecks(MOBILEFACENET, STEM, **cna)
    return Body(stem, blocks, [2, *strides], [STEM, *channels])


def map_size(img_size: int, stride: int) -> int:
    """The side of the last map for an ``img_size`` input: each stride-2 3x3 conv gives ``ceil(n / 2)``."""
    size = img_size
    for _ in range(stride.bit_length() - 1):
        size = (size + 1) // 2
    return size


class MobileFaceNet(Classifier):
    """MobileFaceNet; the output is the ``embedding_dim`` embedding when ``num_classes == 0``.

    The GDC kernel must cover the last feature map, so it is sized from ``img_size`` (112 ->
    7x7); other input sizes need their own ``img_size``.

    Example::

        >>> MobileFaceNet()(torch.zeros(2, 3, 112, 112)).shape
        torch.Size([2, 128])
    """

    def __init__(
        self,
        num_classes: int = 0,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        img_size: int = 112,
        embedding_dim: int = EMBEDDING,
        bn_eps: float = 1e-5,
    ) -> None:
        positive_int("img_size", img_size)
        positive_int("embedding_dim", embedding_dim)
        body = mobilefacenet_body(in_chans, bn_eps)
        super().__init__(body, num_classes, drop_rate)
        norm = batch_norm(bn_eps)
        self.num_features = embedding_dim
        self.head_conv = ConvNormAct(body.width, HEAD, 1, norm_layer=norm, act_layer=nn.PReLU)
        self.gdc = GlobalDepthwiseConv2d(HEAD, map_size(img_size, self.feature_info[-1].stride))
        self.gdc_norm = norm(HEAD)
        self.embed = nn.Conv2d(HEAD, embedding_dim, 1, bias=False)
        self.embed_norm = nn.BatchNorm1d(embedding_dim, eps=bn_eps)
        self.head_drop = nn.Dropout(self.drop_rate)
        self.classifier = classifier_layer(embedding_dim, num_classes)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 64, H/2, W/2)
        x = self.blocks(x)  # (B, 128, H/16, W/16)
        return self.head_conv(x)  # (B, 512, 7, 7) at 112 px

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.gdc_norm(self.gdc(x))  # (B, 512, 1, 1): linear GDConv 7x7
        x = self.embed_norm(self.embed(x).flatten(1))  # (B, 128): linear 1x1 conv
        x = self.head_drop(x)
        return x if pre_logits else self.classifier(x)  # (B, num_classes) or (B, 128)


class MobileFaceNetFeatures(Backbone):
    """MobileFaceNet's stem and bottlenecks (Table 1) as a backbone: the maps at strides 2 to 16.

    Example::

        >>> [f.shape[1] for f in MobileFaceNetFeatures()(torch.zeros(1, 3, 112, 112))]
        [64, 64, 128, 128]
    """

    def __init__(self, in_chans: int = 3, bn_eps: float = 1e-5, out_indices: Sequence[int] | None = None) -> None:
        super().__init__(mobilefacenet_body(in_chans, bn_eps), out_indices)


@register_model("mobilefacenet", paper=PAPER, input_size=112,
                figures=[PaperFigures("Chen et al. 2018, MobileFaceNets, Table 2", 0.99e6, 221e6)])
def mobilefacenet(features_only: bool = False, out_indices: Sequence[int] | None = None,
                  **kwargs: Any) -> MobileFaceNet | MobileFaceNetFeatures:
    """MobileFaceNet at 112 px, 128-d embedding (:class:`MobileFaceNetFeatures` with ``features_only``,
    which has no GDC to size: ``img_size`` and ``embedding_dim`` are the head's)."""
    return classifier_or_backbone(MobileFaceNet, MobileFaceNetFeatures, features_only, out_indices, kwargs,
                                  head_arguments=(*HEAD_ARGUMENTS, "img_size", "embedding_dim"))
