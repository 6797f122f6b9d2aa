"""GoogLeNet (Szegedy et al. 2015, *Going Deeper with Convolutions*, Table 1 and Fig. 3).

Table 1 row by row: the 7x7/2 conv (the stem), then each further row one block: max-pools, the
1x1-reduced 3x3 conv, and the nine Inception modules (3a) ... (5b), each an
:class:`~sepconv.layers.InceptionModule` with the table's #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5
and pool proj columns; (3a) is the module the separable-convolution literature walks through,
28x28x192 -> 28x28x256. Then global average pooling, dropout and the linear classifier.

``variant`` (:data:`VARIANTS`):

- ``"paper"``: no normalization (convs with biases), local response normalization after the first
  max-pool and after the 3x3 conv (Fig. 3; the paper gives no constants: these are the BVLC Caffe
  reimplementation's, size 5, alpha 1e-4, beta 0.75, k 1), 5x5 convs in the 5x5 branches, four 3x3/2
  max-pools rounding up (Caffe's pooling, the paper's reference implementation: 112, 56, 28, 14, 7 at
  224 px), 40% dropout; the auxiliary classifiers pool 5x5/3.
- ``"torchvision"``: ``torchvision.models.googlenet``: BatchNorm (eps 1e-3) after every conv and no
  biases, no LRN, a 3x3 conv where the "5x5" branch should have a 5x5 (pytorch/vision#906), the fourth
  max-pool 2x2/2, 20% dropout; the auxiliary classifiers pool adaptively to 4x4.

Auxiliary classifiers (Section 5: after (4a) and (4d); 5x5/3 average pool, 1x1 conv to 128, fc 1024,
70% dropout, linear; "during training, their loss gets added to the total loss with a discount weight
(the losses of the auxiliary classifiers were weighted by 0.3)"; discarded at inference) exist only
with ``aux_logits=True`` and their logits come only from :meth:`GoogLeNet.forward_aux`; ``forward``
always returns the main logits. :data:`AUX_WEIGHT` is the paper's 0.3.

Counts (1000 classes, 224 px; MACs of Conv2d + Linear in ``forward``, which never runs the auxiliary
heads): "paper" 6,998,552 parameters (13,378,280 with both aux heads) and 1,582,671,872 MACs;
"torchvision" 6,624,904 parameters (torchvision's published count, without the aux heads; 13,004,888
with them) and 1,498,376,192 MACs, torchvision's own. Table 1 prints no total: its columns sum to
6,797.7K parameters (K = 1024, without biases: 6,990,272 here, +0.4%) and 1,502M multiply-adds (+5.4%
here), most of both gaps in its first row, which prints 2.7K parameters and 34M ops for the 7x7/2 conv
where a 7x7x3 -> 64 conv has 9,408 and 118M at 112x112; the text's budget is "1.5 billion multiply-adds".

Initialisation: the zoo's one rule (:meth:`~sepconv.models._base.ConvNet.init_weights`: Kaiming fan-out
convs, zero biases, BatchNorm 1 and 0, linear normal(0, 0.01)). torchvision draws every conv and linear
weight from a truncated normal of std 0.01, which suits its BatchNorm variant; without normalization (the
paper's) it leaves a fresh network's logits near 1e-12, where the zoo's rule gives logits of order 30 at
224 px (the fan-out rule amplifies through the narrow 1x1 reduce convs). The paper states no rule.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Union

import torch
from torch import nn

from .._util.checks import one_of, positive_int
from ..layers import ConvNormAct, InceptionModule, make_divisible
from ..layers._input import checked
from ..layers.inception import GoogLeNetAux
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

PAPER = "Szegedy et al. 2015, GoogLeNet, Table 1"
VARIANTS = ("paper", "torchvision")
AUX_WEIGHT = 0.3  # Section 5: each auxiliary loss is added to the total loss weighted by 0.3
DROP_RATE = {"paper": 0.4, "torchvision": 0.2}  # Section 5 ("dropout layer with 70% ratio" is the aux heads')
# Local response normalization: the BVLC Caffe GoogLeNet's constants (the paper gives none). Caffe and
# nn.LocalResponseNorm both divide alpha by the window size.
LRN = partial(nn.LocalResponseNorm, 5, alpha=1e-4, beta=0.75, k=1.0)


@dataclass(frozen=True)
class Conv:
    """A "convolution" row of Table 1 (with its "#3x3 reduce" 1x1 conv when ``reduce``)."""

    k: int  # patch size
    s: int  # stride
    out: int  # depth
    reduce: int = 0  # the 1x1 conv in front (Table 1's "#3x3 reduce"), 0 for none
    lrn: bool = False  # local response normalization after it (Fig. 3)


@dataclass(frozen=True)
class MaxPool:
    """A "max pool" row of Table 1 (rounding up, as Caffe pools)."""

    k: int
    s: int
    lrn: bool = False  # local response normalization after it (Fig. 3)


@dataclass(frozen=True)
class Inception:
    """An "inception" row of Table 1, named as the paper names it ("3a")."""

    name: str
    n1x1: int  # "#1x1"
    n3x3red: int  # "#3x3 reduce"
    n3x3: int  # "#3x3"
    n5x5red: int  # "#5x5 reduce"
    n5x5: int  # "#5x5"
    pool_proj: int  # "pool proj"

    @property
    def out(self) -> int:
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj


Row = Union[Conv, MaxPool, Inception]

# Table 1 (with Fig. 3's two LRNs); the first row is the stem.
GOOGLENET: list[Row] = [
    Conv(k=7, s=2, out=64),
    MaxPool(k=3, s=2, lrn=True),
    Conv(k=3, s=1, out=192, reduce=64, lrn=True),
    MaxPool(k=3, s=2),
    Inception("3a", n1x1=64, n3x3red=96, n3x3=128, n5x5red=16, n5x5=32, pool_proj=32),
    Inception("3b", n1x1=128, n3x3red=128, n3x3=192, n5x5red=32, n5x5=96, pool_proj=64),
    MaxPool(k=3, s=2),
    Inception("4a", n1x1=192, n3x3red=96, n3x3=208, n5x5red=16, n5x5=48, pool_proj=64),
    Inception("4b", n1x1=160, n3x3red=112, n3x3=224, n5x5red=24, n5x5=64, pool_proj=64),
    Inception("4c", n1x1=128, n3x3red=128, n3x3=256, n5x5red=24, n5x5=64, pool_proj=64),
    Inception("4d", n1x1=112, n3x3red=144, n3x3=288, n5x5red=32, n5x5=64, pool_proj=64),
    Inception("4e", n1x1=256, n3x3red=160, n3x3=320, n5x5red=32, n5x5=128, pool_proj=128),
    MaxPool(k=3, s=2),
    Inception("5a", n1x1=256, n3x3red=160, n3x3=320, n5x5red=32, n5x5=128, pool_proj=128),
    Inception("5b", n1x1=384, n3x3red=192, n3x3=384, n5x5red=48, n5x5=128, pool_proj=128),
]
# torchvision's googlenet (torchvision/models/googlenet.py): Table 1 without the LRNs, the fourth max-pool
# 2x2/2 (its "5x5" branches' 3x3 kernels are an argument of the Inception module, set in googlenet_body).
TORCHVISION: list[Row] = [
    Conv(k=7, s=2, out=64),
    MaxPool(k=3, s=2),
    Conv(k=3, s=1, out=192, reduce=64),
    MaxPool(k=3, s=2),
    *GOOGLENET[4:6],  # (3a), (3b)
    MaxPool(k=3, s=2),
    *GOOGLENET[7:12],  # (4a) ... (4e)
    MaxPool(k=2, s=2),
    *GOOGLENET[13:],  # (5a), (5b)
]
TABLES = {"paper": GOOGLENET, "torchvision": TORCHVISION}
AUX_AFTER = ("4a", "4d")  # Section 5


def scaled(width_mult: float, channels: int) -> int:
    return make_divisible(channels * width_mult)


def inception_index(table: Sequence[Row], name: str) -> int:
    """The block index (``blocks.<i>``, the stem being row 0) of the inception row ``name``."""
    return next(i for i, row in enumerate(table) if isinstance(row, Inception) and row.name == name) - 1


def googlenet_body(variant: str, width_mult: float, in_chans: int, bn_eps: float, padding: str) -> Body:
    """Table 1 up to (5b): the 7x7/2 conv (the stem), then one block per row; every width times
    ``width_mult``, rounded to a multiple of 8 (all of Table 1's are multiples of 8)."""
    table = TABLES[one_of("variant", variant, VARIANTS)]
    alpha = check_width(width_mult, narrowest=16)  # (3a)'s #5x5 reduce
    w = partial(scaled, alpha)
    paper = variant == "paper"
    norm = None if paper else batch_norm(bn_eps)
    cna: dict[str, Any] = {"norm_layer": norm, "padding": padding}
    positive_int("in_chans", in_chans)
    first = table[0]
    width = w(first.out)
    stem = ConvNormAct(in_chans, width, first.k, first.s, **cna)
    blocks: list[nn.Module] = []
    strides, channels = [first.s], [width]
    for row in table[1:]:
        if isinstance(row, MaxPool):
            pool = nn.MaxPool2d(row.k, row.s, ceil_mode=True)
            blocks.append(nn.Sequential(OrderedDict(pool=pool, lrn=LRN())) if row.lrn else pool)
        elif isinstance(row, Conv):
            layers = OrderedDict(reduce=ConvNormAct(width, w(row.reduce), 1, **cna)) if row.reduce else OrderedDict()
            layers["conv"] = ConvNormAct(w(row.reduce) if row.reduce else width, w(row.out), row.k, row.s, **cna)
            if row.lrn:
                layers["lrn"] = LRN()
            blocks.append(nn.Sequential(layers))
            width = w(row.out)
        else:
            module = InceptionModule(width, w(row.n1x1), w(row.n3x3red), w(row.n3x3), w(row.n5x5red), w(row.n5x5),
                                     w(row.pool_proj), norm_layer=norm, branch5_kernel=5 if paper else 3)
            blocks.append(module)
            width = module.out_channels
        strides.append(row.s if isinstance(row, (MaxPool, Conv)) else 1)
        channels.append(width)
    return Body(stem, blocks, strides, channels)


class GoogLeNet(Classifier):
    """GoogLeNet (Table 1), the paper's or torchvision's (``variant``; module docstring).

    ``aux_logits=True`` builds the two auxiliary classifiers (``aux1`` after (4a), ``aux2`` after (4d));
    :meth:`forward_aux` returns their logits with the main ones. ``drop_rate`` defaults to the variant's
    (0.4 in the paper, 0.2 in torchvision). ``width_mult`` scales every width of the body (rounded to a
    multiple of 8; 1.0 is Table 1's; the auxiliary heads keep theirs). ``bn_eps`` is the torchvision
    variant's BatchNorm epsilon; ``padding`` ("same" or "tf_same") the rule of the convs the table pads.

    Example::

        >>> GoogLeNet(num_classes=10)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 10])
        >>> [t.shape for t in GoogLeNet(aux_logits=True).forward_aux(torch.zeros(2, 3, 224, 224))]
        [torch.Size([2, 1000]), torch.Size([2, 1000]), torch.Size([2, 1000])]
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
        body = googlenet_body(variant, width_mult, in_chans, bn_eps, padding)
        super().__init__(body, num_classes, DROP_RATE[variant] if drop_rate is None else drop_rate)
        self.variant = variant
        self.aux_logits = check_aux_logits(aux_logits, num_classes)
        table = TABLES[variant]
        self.aux_taps = tuple(inception_index(table, name) for name in AUX_AFTER)  # (4a), (4d) as block indices
        self.aux_weights = (AUX_WEIGHT,) * len(AUX_AFTER) if aux_logits else ()
        if aux_logits:
            norm = None if variant == "paper" else batch_norm(bn_eps)
            adaptive = variant == "torchvision"
            self.aux1, self.aux2 = (GoogLeNetAux(body.channels[i + 1], num_classes, norm, adaptive)
                                    for i in self.aux_taps)
        self.init_head(body.width)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 64, H/2, W/2)
        return self.blocks(x)  # (B, 1024, H/32, W/32)

    def forward_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, aux1 logits, aux2 logits)`` for training (Section 5); needs ``aux_logits=True``.

        The training loss is ``ce(logits) + sum(w * ce(aux) for w, aux in zip(model.aux_weights, aux_outputs))``
        with the paper's weight 0.3 (:data:`AUX_WEIGHT`).
        """
        if not self.aux_logits:
            raise ValueError("forward_aux: this GoogLeNet has no auxiliary classifiers; build it with aux_logits=True")
        first, second = self.aux_taps
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 64, H/2, W/2)
        x = self.blocks[: first + 1](x)  # (B, 512, H/16, W/16): (4a)
        aux1 = self.aux1(x)  # (B, num_classes)
        x = self.blocks[first + 1: second + 1](x)  # (B, 528, H/16, W/16): (4d)
        aux2 = self.aux2(x)  # (B, num_classes)
        x = self.blocks[second + 1:](x)  # (B, 1024, H/32, W/32)
        return self.forward_head(x), aux1, aux2


