"""Mapping rows for the units every family shares, in PyTorch and in Keras naming."""

from __future__ import annotations

from torch import nn

from ..layers import ConvNormAct
from ._apply import Entry

TORCH_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# Keras has no num_batches_tracked: the model keeps its own.
KERAS_BN = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance"))


def present(module: nn.Module, name: str) -> bool:
    """Whether ``module.name`` is a real layer (not absent, not an ``nn.Identity`` placeholder)."""
    return not isinstance(getattr(module, name, nn.Identity()), nn.Identity)


def has_expand(block: nn.Module) -> bool:
    return isinstance(getattr(block, "expand", None), ConvNormAct)


def torch_bn(dst: str, src: str) -> list[Entry]:
    return [Entry(f"{dst}.{k}", f"{src}.{k}") for k in TORCH_BN]


def torch_conv_bn(dst: str, conv: str, bn: str) -> list[Entry]:
    """A :class:`ConvNormAct` ``dst`` <- conv ``conv`` and BatchNorm ``bn``."""
    return [Entry(f"{dst}.conv.weight", f"{conv}.weight"), *torch_bn(f"{dst}.norm", bn)]


def torch_affine(dst: str, src: str, convert: str = "copy") -> list[Entry]:
    """A layer with weight and bias (Linear, or a 1x1 conv with bias)."""
    return [Entry(f"{dst}.weight", f"{src}.weight", convert), Entry(f"{dst}.bias", f"{src}.bias")]


def keras_bn(dst: str, layer: str) -> list[Entry]:
    return [Entry(f"{dst}.{ours}", f"{layer}/{theirs}") for ours, theirs in KERAS_BN]


def keras_conv_bn(dst: str, conv: str, bn: str, depthwise: bool = False) -> list[Entry]:
    kind = "keras_depthwise" if depthwise else "keras_conv"
    return [Entry(f"{dst}.conv.weight", f"{conv}/kernel", kind), *keras_bn(f"{dst}.norm", bn)]


def keras_affine(dst: str, layer: str, convert: str) -> list[Entry]:
    return [Entry(f"{dst}.weight", f"{layer}/kernel", convert), Entry(f"{dst}.bias", f"{layer}/bias")]


def has_classifier(model: nn.Module) -> bool:
    return isinstance(getattr(model, "classifier", None), nn.Linear)
