"""AlexNet (Krizhevsky et al. 2012, *ImageNet Classification with Deep Convolutional Neural Networks*,
Section 3.5 and Fig. 2), with its two groups, beside the one-tower net everyone ships.

Five convolutions, then three fully connected layers. ``variant`` (:data:`VARIANTS`):

- ``"paper"``: 96-256-384-384-256 filters; conv2, conv4 and conv5 in two groups ("the kernels of the
  second, fourth, and fifth convolutional layers are connected only to those kernel maps in the
  previous layer which reside on the same GPU": the origin of grouped convolution, here
  ``groups=2``); local response normalization after the ReLUs of conv1 and conv2 (Section 3.3: k = 2,
  n = 5, alpha = 1e-4, beta = 0.75; ``nn.LocalResponseNorm`` divides alpha by n, so it gets 5e-4); overlapping
  3x3/2 max-pools after both normalizations and after conv5 (Section 3.4); dropout on the outputs of
  the first two fully connected layers (Section 4.2).
- ``"torchvision"``: ``torchvision.models.alexnet``, the one-tower net of Krizhevsky 2014 (*One weird
  trick for parallelizing convolutional neural networks*): 64-192-384-256-256 filters, no groups, no LRN,
  dropout on the inputs of the first two fully connected layers.

Input size: the paper says 224x224 and a 55x55 first map, which an 11x11 stride-4 conv gives on
227x227 without padding, (227 - 11) / 4 + 1 = 55, and not on 224 (53.25). Both variants here take 224
and pad conv1 by 2 pixels, as torchvision does: floor((224 + 4 - 11) / 4) + 1 = 55, the paper's map and
exactly the MACs of the unpadded conv on 227. Both pool the last map adaptively to 6x6 (torchvision's
rule; the identity at 224 px, where it is 6x6), so any input of at least 63 px works.

Counts (1000 classes, 224 px): "paper" 60,965,224 parameters ("60 million parameters", abstract) and
724,406,816 MACs (Conv2d + Linear; the paper prints none); "torchvision" 61,100,840 parameters and
714,188,480 MACs (torchvision's own counts). With ``groups=2`` conv2, conv4 and conv5 have half the
parameters and MACs a one-group layer of the same widths would have.

The two groups as structured sparsity: Ioannou et al. 2017 (*Deep Roots*, arXiv 1605.06489, Section
1) observe that the grouped net, with markedly fewer weights, matched the one-group net's accuracy,
and make filter groups a design choice (root modules: :mod:`sepconv.models.roots`, the ``groups``
switch of the standard-conv baselines ``mobilenet_v1:conv=standard`` and ``vgg16``).

Initialisation: the zoo's one rule (:meth:`~sepconv.models._base.ConvNet.init_weights`: Kaiming fan-out
convs, zero biases, linear normal(0, 0.01)). The paper draws every weight from normal(0, 0.01) and sets
the biases of conv2, conv4, conv5 and the hidden fully connected layers to 1 (Section 5); torchvision
keeps PyTorch's default (Kaiming-uniform with a = sqrt(5)).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from .._util.checks import one_of, positive_int
from ..layers import ConvNormAct, make_divisible
from ..layers._input import checked
from ._base import Backbone, Body, Classifier, check_width, classifier_layer, classifier_or_backbone
from .registry import PaperFigures, register_model

PAPER = "Krizhevsky et al. 2012, AlexNet, Section 3.5 and Fig. 2"
VARIANTS = ("paper", "torchvision")
# Section 3.3: b = a / (k + alpha * sum(a^2))^beta over n = 5 adjacent maps; PyTorch divides alpha by n.
LRN = partial(nn.LocalResponseNorm, 5, alpha=5 * 1e-4, beta=0.75, k=2.0)


@dataclass(frozen=True)
class Conv:
    """One convolutional layer of Fig. 2."""

    out: int  # kernels
    k: int  # kernel size
    s: int = 1  # stride
    groups: int = 1  # 2: each half of the kernels sees only its half of the input maps (one GPU each)
    lrn: bool = False  # response normalization after its ReLU (Section 3.3)
    pool: bool = False  # a 3x3/2 max-pool after it (Section 3.4)


# Section 3.5 and Fig. 2 (conv1 padded by 2 at 224 px: module docstring).
ALEXNET = [
    Conv(out=96, k=11, s=4, lrn=True, pool=True),
    Conv(out=256, k=5, groups=2, lrn=True, pool=True),
    Conv(out=384, k=3),
    Conv(out=384, k=3, groups=2),
    Conv(out=256, k=3, groups=2, pool=True),
]
# torchvision's alexnet: Krizhevsky 2014's one-tower net.
ONE_TOWER = [
    Conv(out=64, k=11, s=4, pool=True),
    Conv(out=192, k=5, pool=True),
    Conv(out=384, k=3),
    Conv(out=256, k=3),
    Conv(out=256, k=3, pool=True),
]
TABLES = {"paper": ALEXNET, "torchvision": ONE_TOWER}
FC = 4096
POOLED = 6
DROP_RATE = 0.5  # Section 4.2


def alexnet_body(variant: str, width_mult: float, in_chans: int, padding: str) -> Body:
    """The five conv layers: conv1 (with its LRN) is the stem; each further conv (with its LRN) and each
    max-pool is a block. Convs have biases and ReLU, no normalization. Widths times ``width_mult``, rounded
    to a multiple of 8 (twice the groups, so that each group keeps a multiple of 8)."""
    table = TABLES[one_of("variant", variant, VARIANTS)]
    alpha = check_width(width_mult, narrowest=min(row.out for row in table))
    positive_int("in_chans", in_chans)
    blocks: list[nn.Module] = []
    strides: list[int] = []
    channels: list[int] = []
    width = in_chans
    for i, row in enumerate(table):
        out = make_divisible(row.out * alpha, 8 * row.groups)
        pad = 2 if i == 0 else padding  # conv1: 2 pixels (module docstring); the others "same"
        layers = OrderedDict(conv=ConvNormAct(width, out, row.k, row.s, pad, groups=row.groups, norm_layer=None))
        if row.lrn:
            layers["lrn"] = LRN()
        blocks.append(nn.Sequential(layers))
        strides.append(row.s)
        channels.append(out)
        width = out
        if row.pool:
            blocks.append(nn.MaxPool2d(3, 2))
            strides.append(2)
            channels.append(width)
    return Body(blocks[0], blocks[1:], strides, channels)


class AlexNet(Classifier):
    """AlexNet, the paper's two-group net or torchvision's one-tower net (``variant``; module docstring).

    Head: adaptive average pool to 6x6 -> fc6 (4096) -> ReLU -> fc7 (4096) -> ReLU -> classifier, with
    dropout (``drop_rate``, 0.5) after fc6 and fc7 in the paper, before them in torchvision.
    ``num_features`` is fc7's 4096. ``width_mult`` scales every width, the fully connected layers' too
    (rounded to a multiple of 8; 1.0 is the paper's).

    Example::

        >>> AlexNet(num_classes=10)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        variant: str = "paper",
        width_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = DROP_RATE,
        padding: str = "same",
    ) -> None:
        body = alexnet_body(variant, width_mult, in_chans, padding)
        super().__init__(body, num_classes, drop_rate)
        self.variant = variant
        paper = variant == "paper"
        self.num_features = fc = make_divisible(FC * width_mult)
        self.global_pool = nn.AdaptiveAvgPool2d(POOLED)
        self.drop_in = nn.Identity() if paper else nn.Dropout(self.drop_rate)  # torchvision: before fc6
        self.fc6 = nn.Linear(body.width * POOLED * POOLED, fc)
        self.act = nn.ReLU()
        self.head_drop = nn.Dropout(self.drop_rate)  # both: between fc6 and fc7
        self.fc7 = nn.Linear(fc, fc)
        self.drop_out = nn.Dropout(self.drop_rate) if paper else nn.Identity()  # the paper: after fc7
        self.classifier = classifier_layer(fc, num_classes)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 96 | 64, H/4, W/4)
        return self.blocks(x)  # (B, 256, H/32, W/32)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x).flatten(1)  # (B, 256*6*6)
        x = self.act(self.fc6(self.drop_in(x)))  # (B, 4096)
        x = self.act(self.fc7(self.head_drop(x)))  # (B, 4096)
        x = self.drop_out(x)
        return x if pre_logits else self.classifier(x)  # (B, num_classes)


class AlexNetFeatures(Backbone):
    """AlexNet's five conv layers as a backbone: the maps at strides 4 (conv1) to 32 (the last pool).

    Example::

        >>> [(f.stride, f.channels) for f in AlexNetFeatures().feature_info]
        [(4, 96), (8, 256), (16, 256), (32, 256)]
    """

    def __init__(self, variant: str = "paper", width_mult: float = 1.0, in_chans: int = 3, padding: str = "same",
                 out_indices: Sequence[int] | None = None) -> None:
        super().__init__(alexnet_body(variant, width_mult, in_chans, padding), out_indices)
        self.variant = variant


@register_model("alexnet", paper=PAPER, figures=[
    PaperFigures("Krizhevsky et al. 2012, AlexNet, Abstract (60 million parameters)", 60e6),
])
def alexnet(features_only: bool = False, out_indices: Sequence[int] | None = None,
            **kwargs: Any) -> AlexNet | AlexNetFeatures:
    """AlexNet (two groups in the paper's variant; :class:`AlexNetFeatures` with ``features_only``)."""
    return classifier_or_backbone(AlexNet, AlexNetFeatures, features_only, out_indices, kwargs)
