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

Two switches test the paper's reasons, the defaults being the paper's network:

- ``project_act``: the activation after each bottleneck's 1x1 projection. ``None`` (default) is the
  linear bottleneck of Section 3.2 ("it is important to remove non-linearities in the narrow layers
  in order to maintain representational power"; Figure 6(a) trains ReLU6 there against linear and
  linear wins); ``"relu6"`` (or ``"relu"``) puts one back. Only each block's ``project.act`` changes.
- ``expand_ratio``: an int replacing every expansion factor t of Table 2 but the first row's t = 1
  (Section 3.3 and 6.1: t = 6 throughout; "smaller network sizes are better served by slightly
  smaller expansion rates"). ``None`` (default) keeps Table 2; t = 1 leaves the blocks without
  their expanding 1x1 conv.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from .._util.checks import one_of, positive_int
from ..layers import ConvNormAct, InvertedResidual, make_divisible
from ..layers._input import checked
from ._base import (
    ACTIVATIONS,
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


def expanded(table: Sequence[Bottleneck], expand_ratio: int | None) -> list[Bottleneck]:
    """``table`` with every expansion factor t other than 1 replaced by ``expand_ratio`` (``None``:
    ``table`` as it is)."""
    if expand_ratio is None:
        return list(table)
    positive_int("expand_ratio", expand_ratio)
    return [row if row.t == 1 else replace(row, t=expand_ratio) for row in table]


def project_with(blocks: Sequence[nn.Module], project_act: str | None) -> None:
    """Give each inverted residual's projection (linear in :class:`~sepconv.layers.InvertedResidual`,
    as the paper's) the activation ``project_act``; ``None`` keeps it linear. Activations hold no
    state but PReLU's slope, so the state_dict keys stay the default model's."""
    if project_act is None:
        return
    act = activation(one_of("project_act", project_act, ACTIVATIONS))
    for block in blocks:
        block.project.act = act()


def mobilenet_v2_body(width_mult: float, in_chans: int, act: str, bn_eps: float, padding: str,
                      project_act: str | None = None, expand_ratio: int | None = None) -> Body:
    """Table 2 up to its last bottleneck row: the stride-2 stem and seventeen inverted residuals,
    widths times ``width_mult`` rounded to multiples of 8; ``project_act`` and ``expand_ratio`` are
    the module docstring's switches."""
    alpha = check_width(width_mult, narrowest=min(STEM, *(row.c for row in MOBILENET_V2)))
    table = expanded(MOBILENET_V2, expand_ratio)
    cna: dict[str, Any] = {"norm_layer": batch_norm(bn_eps), "act_layer": activation(act), "padding": padding}
    width = make_divisible(STEM * alpha)
    stem = first_conv(in_chans, width, **cna)
    blocks, strides, channels = bottlenecks(table, width, alpha, **cna)
    project_with(blocks, project_act)
    return Body(stem, blocks, [2, *strides], [width, *channels])


class MobileNetV2(Classifier):
    """MobileNetV2 with width multiplier 0.35 ... 1.4 and any input resolution; ``project_act`` and
    ``expand_ratio`` switch the linear bottleneck and the expansion factor (module docstring).

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
        project_act: str | None = None,
        expand_ratio: int | None = None,
    ) -> None:
        body = mobilenet_v2_body(width_mult, in_chans, act, bn_eps, padding, project_act, expand_ratio)
        super().__init__(body, num_classes, drop_rate)
        head = make_divisible(HEAD * max(1.0, width_mult))
        self.head_conv = ConvNormAct(body.width, head, 1, norm_layer=batch_norm(bn_eps), act_layer=activation(act))
        self.init_head(head)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, 32a, H/2, W/2)
        x = self.blocks(x)  # (B, 320a, H/32, W/32)
        return self.head_conv(x)  # (B, 1280, H/32, W/32)


class MobileNetV2Features(Backbone):
    """MobileNetV2's stem and bottlenecks (Table 2) as a backbone: the maps at strides 2 to 32.

    Example::

        >>> [f.shape[1] for f in MobileNetV2Features(out_indices=(2, 3, 4))(torch.zeros(1, 3, 224, 224))]
        [32, 96, 320]
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        in_chans: int = 3,
        act: str = "relu6",
        bn_eps: float = 1e-5,
        padding: str = "same",
        project_act: str | None = None,
        expand_ratio: int | None = None,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__(mobilenet_v2_body(width_mult, in_chans, act, bn_eps, padding, project_act, expand_ratio),
                         out_indices)


@register_model("mobilenet_v2", paper=PAPER, figures=[
    PaperFigures("Sandler et al. 2018, MobileNetV2, Table 4", 3.4e6, 300e6),
    # 6.9M is not reachable by Table 2 (module docstring)
    PaperFigures("Sandler et al. 2018, MobileNetV2, Table 4", 6.9e6, 585e6, {"width_mult": 1.4}),
    PaperFigures("Howard et al. 2019, MobileNetV3, Table 3 (V2 0.35)", 1.6e6, 59.2e6, {"width_mult": 0.35}),
])
def mobilenet_v2(features_only: bool = False, out_indices: Sequence[int] | None = None, **kwargs: Any) -> MobileNetV2 | MobileNetV2Features:
    """MobileNetV2 (:class:`MobileNetV2Features` with ``features_only``); the paper's Table 4 also
    gives 1.4 (6.9M params, 585M MACs)."""
    return classifier_or_backbone(MobileNetV2, MobileNetV2Features, features_only, out_indices, kwargs)
