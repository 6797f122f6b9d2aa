"""What every classification network in the zoo shares: a stem, a flat sequence of blocks, a
head, and the ``features_only`` mode that turns the body into a multi-scale backbone.

Families differ in their tables and heads, not in this plumbing, so it is written once here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from .._util.checks import boolean, one_of, positive_int, reports_input_channels

ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "prelu": nn.PReLU}


@dataclass(frozen=True)
class FeatureInfo:
    """One multi-scale output: which module produces it, its stride and its channels."""

    module: str
    stride: int
    channels: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def activation(name: str) -> type[nn.Module]:
    return ACTIVATIONS[one_of("act", name, ACTIVATIONS)]


def batch_norm(eps: float) -> Any:
    if not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ValueError(f"bn_eps={eps!r} must be a number in (0, 1)")
    return partial(nn.BatchNorm2d, eps=float(eps))


def check_common(num_classes: int, in_chans: int, drop_rate: float) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes={num_classes!r} must be a non-negative integer (0: no classifier)")
    positive_int("in_chans", in_chans)
    if not isinstance(drop_rate, (int, float)) or not 0 <= drop_rate < 1:
        raise ValueError(f"drop_rate={drop_rate!r} must be in [0, 1)")


def check_width(width_mult: float, narrowest: int) -> float:
    """``width_mult`` as a float; ``narrowest`` is the table's narrowest layer, which must keep at
    least one channel before any rounding (below that the multiplier no longer scales anything)."""
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or width_mult <= 0:
        raise ValueError(f"width_mult={width_mult!r} must be a positive number")
    if width_mult * narrowest < 1:
        raise ValueError(f"width_mult={width_mult!r} must be at least 1/{narrowest} = {1 / narrowest:.4g}: "
                         f"the narrowest layer ({narrowest} channels) must keep one channel")
    return float(width_mult)


def classifier(in_features: int, num_classes: int) -> nn.Module:
    """The final linear layer, or an identity (pooled features out) when ``num_classes == 0``."""
    return nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()


class ConvNet(nn.Module):
    """Base of the zoo's networks: ``stem`` -> ``blocks`` -> head.

    Subclasses build ``self.stem`` and ``self.blocks`` (an ``nn.Sequential``), give the output
    stride and channels of each of ``[stem, *blocks]`` to :meth:`init_features`, and define
    ``_forward_features`` (stem -> blocks -> last conv); :meth:`init_head` builds the common
    pool-dropout-linear head, which families with another head replace along with ``forward_head``.

    With ``features_only=True`` the head is dropped and, as in timm, ``forward`` returns the last
    map at each stride (``feature_info`` lists them), selected by ``out_indices``;
    ``forward_features`` returns that same list, since such a backbone has no single last map
    (its final conv belongs to the dropped head).
    """

    stem: nn.Module
    blocks: nn.Sequential
    num_features: int

    def init_features(
        self,
        strides: Sequence[int],
        channels: Sequence[int],
        features_only: bool,
        out_indices: Sequence[int] | None,
    ) -> None:
        boolean("features_only", features_only)
        names = ["stem"] + [f"blocks.{i}" for i in range(len(self.blocks))]
        last_at_stride: dict[int, int] = {}
        for i, s in enumerate(strides):
            last_at_stride[s] = i
        taps = sorted(last_at_stride.values())
        every = [FeatureInfo(names[i], strides[i], channels[i]) for i in taps]
        rule = (f"must be a non-empty sequence of ints, each indexing one of the {len(every)} feature levels "
                f"(0 to {len(every) - 1}; negative indices count from the end)")
        if out_indices is None:
            out_indices = tuple(range(len(every)))
        if isinstance(out_indices, (str, bytes)) or not isinstance(out_indices, Sequence) or not out_indices:
            raise ValueError(f"out_indices={out_indices!r} {rule}")
        out_indices = tuple(out_indices)
        for i in out_indices:
            if isinstance(i, bool) or not isinstance(i, int) or not -len(every) <= i < len(every):
                raise ValueError(f"out_indices={out_indices!r}: {i!r} is out of range; out_indices {rule}")
        chosen = sorted({i % len(every) for i in out_indices})
        self.features_only = bool(features_only)
        self.feature_info = [every[i] for i in chosen] if features_only else every
        self._taps = frozenset(taps[i] for i in chosen)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The maps listed in ``feature_info``, from the finest to the coarsest."""
        x = self.stem(x)
        maps = [x] if 0 in self._taps else []
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if i in self._taps:
                maps.append(x)
        return maps

    def init_head(self, num_features: int, num_classes: int, drop_rate: float) -> None:
        """The common head: global average pool -> dropout -> linear classifier."""
        self.num_features = num_features
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = classifier(num_features, num_classes)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits (or, with ``pre_logits``, the features the classifier reads) from ``forward_features``' map."""
        if self.features_only:
            raise ValueError(f"{type(self).__name__} was built with features_only=True: it has no head "
                             "(forward returns the feature maps)")
        return self._forward_head(x, pre_logits)

    def _forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x).flatten(1)  # (B, num_features)
        x = self.head_drop(x)
        return x if pre_logits else self.classifier(x)  # (B, num_classes)

    @property
    def in_channels(self) -> int:
        """The input channels the stem expects (``in_chans``)."""
        return next(m for m in self.stem.modules() if isinstance(m, nn.Conv2d)).in_channels

    def _forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem -> blocks -> the family's last conv: the map the head reads. Each family defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define _forward_features")

    @reports_input_channels
    def forward_features(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """The map the head reads, ``(B, num_features or last width, H/32, W/32)``; for a
        ``features_only`` backbone the list of maps ``forward`` returns."""
        if self.features_only:
            return self.feature_maps(x)
        return self._forward_features(x)

    @reports_input_channels
    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.features_only:
            return self.feature_maps(x)
        return self._forward_head(self._forward_features(x))


def drop_head(model: ConvNet, *names: str) -> None:
    """Remove head modules (``features_only`` backbones carry no classifier)."""
    for name in names:
        if hasattr(model, name):
            delattr(model, name)


def cumulative(strides: Sequence[int], start: int = 1) -> list[int]:
    out, s = [], start
    for step in strides:
        s *= step
        out.append(s)
    return out
