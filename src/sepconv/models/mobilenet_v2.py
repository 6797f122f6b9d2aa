"""MobileNetV2 (Sandler et al. 2018, *MobileNetV2: Inverted Residuals and Linear Bottlenecks*).

Table 2 gives the body as rows (t, c, n, s): expansion factor, output channels, repeats, stride
of the first repeat. Channels are rounded to multiples of 8 with :func:`make_divisible`, as the
TensorFlow reference, torchvision and timm do, and the final 1x1 conv keeps 1280 channels for
width multipliers below 1 (Section 6.1).

The paper's figures are in Table 4 (ImageNet comparison): 3.4M parameters and 300M MACs at
width 1, 6.9M and 585M at 1.4. The architecture of Table 2 at 1.4 has 6,108,776 parameters (as in
every implementation), so the 6.9M cannot be reached by the table itself. Width 0.35 is not in
this paper's tables; MobileNetV3's Table 3 (Howard et al. 2019) prints it: 59.2M MACs, 1.6M
parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..layers import ConvNormAct, InvertedResidual, make_divisible
from ._base import ConvNet, activation, batch_norm, check_common, check_width, cumulative, drop_head
from .registry import PaperFigures, register_model

PAPER = "Sandler et al. 2018, MobileNetV2, Table 2"


@dataclass(frozen=True)
class Bottleneck:
    """One row of Table 2: ``n`` inverted residuals expanding by ``t`` to ``c`` channels (MobileFaceNet's
    Table 1 has the same columns)."""

    t: int  # expansion factor
    c: int  # output channels (before the width multiplier)
    n: int  # repeats
    s: int  # stride of the first repeat


# Table 2.
MOBILENET_V2 = [
    Bottleneck(t=1, c=16, n=1, s=1),
    Bottleneck(t=6, c=24, n=2, s=2),
    Bottleneck(t=6, c=32, n=3, s=2),
    Bottleneck(t=6, c=64, n=4, s=2),
    Bottleneck(t=6, c=96, n=3, s=1),
    Bottleneck(t=6, c=160, n=3, s=2),
    Bottleneck(t=6, c=320, n=1, s=1),
]
STEM, HEAD = 32, 1280


def bottlenecks(table: Sequence[Bottleneck], width: int, width_mult: float = 1.0,
                **block_kwargs: Any) -> tuple[list[nn.Module], list[int], list[int]]:
    """Expand ``(t, c, n, s)`` rows into inverted residuals: ``n`` blocks per row, the first with
    stride ``s``, each expanding its input by ``t``; ``c * width_mult`` is rounded to a multiple
    of 8. ``width`` is the input width; ``block_kwargs`` go to every :class:`InvertedResidual`.
    Returns the blocks with their strides and output channels. Shared with MobileFaceNet, whose
    Table 1 uses the same rows.
    """
    blocks, strides, channels = [], [], []
    for row in table:
        out = make_divisible(row.c * width_mult)
        for i in range(row.n):
            stride = row.s if i == 0 else 1
            blocks.append(InvertedResidual(width, out, width * row.t, 3, stride, **block_kwargs))
            width = out
            strides.append(stride)
            channels.append(out)
    return blocks, strides, channels


class MobileNetV2(ConvNet):
    """MobileNetV2 with width multiplier 0.35 ... 1.4 and any input resolution.

    Example::

        >>> MobileNetV2(width_mult=0.35)(torch.zeros(1, 3, 160, 160)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.2,
        act: str = "relu6",
        bn_eps: float = 1e-5,
        padding: str = "same",
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_common(num_classes, in_chans, drop_rate)
        alpha = check_width(width_mult, narrowest=min(STEM, *(row.c for row in MOBILENET_V2)))
        norm, act_layer = batch_norm(bn_eps), activation(act)

        width = make_divisible(STEM * alpha)
        self.stem = ConvNormAct(in_chans, width, 3, stride=2, padding=padding, norm_layer=norm, act_layer=act_layer)
        blocks, strides, channels = bottlenecks(MOBILENET_V2, width, alpha, act_layer=act_layer, norm_layer=norm,
                                                padding=padding)
        self.blocks = nn.Sequential(*blocks)
        self.init_features(cumulative([2, *strides]), [width, *channels], features_only, out_indices)
        width = channels[-1]

        head = make_divisible(HEAD * max(1.0, alpha))
        self.head_conv = ConvNormAct(width, head, 1, norm_layer=norm, act_layer=act_layer)
        self.init_head(head, num_classes, drop_rate)
        if features_only:
            drop_head(self, "head_conv", "global_pool", "head_drop", "classifier")

    def _forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 32a, H/2, W/2)
        x = self.blocks(x)  # (B, 320a, H/32, W/32)
        return self.head_conv(x)  # (B, 1280, H/32, W/32)


@register_model("mobilenet_v2", paper=PAPER, figures=[
    PaperFigures("Sandler et al. 2018, MobileNetV2, Table 4", 3.4e6, 300e6),
    # 6.9M is not reachable by Table 2 (module docstring)
    PaperFigures("Sandler et al. 2018, MobileNetV2, Table 4", 6.9e6, 585e6, {"width_mult": 1.4}),
    PaperFigures("Howard et al. 2019, MobileNetV3, Table 3 (V2 0.35)", 1.6e6, 59.2e6, {"width_mult": 0.35}),
])
def mobilenet_v2(**kwargs) -> MobileNetV2:
    """MobileNetV2; the paper's Table 4 also gives 1.4 (6.9M params, 585M MACs)."""
    return MobileNetV2(**kwargs)
