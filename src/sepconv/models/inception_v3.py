"""Inception v3 (Szegedy et al. 2016, *Rethinking the Inception Architecture for Computer Vision*, Table 1),
for 299x299 inputs: the network Xception (Chollet 2017) is measured against.

Table 1 gives the layer types and grid sizes but not the filter counts, and its stem does not match the
network the authors trained and released; every implementation (TF-slim's ``inception_v3``, Keras'
``InceptionV3``, torchvision's ``inception_v3``, timm's) builds that released network, row by row below
under its TensorFlow names: five stem convs and two max-pools, three 35x35 modules (Fig. 5), a grid
reduction, four 17x17 modules (Fig. 6), a second reduction, two 8x8 modules (Fig. 7), global average
pooling, dropout and the classifier; the modules are :mod:`sepconv.layers.inception`'s.

``variant`` (:data:`VARIANTS`):

- ``"paper"``: the authors' released TensorFlow model (TF-slim, which Keras reproduces): BatchNorm with
  no scale (beta only, eps 1e-3; :class:`~sepconv.layers.norm.BatchNorm2dNoScale`), 3x3 average pools that
  divide by the pixels they see (TensorFlow's "SAME" pooling), dropout 0.2 (``keep_prob=0.8``).
- ``"torchvision"``: ``torchvision.models.inception_v3``, a port of those weights: BatchNorm with gamma
  and beta (eps 1e-3), average pools that count the zero padding, dropout 0.5.

The auxiliary classifier (on Mixed_6e, the last 17x17 map; Section 7) exists only with ``aux_logits=True``
and its logits come only from :meth:`InceptionV3.forward_aux`; it needs a 299 px input (the 17x17 map).
Its loss weight, :data:`AUX_WEIGHT` = 0.4, is the authors' training script's (TF-slim
``train_image_classifier.py``: ``weights=0.4``); the paper states none.

Counts (1000 classes, 299 px; MACs of Conv2d + Linear in ``forward``, never the auxiliary head):
"paper" 23,817,352 parameters without the aux head (Keras' ``InceptionV3`` trainable count exactly;
27,143,152 with it) and 5,713,216,096 MACs (Keras' Conv/Dense MACs too); "torchvision" 23,834,568 parameters
without the aux head and 27,161,264 with it (torchvision's published count, which includes it), the same
5,713,216,096 MACs.

Xception's Table 3 prints 23,626,728 parameters for Inception V3 ("1000 classes, no fully-connected
layers"). No implementation reproduces it: it is 190,624 below the released network's trainable
parameters (23,817,352: conv kernels 21,751,136, BatchNorm betas 17,216, classifier 2,049,000) and
173,408 below its conv kernels and classifier alone, so no way of counting the BatchNorms (with gamma,
23,834,568; with the moving statistics, 23,851,784, Keras' total) gives it, nor leaving out the
auxiliary head (3,325,800 more with it). It presumably counts the configuration Google trained
internally for that comparison. sepconv pins the released network's counts and shows the paper's
figure beside them (``sepconv models``: -0.80%). The abstract's "5 billion multiply-adds" is the MAC
figure shown.

Initialisation: the zoo's one rule (:meth:`~sepconv.models._base.ConvNet.init_weights`: Kaiming fan-out
convs, BatchNorm 1 and 0, linear normal(0, 0.01)); torchvision draws convs and linears from truncated
normals of std 0.1 (0.01 and 0.001 in the auxiliary head), TF-slim from truncated normals of std 0.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Union

import torch
from torch import nn

from .._util.checks import one_of, positive_int
from ..layers import ConvNormAct, make_divisible
from ..layers._input import checked
from ..layers.inception import InceptionV3A, InceptionV3Aux, InceptionV3B, InceptionV3C, InceptionV3D, InceptionV3E
from ..layers.norm import BatchNorm2dNoScale
from ._base import (
    HEAD_ARGUMENTS,
    Backbone,
    Body,
    Classifier,
    batch_norm,
    check_aux_logits,
    check_width,
    classifier_or_backbone,
)
from .registry import PaperFigures, register_model

PAPER = "Szegedy et al. 2016, Rethinking the Inception Architecture, Table 1 (as released)"
VARIANTS = ("paper", "torchvision")
AUX_WEIGHT = 0.4  # TF-slim's train_image_classifier.py; the paper gives none
DROP_RATE = {"paper": 0.2, "torchvision": 0.5}


@dataclass(frozen=True)
class Conv:
    """A stem convolution (BatchNorm, ReLU), named as TensorFlow names it."""

    name: str
    out: int
    k: int
    s: int = 1
    padding: str = "valid"  # the released network pads only Conv2d_2b_3x3


@dataclass(frozen=True)
class MaxPool:
    """A 3x3/2 max-pool, unpadded."""

    name: str


@dataclass(frozen=True)
class Mixed:
    """An Inception module: ``kind`` "A" (35x35, Fig. 5), "B" (35 -> 17 reduction), "C" (17x17, Fig. 6),
    "D" (17 -> 8 reduction) or "E" (8x8, Fig. 7); ``width`` is A's pool-projection width or C's 7x7 width."""

    name: str
    kind: str
    width: int = 0


Row = Union[Conv, MaxPool, Mixed]

# Table 1 as released (TF-slim inception_v3_base); the first row is the stem.
INCEPTION_V3: list[Row] = [
    Conv("Conv2d_1a_3x3", out=32, k=3, s=2),
    Conv("Conv2d_2a_3x3", out=32, k=3),
    Conv("Conv2d_2b_3x3", out=64, k=3, padding="same"),
    MaxPool("MaxPool_3a_3x3"),
    Conv("Conv2d_3b_1x1", out=80, k=1),
    Conv("Conv2d_4a_3x3", out=192, k=3),
    MaxPool("MaxPool_5a_3x3"),
    Mixed("Mixed_5b", "A", width=32),
    Mixed("Mixed_5c", "A", width=64),
    Mixed("Mixed_5d", "A", width=64),
    Mixed("Mixed_6a", "B"),
    Mixed("Mixed_6b", "C", width=128),
    Mixed("Mixed_6c", "C", width=160),
    Mixed("Mixed_6d", "C", width=160),
    Mixed("Mixed_6e", "C", width=192),
    Mixed("Mixed_7a", "D"),
    Mixed("Mixed_7b", "E"),
    Mixed("Mixed_7c", "E"),
]
AUX_AFTER = "Mixed_6e"
STRIDE = {"B": 2, "D": 2}


def norm_layer(variant: str, bn_eps: float) -> Any:
    """The BatchNorm of the variant: TensorFlow's without scale, or torchvision's with it."""
    return partial(BatchNorm2dNoScale if variant == "paper" else nn.BatchNorm2d, eps=batch_norm(bn_eps).keywords["eps"])


def module(row: Mixed, width: int, variant: str, norm: Any, padding: str, alpha: float) -> nn.Module:
    kw = {"padding": padding, "width_mult": alpha}
    pad = {"count_include_pad": variant == "torchvision"}
    if row.kind == "A":
        return InceptionV3A(width, row.width, norm, **pad, **kw)
    if row.kind == "B":
        return InceptionV3B(width, norm, **kw)
    if row.kind == "C":
        return InceptionV3C(width, row.width, norm, **pad, **kw)
    if row.kind == "D":
        return InceptionV3D(width, norm, **kw)
    return InceptionV3E(width, norm, **pad, **kw)


def inception_v3_body(variant: str, width_mult: float, in_chans: int, bn_eps: float, padding: str) -> Body:
    """The released network up to Mixed_7c: Conv2d_1a_3x3 (the stem), then one block per row; every width
    times ``width_mult``, rounded to a multiple of 8."""
    one_of("variant", variant, VARIANTS)
    alpha = check_width(width_mult, narrowest=32)  # Conv2d_1a_3x3, Mixed_5b's pool projection
    positive_int("in_chans", in_chans)
    norm = norm_layer(variant, bn_eps)
    blocks: list[nn.Module] = []
    strides: list[int] = []
    channels: list[int] = []
    width = in_chans
    for row in INCEPTION_V3:
        if isinstance(row, Conv):
            pad = padding if row.padding == "same" else row.padding
            out = make_divisible(row.out * alpha)
            blocks.append(ConvNormAct(width, out, row.k, row.s, pad, norm_layer=norm))
            width, stride = out, row.s
        elif isinstance(row, MaxPool):
            blocks.append(nn.MaxPool2d(3, 2))
            stride = 2
        else:
            blocks.append(module(row, width, variant, norm, padding, alpha))
            width, stride = blocks[-1].out_channels, STRIDE.get(row.kind, 1)
        strides.append(stride)
        channels.append(width)
    return Body(blocks[0], blocks[1:], strides, channels)


class InceptionV3(Classifier):
    """Inception v3 as released, the authors' TensorFlow model or torchvision's port (``variant``; module
    docstring), for 299 px inputs (75 px at least).

    ``aux_logits=True`` builds the auxiliary classifier (``aux``) on Mixed_6e; :meth:`forward_aux` returns
    its logits with the main ones. ``drop_rate`` defaults to the variant's (0.2 TensorFlow, 0.5
    torchvision); ``bn_eps`` is 1e-3 in both. ``width_mult`` scales every width (rounded to a multiple of
    8; 1.0 is the network). ``padding`` ("same" or "tf_same") is the rule of the convs the network pads (all stride 1,
    where the two agree).

    Example::

        >>> InceptionV3(num_classes=10)(torch.zeros(1, 3, 299, 299)).shape
        torch.Size([1, 10])
        >>> [t.shape for t in InceptionV3(aux_logits=True).forward_aux(torch.zeros(2, 3, 299, 299))]
        [torch.Size([2, 1000]), torch.Size([2, 1000])]
    """

    def __init__(
        self,
        variant: str = "paper",
        width_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float | None = None,
        aux_logits: bool = False,
        bn_eps: float = 1e-3,
        padding: str = "same",
    ) -> None:
        body = inception_v3_body(variant, width_mult, in_chans, bn_eps, padding)
        super().__init__(body, num_classes, DROP_RATE[variant] if drop_rate is None else drop_rate)
        self.variant = variant
        self.aux_logits = check_aux_logits(aux_logits, num_classes)
        self.aux_tap = next(i for i, row in enumerate(INCEPTION_V3) if row.name == AUX_AFTER) - 1  # block index
        self.aux_weights = (AUX_WEIGHT,) if aux_logits else ()
        if aux_logits:
            self.aux = InceptionV3Aux(body.channels[self.aux_tap + 1], num_classes, norm_layer(variant, bn_eps),
                                      width_mult)
        self.init_head(body.width)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, 299, 299)
        x = self.stem(x)  # (B, 32, 149, 149)
        return self.blocks(x)  # (B, 2048, 8, 8)

    def forward_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, aux logits)`` for training; needs ``aux_logits=True`` and a 299 px input.

        The training loss is ``ce(logits) + model.aux_weights[0] * ce(aux)``, 0.4 as the authors' script
        (:data:`AUX_WEIGHT`).
        """
        if not self.aux_logits:
            raise ValueError("forward_aux: this InceptionV3 has no auxiliary classifier; build it with aux_logits=True")
        x = checked(self, x)  # (B, in_chans, 299, 299)
        x = self.stem(x)  # (B, 32, 149, 149)
        x = self.blocks[: self.aux_tap + 1](x)  # (B, 768, 17, 17): Mixed_6e
        aux = self.aux(x)  # (B, num_classes)
        x = self.blocks[self.aux_tap + 1:](x)  # (B, 2048, 8, 8)
        return self.forward_head(x), aux


