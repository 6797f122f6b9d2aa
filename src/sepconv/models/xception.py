"""Xception (Chollet 2017, *Xception: Deep Learning with Depthwise Separable Convolutions*, Fig. 5).

Entry flow (two 3x3 convs, three strided residual blocks), middle flow (eight repeats of three
separable convs with identity shortcuts) and exit flow (a strided residual block, then two
separable convs to 1536 and 2048 channels), for 299x299 inputs. Every separable conv is
followed by batch norm; none has a bias. 22,855,952 parameters with the 1000-class head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..layers import ConvNormAct, SeparableConv2d, XceptionBlock
from ..layers._input import checked
from ._base import Backbone, Body, Classifier, batch_norm, classifier_or_backbone, first_conv
from .registry import PaperFigures, register_model

PAPER = "Chollet 2017, Xception, Fig. 5"


@dataclass(frozen=True)
class Block:
    """One residual block of Fig. 5."""

    out: int  # output channels
    reps: int  # separable convs in the branch
    s: int  # stride (a 3x3 max-pool ends the branch when 2)
    relu_first: bool = True  # the block right after the stem starts without ReLU
    grow_first: bool = True  # the exit block widens on its last conv


# Fig. 5: entry flow, middle flow (x8), exit flow.
XCEPTION = [
    Block(out=128, reps=2, s=2, relu_first=False),
    Block(out=256, reps=2, s=2),
    Block(out=728, reps=2, s=2),
    *[Block(out=728, reps=3, s=1)] * 8,
    Block(out=1024, reps=2, s=2, grow_first=False),
]
STEM = (32, 64)
EXIT = (1536, 2048)


def xception_body(in_chans: int, bn_eps: float, padding: str) -> Body:
    """Fig. 5 up to the exit flow's separable convs: the two-conv stem, the twelve residual blocks,
    and the exit flow's two separable convs (to 1536 and 2048 channels) as the last block."""
    norm = batch_norm(bn_eps)
    stem = nn.Sequential(
        first_conv(in_chans, STEM[0], padding="valid", norm_layer=norm),
        ConvNormAct(STEM[0], STEM[1], 3, padding="valid", norm_layer=norm),
    )
    widths = [STEM[1]] + [row.out for row in XCEPTION]
    blocks: list[nn.Module] = [
        XceptionBlock(cin, row.out, row.reps, row.s, row.relu_first, row.grow_first, norm_layer=norm, padding=padding)
        for cin, row in zip(widths, XCEPTION)
    ]
    blocks.append(nn.Sequential(
        SeparableConv2d(widths[-1], EXIT[0], 3, padding=padding), norm(EXIT[0]), nn.ReLU(),
        SeparableConv2d(EXIT[0], EXIT[1], 3, padding=padding), norm(EXIT[1]), nn.ReLU(),
    ))
    return Body(stem, blocks, [2] + [row.s for row in XCEPTION] + [1], widths + [EXIT[1]])


class Xception(Classifier):
    """Xception; ``padding="tf_same"`` and ``bn_eps=1e-3`` match Keras' ``Xception``.

    The exit flow's two separable convs are the last block (``blocks.12``), so the stride-32
    feature map of ``features_only`` has 2048 channels.

    Example::

        >>> Xception(num_classes=10)(torch.zeros(1, 3, 299, 299)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        bn_eps: float = 1e-5,
        padding: str = "same",
    ) -> None:
        body = xception_body(in_chans, bn_eps, padding)
        super().__init__(body, num_classes, drop_rate)
        self.init_head(body.width)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 64, 147, 147) at 299 px
        return self.blocks(x)  # (B, 2048, 10, 10)


class XceptionFeatures(Backbone):
    """Xception's flows (Fig. 5) as a backbone: the maps at strides 2 to 32, the last with 2048 channels.

    Example::

        >>> [f.channels for f in XceptionFeatures().feature_info]
        [64, 128, 256, 728, 2048]
    """

    def __init__(self, in_chans: int = 3, bn_eps: float = 1e-5, padding: str = "same",
                 out_indices: Sequence[int] | None = None) -> None:
        super().__init__(xception_body(in_chans, bn_eps, padding), out_indices)


@register_model("xception", paper=PAPER, input_size=299,
                figures=[PaperFigures("Chollet 2017, Xception, Table 3", 22.8e6)])
def xception(features_only: bool = False, out_indices: Sequence[int] | None = None, **kwargs: Any) -> Xception | XceptionFeatures:
    """Xception at 299 px (:class:`XceptionFeatures` with ``features_only``); the paper gives 22.8M
    parameters (Table 3) and no mult-add count."""
    return classifier_or_backbone(Xception, XceptionFeatures, features_only, out_indices, kwargs)
