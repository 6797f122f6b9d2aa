"""Separated models in sepconv's checkpoint format.

A separated model's tensors no longer fit the architecture its registry name builds, so
:func:`~sepconv.separation.separate` records what it did in the model's ``provenance.separation``:
a list of stages, each ``{"to": ..., "layers": {name: build arguments}}`` (its schema is in
:mod:`sepconv.formats.sidecar`). :func:`sepconv.formats.checkpoint.save_model` writes that into the
JSON sidecar with the rest of the provenance;
:func:`sepconv.formats.checkpoint.load_model` (and so ``create_model(weights=...)``) rebuilds the registry
model, replays the stages with empty replacements (:func:`apply_plan`) and loads the tensors
strictly.

Example::

    >>> new, _ = separate(create_model("mobilenet_v1", conv="standard", width_mult=0.25), depth_multiplier=2)
    >>> save_model(new, "sep.safetensors"); type(load_model("sep.safetensors").blocks[0].conv).__name__
    'SeparableConv2d'
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._util.modules import replace_module
from ..layers import SeparableConv2d, SpatiallySeparableConv2d
from ..layers.padding import Padding
from ..layers.permuted import PermutedGroupedConv2d

PLAN_KEY = "separation"
TARGETS = ("depthwise", "spatial", "grouped")


def padding_of(conv: nn.Conv2d) -> Padding:
    """The ``padding`` argument that rebuilds ``conv``'s padding in a sepconv layer."""
    if getattr(conv, "tf_same", False):
        return "tf_same"
    if isinstance(conv.padding, str):  # torch's "same" (stride 1) or "valid"; sepconv's agree
        return conv.padding
    return tuple(conv.padding)


def build(conv: nn.Conv2d, to: str, setting: int, permute_in: bool = True, permute_out: bool = True) -> nn.Module:
    """The empty replacement for ``conv`` (for loading a saved separated model)."""
    bias = conv.bias is not None
    pad = padding_of(conv)
    if to == "depthwise":
        module = SeparableConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, pad, setting,
                                 conv.dilation, bias=bias)
        padded = [module.dw]
    elif to == "spatial":
        module = SpatiallySeparableConv2d(conv.in_channels, conv.out_channels, conv.kernel_size[0], setting,
                                          conv.stride[0], pad, conv.dilation[0], bias=bias)
        padded = [module.conv_kx1, module.conv_1xk]
    else:
        identity_in = torch.arange(conv.in_channels) if permute_in else None
        identity_out = torch.arange(conv.out_channels) if permute_out else None
        module = PermutedGroupedConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, setting, conv.stride,
                                       pad, conv.dilation, bias, identity_in, identity_out)
        padded = [module.grouped.conv]
    for c in padded:  # reflect/replicate/circular padding commutes with the split (see module docstring)
        c.padding_mode = conv.padding_mode
    return module.to(device=conv.weight.device, dtype=conv.weight.dtype).train(conv.training)


def apply_plan(model: nn.Module, stages: list[dict[str, Any]]) -> nn.Module:
    """Replace the convs named in ``stages`` (checked against the sidecar schema,
    :func:`sepconv.formats.sidecar.validate_sidecar`) by empty replacements of the recorded form,
    in place. The caller records the stages in the model's provenance."""
    for i, stage in enumerate(stages):
        for name, entry in stage["layers"].items():
            conv = dict(model.named_modules()).get(name)
            if not isinstance(conv, nn.Conv2d):
                raise ValueError(f"{PLAN_KEY}[{i}]: layer {name!r} is not a Conv2d of {type(model).__name__}")
            bound = max(conv.in_channels, conv.out_channels) * max(conv.kernel_size)
            if entry["setting"] > bound:  # untrusted: never allocate a replacement larger than any valid one
                raise ValueError(f"{PLAN_KEY}[{i}]: layer {name!r} has setting={entry['setting']!r}, above any "
                                 f"valid one for this conv (at most {bound})")
            try:
                replacement = build(conv, **entry)
            except ValueError as err:
                raise ValueError(f"{PLAN_KEY}[{i}]: layer {name!r}: {err}") from None
            replace_module(model, conv, replacement)
    return model