class InceptionV3Features(Backbone):
    """Inception v3 up to Mixed_7c as a backbone: the maps at strides 2 (Conv2d_2b_3x3) to 32 (Mixed_7c).

    Example::

        >>> [f.channels for f in InceptionV3Features().feature_info]
        [64, 192, 288, 768, 2048]
    """

    def __init__(self, variant: str = "paper", width_mult: float = 1.0, in_chans: int = 3, bn_eps: float = 1e-3,
                 padding: str = "same", out_indices: Sequence[int] | None = None) -> None:
        super().__init__(inception_v3_body(variant, width_mult, in_chans, bn_eps, padding), out_indices)
        self.variant = variant


@register_model("inception_v3", paper=PAPER, input_size=299, figures=[
    # Xception's comparison; the difference is explained in the module docstring
    PaperFigures("Chollet 2017, Xception, Table 3 (params); Szegedy et al. 2016, Abstract (5 billion "
                 "multiply-adds)", 23_626_728, 5e9),
])
def inception_v3(features_only: bool = False, out_indices: Sequence[int] | None = None,
                 **kwargs: Any) -> InceptionV3 | InceptionV3Features:
    """Inception v3 at 299 px (:class:`InceptionV3Features` with ``features_only``)."""
    return classifier_or_backbone(InceptionV3, InceptionV3Features, features_only, out_indices, kwargs,
                                  head_arguments=(*HEAD_ARGUMENTS, "aux_logits"))
