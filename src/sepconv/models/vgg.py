"""VGG16 (Simonyan & Zisserman 2015, *Very Deep Convolutional Networks*, Table 1, column D).

The standard-convolution baseline the separable networks are measured against: thirteen 3x3
convs with bias and ReLU in five stages, each ended by a 2x2 max-pool, then three fully connected
layers (138,357,544 parameters with the 1000-class head; the paper's Table 2 gives 138M). The VGG
paper prints no mult-add count; MobileNets (Howard et al. 2017) Table 8 gives VGG 16 15,300M
mult-adds and 138M parameters, against 15,470,264,320 MACs here (Conv2d + Linear at 224 px).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..layers import ConvNormAct
from ._base import ConvNet, check_common, classifier, cumulative, drop_head
from .registry import PaperFigures, register_model

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


class VGG(ConvNet):
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
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_common(num_classes, in_chans, drop_rate)
        self.stem = ConvNormAct(in_chans, table[0].out, 3, norm_layer=None)
        width, stages, channels = table[0].out, [], []
        for i, stage in enumerate(table):
            convs = [ConvNormAct(width if j == 0 else stage.out, stage.out, 3, norm_layer=None)
                     for j in range(1 if i == 0 else 0, stage.convs)]
            stages.append(nn.Sequential(*convs, nn.MaxPool2d(2, 2)))
            width = stage.out
            channels.append(width)
        self.blocks = nn.Sequential(*stages)
        self.init_features(cumulative([1] + [2] * len(table)), [table[0].out, *channels], features_only,
                           out_indices)
        self.num_features = HIDDEN

        self.global_pool = nn.AdaptiveAvgPool2d(POOLED)
        self.fc1 = nn.Linear(width * POOLED * POOLED, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, HIDDEN)
        self.act = nn.ReLU()
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = classifier(HIDDEN, num_classes)
        if features_only:
            drop_head(self, "global_pool", "fc1", "fc2", "act", "head_drop", "classifier")

    def _forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 64, H, W)
        return self.blocks(x)  # (B, 512, H/32, W/32)

    def _forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x).flatten(1)  # (B, 512*7*7)
        x = self.head_drop(self.act(self.fc1(x)))  # (B, 4096)
        x = self.head_drop(self.act(self.fc2(x)))  # (B, 4096)
        return x if pre_logits else self.classifier(x)  # (B, num_classes)


@register_model("vgg16", paper=PAPER, figures=[
    PaperFigures("Simonyan & Zisserman 2015, VGG, Table 2 (params); Howard et al. 2017, MobileNets, Table 8 (MACs)",
                 138e6, 15300e6),
])
def vgg16(**kwargs) -> VGG:
    """VGG16 (configuration D)."""
    return VGG(VGG16, **kwargs)
