"""What every network in the zoo shares: a stem and a flat sequence of blocks (the body, which each
family builds from its paper's table), then either the paper's head (:class:`Classifier`) or, with
``features_only``, the last map at each stride (:class:`Backbone`, timm's ``features_only``).

One constructor for all: :class:`ConvNet` registers the family's :class:`Body` and its feature
levels (the prologue); once the subclass has built its own modules, :meth:`ConvNet.init_weights`
initialises every layer (the epilogue). A family's registry builder returns its classifier or, with
``features_only=True``, its backbone class (:func:`classifier_or_backbone`): both build the same body
with the same function, and the backbone builds no head. Every ``forward`` checks its input once,
first, with :func:`sepconv.layers._input.checked`, which ``torch.fx`` keeps as a call: the models
trace with ``torch.fx.symbolic_trace`` and ``torch.export``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn

from .._util.checks import ArgumentError, boolean, one_of, positive_int
from ..layers import ConvNormAct
from ..layers._input import checked
from .provenance import Provenance

ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "prelu": nn.PReLU}

# A classifier's arguments that only its head uses; a backbone is built without them (as timm's
# features_only drops them). Families with more head arguments add theirs.
HEAD_ARGUMENTS = ("num_classes", "drop_rate")


@dataclass(frozen=True)
class FeatureInfo:
    """One multi-scale output: which module produces it, its stride and its channels."""

    module: str
    stride: int
    channels: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Body:
    """What a family builds from its paper's table: the stem, the blocks, and for each of
    ``[stem, *blocks]`` its stride (relative to its own input) and its output channels."""

    stem: nn.Module
    blocks: list[nn.Module]
    strides: list[int]
    channels: list[int]

    @property
    def width(self) -> int:
        """The channels of the last block's output: what a head reads."""
        return self.channels[-1]


def activation(name: str) -> type[nn.Module]:
    return ACTIVATIONS[one_of("act", name, ACTIVATIONS)]


def batch_norm(eps: float) -> Any:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ArgumentError("bn_eps", f"bn_eps={eps!r} must be a number in (0, 1)")
    return partial(nn.BatchNorm2d, eps=float(eps))


def check_width(width_mult: float, narrowest: int) -> float:
    """``width_mult`` as a float; ``narrowest`` is the table's narrowest layer, which must keep at
    least one channel before any rounding (below that the multiplier no longer scales anything)."""
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or width_mult <= 0:
        raise ArgumentError("width_mult", f"width_mult={width_mult!r} must be a positive number")
    if width_mult * narrowest < 1:
        raise ArgumentError("width_mult", f"width_mult={width_mult!r} must be at least 1/{narrowest} = "
                            f"{1 / narrowest:.4g}: the narrowest layer ({narrowest} channels) must keep one channel")
    return float(width_mult)


def first_conv(in_chans: int, out_channels: int, stride: int = 2, **kwargs: Any) -> ConvNormAct:
    """The stem's first 3x3 conv, the one that reads the image; ``in_chans`` is checked under the
    name the models give it. ``kwargs`` go to :class:`~sepconv.layers.ConvNormAct`."""
    positive_int("in_chans", in_chans)
    return ConvNormAct(in_chans, out_channels, 3, stride, **kwargs)


def check_aux_logits(aux_logits: Any, num_classes: int) -> bool:
    """``aux_logits`` as a bool; auxiliary heads classify, so they need ``num_classes > 0``
    (GoogLeNet, Inception v3)."""
    boolean("aux_logits", aux_logits)
    if aux_logits and num_classes == 0:
        raise ArgumentError("aux_logits", "aux_logits=True needs num_classes > 0 (the auxiliary heads classify)")
    return aux_logits


def classifier_layer(in_features: int, num_classes: int) -> nn.Module:
    """The final linear layer, or an identity (pooled features out) when ``num_classes == 0``."""
    return nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()


def cumulative(strides: Sequence[int], start: int = 1) -> list[int]:
    out, s = [], start
    for step in strides:
        s *= step
        out.append(s)
    return out


def feature_levels(body: Body) -> list[tuple[int, FeatureInfo]]:
    """The last module at each total stride, finest first: its index in ``[stem, *blocks]`` and
    its :class:`FeatureInfo`."""
    names = ["stem"] + [f"blocks.{i}" for i in range(len(body.blocks))]
    strides = cumulative(body.strides)
    last_at_stride = {s: i for i, s in enumerate(strides)}
    return [(i, FeatureInfo(names[i], strides[i], body.channels[i])) for i in sorted(last_at_stride.values())]


def chosen_levels(out_indices: Sequence[int] | None, levels: int) -> list[int]:
    """The levels ``out_indices`` picks out of ``levels`` (all for ``None``), sorted, negative
    indices counting from the end."""
    rule = (f"must be a non-empty sequence of ints, each indexing one of the {levels} feature levels "
            f"(0 to {levels - 1}; negative indices count from the end)")
    if out_indices is None:
        return list(range(levels))
    if isinstance(out_indices, (str, bytes)) or not isinstance(out_indices, Sequence) or not out_indices:
        raise ArgumentError("out_indices", f"out_indices={out_indices!r} {rule}")
    out_indices = tuple(out_indices)
    for i in out_indices:
        if isinstance(i, bool) or not isinstance(i, int) or not -levels <= i < levels:
            raise ArgumentError("out_indices",
                                f"out_indices={out_indices!r}: {i!r} is out of range; out_indices {rule}")
    return sorted({i % levels for i in out_indices})


