"""Xception (Chollet 2017, *Xception: Deep Learning with Depthwise Separable Convolutions*, Fig. 5).

Entry flow (two 3x3 convs, three strided residual blocks), middle flow (eight repeats of three
separable convs with identity shortcuts) and exit flow (a strided residual block, then two
separable convs to 1536 and 2048 channels), for 299x299 inputs. Every separable conv is
followed by batch norm; none has a bias. 22,855,952 parameters with the 1000-class head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..layers import ConvNormAct, SeparableConv2d, XceptionBlock
from ._base import ConvNet, batch_norm, check_common, cumulative, drop_head
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


class Xception(ConvNet):
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
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_common(num_classes, in_chans, drop_rate)
        norm = batch_norm(bn_eps)
        self.stem = nn.Sequential(
            ConvNormAct(in_chans, STEM[0], 3, stride=2, padding="valid", norm_layer=norm),
            ConvNormAct(STEM[0], STEM[1], 3, padding="valid", norm_layer=norm),
        )
        width, blocks, strides, channels = STEM[1], [], [2], [STEM[1]]
        for row in XCEPTION:
            blocks.append(XceptionBlock(width, row.out, row.reps, row.s, row.relu_first, row.grow_first,
                                        norm_layer=norm, padding=padding))
            width = row.out
            strides.append(row.s)
            channels.append(width)
        blocks.append(nn.Sequential(
            SeparableConv2d(width, EXIT[0], 3, padding=padding), norm(EXIT[0]), nn.ReLU(),
            SeparableConv2d(EXIT[0], EXIT[1], 3, padding=padding), norm(EXIT[1]), nn.ReLU(),
        ))
        strides.append(1)
        channels.append(EXIT[1])
        self.blocks = nn.Sequential(*blocks)
        self.init_features(cumulative(strides), channels, features_only, out_indices)
        self.init_head(EXIT[1], num_classes, drop_rate)
        if features_only:
            drop_head(self, "global_pool", "head_drop", "classifier")

    def _forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 64, 147, 147) at 299 px
        return self.blocks(x)  # (B, 2048, 10, 10)


@register_model("xception", paper=PAPER, input_size=299,
                figures=[PaperFigures("Chollet 2017, Xception, Table 3", 22.8e6)])
def xception(**kwargs) -> Xception:
    """Xception at 299 px; the paper gives 22.8M parameters (Table 3) and no mult-add count."""
    return Xception(**kwargs)