class GoogLeNetFeatures(Backbone):
    """GoogLeNet's rows of Table 1 up to (5b) as a backbone: the maps at strides 2 to 32.

    Example::

        >>> [f.channels for f in GoogLeNetFeatures().feature_info]
        [64, 192, 480, 832, 1024]
    """

    def __init__(self, variant: str = "paper", width_mult: float = 1.0, in_chans: int = 3, bn_eps: float = 1e-3,
                 padding: str = "same", out_indices: Sequence[int] | None = None) -> None:
        super().__init__(googlenet_body(variant, width_mult, in_chans, bn_eps, padding), out_indices)
        self.variant = variant


@register_model("googlenet", paper=PAPER, figures=[
    # Table 1 has no total: its params and ops columns sum to 6,797.7K and 1,502M (1.5 billion in Section 1)
    PaperFigures("Szegedy et al. 2015, GoogLeNet, Table 1 (columns summed)", 6.8e6, 1502e6),
])
def googlenet(features_only: bool = False, out_indices: Sequence[int] | None = None,
              **kwargs: Any) -> GoogLeNet | GoogLeNetFeatures:
    """GoogLeNet (Table 1; :class:`GoogLeNetFeatures` with ``features_only``)."""
    return classifier_or_backbone(GoogLeNet, GoogLeNetFeatures, features_only, out_indices, kwargs,
                                  head_arguments=(*HEAD_ARGUMENTS, "aux_logits"))
