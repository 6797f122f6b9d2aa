"""MobileNetV1 (Howard et al. 2017, *MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications*), and its standard-convolution twin ("Conv MobileNet", Table 4).

Table 1 lists the body; its second-to-last depthwise layer is printed "Conv dw / s2" on a 7x7
input, but every reference implementation (TensorFlow slim, Keras, timm) and the paper's own
7x7x1024 output use stride 1 there, as here.

The resolution multiplier rho (Section 4.2, Table 7) is the input size: ``img_size`` (every
classification model's argument, :data:`sepconv.models.registry.IMG_SIZE`) sets the input every
command builds, so ``mobilenet_v1:img_size=160`` is Table 7's "1.0 MobileNet-160" (290M mult-adds,
the same 4.2M parameters). ``conv="standard"`` with ``groups=g`` makes Conv MobileNet's convs Deep
Roots' root modules (:mod:`sepconv.models.roots`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .._util.checks import ArgumentError, one_of
from ..layers import DepthwiseSeparableBlock
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
from .roots import check_groups, conv_or_root

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


def mobilenet_v1_body(width_mult: float, conv: str, in_chans: int, act: str, bn_eps: float, padding: str,
                      groups: int = 1) -> Body:
    """Table 1: the stride-2 stem, then one depthwise-separable layer per row, every width times
    ``width_mult``; ``conv="standard"`` makes each a full 3x3 conv of the same widths and stride
    (Table 4's Conv MobileNet), and with ``groups > 1`` a Deep Roots root module (that conv in
    ``groups`` filter groups, then a 1x1 mixing conv; :mod:`sepconv.models.roots`)."""
    alpha = check_width(width_mult, narrowest=STEM)
    one_of("conv", conv, ("separable", "standard"))
    widths = [int(STEM * alpha)] + [int(row.out * alpha) for row in MOBILENET_V1]
    if conv == "separable" and groups != 1:
        raise ArgumentError("groups", f"groups={groups!r} makes conv='standard' layers Deep Roots' root modules; "
                            "conv='separable' layers are depthwise already (give conv='standard' too)")
    check_groups(groups, list(zip(widths[:-1], widths[1:])))
    cna: dict[str, Any] = {"norm_layer": batch_norm(bn_eps), "act_layer": activation(act), "padding": padding}
    width = widths[0]
    stem, blocks, channels = first_conv(in_chans, width, **cna), [], [width]
    for row, out in zip(MOBILENET_V1, widths[1:]):
        if conv == "separable":
            blocks.append(DepthwiseSeparableBlock(width, out, row.s, **cna))
        else:
            blocks.append(conv_or_root(width, out, 3, row.s, groups, **cna))
        width = out
        channels.append(out)
    return Body(stem, blocks, [2] + [row.s for row in MOBILENET_V1], channels)


class MobileNetV1(Classifier):
    """MobileNetV1 with width multiplier alpha and any input resolution (rho = size / 224).

    ``conv="standard"`` replaces every depthwise-separable layer by a full 3x3 conv of the same
    input/output widths and stride: the paper's "Conv MobileNet" of Table 4 (29.3M params,
    4866M mult-adds against 4.2M / 569M); ``groups=g`` with it makes each of those convs a Deep
    Roots root module (Ioannou et al. 2017: the 3x3 conv in ``g`` filter groups, then a 1x1 conv;
    ``groups=1``, the default, is the plain conv). ``act="relu6"`` and ``padding="tf_same"`` with
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
        groups: int = 1,
    ) -> None:
        body = mobilenet_v1_body(width_mult, conv, in_chans, act, bn_eps, padding, groups)
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
        groups: int = 1,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__(mobilenet_v1_body(width_mult, conv, in_chans, act, bn_eps, padding, groups), out_indices)


MOBILENETS = "Howard et al. 2017, MobileNets"
# Table 7 below its 224 row: input size, million mult-adds (4.2M parameters at every size).
TABLE_7 = [(192, 418e6), (160, 290e6), (128, 186e6)]


@register_model("mobilenet_v1", paper=PAPER, figures=[
    PaperFigures(f"{MOBILENETS}, Tables 4 and 6 (1.0 MobileNet-224; the first row of Table 7)", 4.2e6, 569e6),
    PaperFigures(f"{MOBILENETS}, Table 4 (Conv MobileNet)", 29.3e6, 4866e6, {"conv": "standard"}),
    PaperFigures(f"{MOBILENETS}, Table 6 (width multiplier)", 2.6e6, 325e6, {"width_mult": 0.75}),
    PaperFigures(f"{MOBILENETS}, Table 6 (width multiplier)", 1.3e6, 149e6, {"width_mult": 0.5}),
    PaperFigures(f"{MOBILENETS}, Table 6 (width multiplier)", 0.5e6, 41e6, {"width_mult": 0.25}),
    # Section 4.2: the resolution multiplier rho is the input size (1.0 MobileNet-224 is the first row)
    *[PaperFigures(f"{MOBILENETS}, Table 7 (resolution multiplier, 1.0 MobileNet-{size})", 4.2e6, macs,
                   {"img_size": size}) for size, macs in TABLE_7],
])
def mobilenet_v1(features_only: bool = False, out_indices: Sequence[int] | None = None, **kwargs: Any) -> MobileNetV1 | MobileNetV1Features:
    """MobileNetV1 (:class:`MobileNetV1Features` with ``features_only``); ``width_mult``
    1.0/0.75/0.5/0.25 gives Table 6's rows (569/325/149/41M MACs), ``img_size`` 224/192/160/128
    Table 7's (569/418/290/186M)."""
    return classifier_or_backbone(MobileNetV1, MobileNetV1Features, features_only, out_indices, kwargs)
