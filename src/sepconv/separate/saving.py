"""Separated models in sepconv's checkpoint format.

A separated model's tensors no longer fit the architecture its registry name builds, so
:func:`~sepconv.separate.separate` records what it did in the model's ``sepconv_config`` under
``"separation"``: a list of stages, each ``{"to": ..., "layers": {name: build arguments}}``.
:func:`sepconv.checkpoint.save_model` writes that into the JSON sidecar like any other config;
:func:`sepconv.checkpoint.load_model` (and so ``create_model(weights=...)``) rebuilds the registry
model, replays the stages with empty replacements (:func:`apply_plan`) and loads the tensors
strictly.

Example::

    >>> new, _ = separate(create_model("mobilenet_v1", conv="standard", width_mult=0.25), depth_multiplier=2)
    >>> save_model(new, "sep.safetensors"); type(load_model("sep.safetensors").blocks[0].conv).__name__
    'SeparableConv2d'
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .convert import TARGETS, build
from .core import replace_module

PLAN_KEY = "separation"


def apply_plan(model: nn.Module, stages: list[dict[str, Any]]) -> nn.Module:
    """Replace the convs named in ``stages`` by empty replacements of the recorded form, in place."""
    if not isinstance(stages, list):
        raise ValueError(f"{PLAN_KEY}={stages!r} must be a list of stages {{'to': ..., 'layers': {{...}}}}")
    for stage in stages:
        for name, entry in stage.get("layers", {}).items():
            modules = dict(model.named_modules())
            conv = modules.get(name)
            if not isinstance(conv, nn.Conv2d):
                raise ValueError(f"{PLAN_KEY}: layer {name!r} is not a Conv2d of {type(model).__name__}")
            if entry.get("to") not in TARGETS:
                raise ValueError(f"{PLAN_KEY}: layer {name!r} has to={entry.get('to')!r}; must be one of {TARGETS}")
            replace_module(model, conv, build(conv, **entry))
    config = getattr(model, "sepconv_config", None)
    if config is not None:  # saved again, it still rebuilds
        model.sepconv_config = {**config, PLAN_KEY: stages}
    return model
