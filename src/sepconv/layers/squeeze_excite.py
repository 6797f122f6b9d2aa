"""Squeeze-and-excitation as used in MobileNetV3.

Hu et al. 2018, *Squeeze-and-Excitation Networks*; Howard et al. 2019, *Searching for
MobileNetV3*, Section 5.3: the squeeze width is a quarter of the expansion, rounded to a multiple
of 8, and the gate is the hard sigmoid.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._util.checks import optional_callable, positive_int
from ._input import checked
from ._utils import make_divisible
from .conv import ModuleFactory, build


class SqueezeExcite(nn.Module):
    """Global average pool -> ``fc1`` (1x1) -> act -> ``fc2`` (1x1) -> gate -> rescale.

    ``squeeze_channels = make_divisible(channels // reduction, divisor)`` unless given.

    Example::

        >>> SqueezeExcite(96)(torch.zeros(1, 96, 14, 14)).shape
        torch.Size([1, 96, 14, 14])
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 4,
        divisor: int = 8,
        gate: Callable[[], nn.Module] = nn.Hardsigmoid,
        act_layer: ModuleFactory | None = nn.ReLU,
        squeeze_channels: int | None = None,
    ) -> None:
        super().__init__()
        positive_int("channels", channels)
        positive_int("reduction", reduction)
        positive_int("divisor", divisor)
        optional_callable("gate", gate)
        optional_callable("act_layer", act_layer)
        if squeeze_channels is None:
            squeeze_channels = make_divisible(channels // reduction, divisor)
        positive_int("squeeze_channels", squeeze_channels)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = build(act_layer)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = build(gate)
        self.channels = self.in_channels = self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, C, H, W)
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        s = self.gate(self.fc2(self.act(self.fc1(s))))  # (B, C, 1, 1)
        return x * s  # (B, C, H, W)