class ConvNet(nn.Module):
    """Base of the zoo's networks: ``stem`` -> ``blocks``, a family's :class:`Body`, then what a
    subclass adds (:class:`Classifier`: the paper's head; :class:`Backbone`: nothing).

    ``feature_info`` lists the last map at each stride (module, stride, channels), finest first;
    ``in_channels`` is the input channels the stem takes (``in_chans``). A subclass builds its own
    modules after ``super().__init__(body)`` and then calls :meth:`init_weights`, once.
    """

    features_only: ClassVar[bool] = False
    stem: nn.Module
    blocks: nn.Sequential
    provenance: Provenance | None = None  # where it came from; set by the registry's create_model

    def __init__(self, body: Body) -> None:
        super().__init__()
        self.stem = body.stem
        self.blocks = nn.Sequential(*body.blocks)
        self.in_channels = next(m for m in self.stem.modules() if isinstance(m, nn.Conv2d)).in_channels
        self.feature_info = [info for _, info in feature_levels(body)]

    @torch.no_grad()
    def init_weights(self) -> None:
        """torchvision's initialisation of MobileNetV2 and V3 (``torchvision/models/mobilenetv2.py``
        and ``mobilenetv3.py``, the loop at the end of ``__init__``), applied to every layer: conv
        weights Kaiming-normal with fan-out (He et al. 2015, *Delving Deep into Rectifiers*, Section
        2.2: std ``sqrt(2 / fan_out)``), conv biases zero; BatchNorm and GroupNorm ``gamma = 1``,
        ``beta = 0``; linear weights normal with std 0.01, biases zero. PReLU slopes keep 0.25.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


class Classifier(ConvNet):
    """A zoo network with its paper's head; ``forward`` returns a tensor, ``(B, num_classes)`` (or
    ``(B, num_features)``, the pooled features, for ``num_classes=0``).

    As in timm, ``forward`` is ``forward_head(forward_features(x))``: each family's
    ``forward_features`` checks the input and runs stem -> blocks -> its last conv;
    ``forward_head(x, pre_logits=False)`` is, unless a family replaces it, global average pool ->
    dropout -> linear classifier (:meth:`init_head`), and with ``pre_logits`` stops before the
    classifier.
    """

    num_features: int

    def __init__(self, body: Body, num_classes: int, drop_rate: float) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ArgumentError("num_classes",
                                f"num_classes={num_classes!r} must be a non-negative integer (0: no classifier)")
        if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)) or not 0 <= drop_rate < 1:
            raise ArgumentError("drop_rate", f"drop_rate={drop_rate!r} must be in [0, 1)")
        super().__init__(body)
        self.num_classes, self.drop_rate = num_classes, float(drop_rate)

    def init_head(self, num_features: int) -> None:
        """The common head: global average pool -> dropout -> linear classifier."""
        self.num_features = num_features
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(self.drop_rate)
        self.classifier = classifier_layer(num_features, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The map the head reads, ``(B, C, H/32, W/32)``; each family defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward_features")

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits (or, with ``pre_logits``, the features the classifier reads) from ``forward_features``' map."""
        x = self.global_pool(x).flatten(1)  # (B, num_features)
        x = self.head_drop(x)
        return x if pre_logits else self.classifier(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)  # (B, C, H/32, W/32)
        return self.forward_head(x)  # (B, num_classes)


class Backbone(ConvNet):
    """A family's body as a multi-scale backbone (timm's ``features_only``): ``forward`` returns the
    last map at each stride, finest first, of the levels ``out_indices`` picks (default: all);
    ``feature_info`` lists those. It has no head, so ``forward_features`` returns the same list
    (timm's convention) and there is no ``forward_head``.
    """

    features_only: ClassVar[bool] = True

    def __init__(self, body: Body, out_indices: Sequence[int] | None = None) -> None:
        super().__init__(body)
        levels = [feature_levels(body)[i] for i in chosen_levels(out_indices, len(self.feature_info))]
        self.feature_info = [info for _, info in levels]
        self.taps = tuple(i for i, _ in levels)  # the chosen maps' modules, as indices in [stem, *blocks]
        self.init_weights()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = checked(self, x)  # (B, in_chans, H, W)
        x = self.stem(x)  # (B, C_0, H/s_0, W/s_0)
        maps = [x] if 0 in self.taps else []
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)  # (B, C_i, H/s_i, W/s_i)
            if i in self.taps:
                maps.append(x)
        return maps  # one (B, C, H/s, W/s) per feature_info entry

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The maps :meth:`forward` returns."""
        return self.forward(x)


def classifier_or_backbone(
    classifier: Callable[..., Classifier],
    backbone: Callable[..., Backbone],
    features_only: bool,
    out_indices: Sequence[int] | None,
    kwargs: dict[str, Any],
    head_arguments: Sequence[str] = HEAD_ARGUMENTS,
) -> ConvNet:
    """What a family's registry builder returns: ``classifier(**kwargs)`` or, with
    ``features_only``, ``backbone(**kwargs, out_indices=out_indices)`` without the
    ``head_arguments`` (a backbone has no head to give them to).

    A builder takes ``features_only`` and ``out_indices`` itself and is annotated with both classes
    (``-> MobileNetV2 | MobileNetV2Features``): the registry reads the arguments ``create_model``
    accepts from the builder's signature and those of the classes it returns.
    """
    if boolean("features_only", features_only):
        return backbone(**{k: v for k, v in kwargs.items() if k not in head_arguments}, out_indices=out_indices)
    if out_indices is not None:
        raise ArgumentError("out_indices", f"out_indices={out_indices!r} picks a backbone's feature maps: "
                            "it needs features_only=True")
    return classifier(**kwargs)
