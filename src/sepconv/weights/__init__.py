"""Pretrained weights from torchvision, timm and Keras in sepconv's models, and sepconv's own format.

sepconv downloads nothing; it reads the files users already have and maps every tensor, BatchNorm
running statistics included, onto its models, so that in eval mode their logits are the source
framework's on the same (preprocessed) input. Each source is one module with one name mapping per
model family: :mod:`.torchvision` (MobileNetV2, V3-Large/Small, GoogLeNet, Inception v3, ResNet-18/50/152, AlexNet), :mod:`.timm` (MobileNetV1, V2 at
every width, V3-Large/Small, legacy Xception), :mod:`.keras` (MobileNet at every alpha,
MobileNetV2, V3-Large/Small, Xception). Loading is all-or-nothing and refuses pickles that would
run code.

Example::

    >>> model = create_with_weights("mobilenet_v2", "mobilenet_v2-b0353104.pth", "torchvision")
    >>> model.eval()(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
    >>> save(model, "mnv2.safetensors")  # then sepconv.create_model(weights="mnv2.safetensors")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from .._util.checks import one_of
from ..formats.checkpoint import save_model
from ..models.provenance import provenance_of
from ..models.registry import create_model as build_model
from . import from_keras, from_timm, from_torchvision
from ._apply import CONVERTERS, Entry, LoadReport, Misfit, apply_entries, config_problems, shape

SOURCES: dict[str, ModuleType] = {"torchvision": from_torchvision, "timm": from_timm, "keras": from_keras}
FAMILY_OF_CLASS = {"MobileNetV1": "mobilenet_v1", "MobileNetV1Features": "mobilenet_v1", "MobileNetV2": "mobilenet_v2",
                   "MobileNetV2Features": "mobilenet_v2", "Xception": "xception", "XceptionFeatures": "xception",
                   "GoogLeNet": "googlenet", "GoogLeNetFeatures": "googlenet", "InceptionV3": "inception_v3",
                   "InceptionV3Features": "inception_v3", "AlexNet": "alexnet", "AlexNetFeatures": "alexnet"}
RESNET_OF_BLOCKS = {9: "resnet18", 17: "resnet50", 51: "resnet152"}  # len(model.blocks): the max-pool + residual blocks

__all__ = ["SOURCES", "LoadReport", "create_with_weights", "input_normalization", "load", "read",
           "resolve", "save", "supported"]


def source_module(source: str) -> ModuleType:
    return SOURCES[one_of("source", source, SOURCES)]


def supported() -> dict[str, list[str]]:
    """Per source, the sepconv model names it has weights for, then its own names for them."""
    return {name: [*m.PROFILES, *m.ALIASES] for name, m in SOURCES.items()}


def resolve(source: str, name: str) -> tuple[str, dict[str, Any]]:
    """``(sepconv model name, the arguments the source's weights need)`` for a sepconv name or the
    source's own (``"mobilenetv2_050"`` in timm, ``"MobileNetV2"`` in Keras)."""
    module = source_module(source)
    if name in module.PROFILES:
        return name, dict(module.PROFILES[name])
    if name in module.ALIASES:
        family, extra = module.ALIASES[name]
        return family, {**module.PROFILES[family], **extra}
    raise ValueError(f"model={name!r}: source={source!r} has no weights for it; it covers "
                     f"{', '.join(supported()[source])}")


def family_of(model: nn.Module) -> str:
    provenance = provenance_of(model)
    if provenance is not None:
        return provenance.model
    cls = type(model).__name__
    if cls in ("MobileNetV3", "MobileNetV3Features"):
        return "mobilenet_v3_large" if len(model.blocks) == 15 else "mobilenet_v3_small"
    if cls in ("ResNet", "ResNetFeatures") and len(model.blocks) in RESNET_OF_BLOCKS:
        return RESNET_OF_BLOCKS[len(model.blocks)]
    if cls not in FAMILY_OF_CLASS:
        raise ValueError(f"model is a {cls}; pretrained weights map onto sepconv's "
                         f"{', '.join(sorted({*FAMILY_OF_CLASS, 'MobileNetV3', 'ResNet'}))}")
    return FAMILY_OF_CLASS[cls]


def read(source: str, path_or_mapping: str | Path | Mapping[str, Any] | Any) -> dict[str, torch.Tensor]:
    """The source's tensors by its own names (Keras: ``"<layer>/<variable>"``), read safely."""
    return source_module(source).read(path_or_mapping)


def load(model: nn.Module, source: str, path_or_mapping: str | Path | Mapping[str, Any] | Any,
         strict: bool = True) -> LoadReport:
    """Load a torchvision, timm or Keras checkpoint into a sepconv ``model``; all of it or nothing.

    ``path_or_mapping``: a ``.pth``/``.pt``/``.bin`` (read with ``torch.load(weights_only=True)``)
    or ``.safetensors`` file for torchvision and timm; a ``.keras``, ``.weights.h5`` or Keras 2
    ``.h5`` file for Keras; or a mapping of the source's names to arrays (for Keras, also a Keras
    model). With ``strict`` (the default) every tensor of the file must map onto the model and
    every model tensor must be in the file, and the model must be configured as the source
    computes (:func:`resolve` gives the arguments; Keras: ``padding="tf_same"``, ``bn_eps=1e-3``).
    ``strict=False`` skips missing and unexpected tensors and the configuration check. Anything
    else (mis-shaped tensors, an unsafe pickle, a file for another model or width) raises one
    ``ValueError`` naming the tensors, and the model keeps exactly the weights it had.

    Example::

        >>> model = sepconv.create_model("mobilenet_v2", **resolve("keras", "mobilenet_v2")[1])
        >>> load(model, "keras", "mobilenet_v2.weights.h5").loaded
        262
    """
    module = source_module(source)
    where = path_or_mapping if isinstance(path_or_mapping, (str, Path)) else type(path_or_mapping).__name__
    return _load(model, source, module.read(path_or_mapping), f"{source} weights {str(where)!r}", strict)


def _load(model: nn.Module, source: str, tensors: dict[str, torch.Tensor], where: str, strict: bool) -> LoadReport:
    module = source_module(source)
    family = family_of(model)
    if family not in module.PROFILES:
        raise ValueError(f"source={source!r} has no {family} weights; it covers {', '.join(module.PROFILES)}")
    if strict:
        problems = config_problems(model, module.PROFILES[family])
        if problems:
            needs = ", ".join(f"{k}={v!r}" for k, v in module.PROFILES[family].items())
            raise ValueError(f"{where}: this {family} computes differently from {source}'s "
                             f"({'; '.join(problems)}): build it with create_model({family!r}, {needs}), or "
                             f"use create_model(..., weights=..., weights_source={source!r}), which does")
    rows = module.entries(model, family, list(tensors))
    return apply_entries(model, rows, tensors, strict=strict, where=where,
                         hint=lambda: _hint(model, source, family, tensors, rows))


def _hint(model: nn.Module, source: str, family: str, tensors: dict[str, torch.Tensor], rows: list[Entry]) -> str:
    """A sentence on the likely cause of a mismatch: another source's layout, or another width."""
    for other, module in SOURCES.items():
        if other != source and family in module.PROFILES:
            try:
                theirs = module.entries(model, family, list(tensors))
            except ValueError:
                continue
            if theirs and all(r.src in tensors for r in theirs):
                return f"; these look like {other} weights: pass source={other!r}"
    own = model.state_dict()
    for r in rows:
        if r.src in tensors:
            try:
                fits = shape(CONVERTERS[r.convert](tensors[r.src])) == shape(own[r.dst])
            except Misfit:
                fits = False
            if not fits:
                return (f"; the first that differs, {r.src} {shape(tensors[r.src])} for {r.dst} "
                        f"{shape(own[r.dst])}, suggests weights for another width_mult or num_classes")
    if not any(r.src in tensors for r in rows):
        return "; no tensor name matches: weights for another model?"
    return ""


def create_with_weights(name: str | None, weights: str | Path | Mapping[str, Any], weights_source: str,
                        strict: bool = True, **kwargs: Any) -> nn.Module:
    """``sepconv.create_model(name, weights=..., weights_source=...)``: build the model as the source
    computes (padding, BatchNorm eps, activation, width rounding; see :func:`resolve`) and load.

    ``name`` is a sepconv model name or the source's own (``"mobilenetv2_050"``, ``"MobileNetV2"``).
    ``kwargs`` override the source's settings; ``num_classes``, when not given, is read from the
    file's classifier (0, no classifier, for Keras ``include_top=False`` files). The model remembers
    its arguments and, in ``model.provenance.weights``, where its weights came from, so :func:`save`
    writes a checkpoint that ``create_model(weights=path)`` rebuilds.
    """
    if name is None:
        raise ValueError(f"weights_source={weights_source!r} needs a model name (e.g. 'mobilenet_v2')")
    family, config = resolve(weights_source, name)
    module = source_module(weights_source)
    tensors = module.read(weights)
    config.update(kwargs)
    if "num_classes" not in config:
        classifier = tensors.get(module.CLASSIFIER[family])
        out_axis = -1 if weights_source == "keras" else 0  # Keras kernels are (..., in, out)
        config["num_classes"] = 0 if classifier is None else int(classifier.shape[out_axis])
    model = build_model(family, **config)
    where = weights if isinstance(weights, (str, Path)) else type(weights).__name__
    report = _load(model, weights_source, tensors, f"{weights_source} weights {str(where)!r}", strict)
    model.provenance = dataclasses.replace(model.provenance, weights={
        "source": weights_source,
        "source_model": name,
        "file": str(weights) if isinstance(weights, (str, Path)) else None,
        "loaded": report.loaded,
        "skipped_missing": report.missing,
        "skipped_unexpected": report.unexpected,
        # JSON types throughout, so that a checkpoint's sidecar gives the same dict back
        "input_normalization": {k: list(v) for k, v in input_normalization(weights_source, family).items()},
    })
    return model


def input_normalization(source: str, name: str) -> dict[str, tuple[float, ...]]:
    """The mean and std (per RGB channel, for pixels scaled to [0, 1]) the source's weights expect:
    ``x = (pixels / 255 - mean) / std``. Keras: 0.5 and 0.5 (``x / 127.5 - 1``, which Keras'
    MobileNetV3 does inside the model); torchvision: ImageNet's; timm: each model's pretrained_cfg."""
    family, _ = resolve(source, name)
    return source_module(source).normalization(family)


def save(model: nn.Module, path: str | Path) -> Path:
    """Write ``model`` as safetensors + JSON sidecar (its provenance: name, arguments, where its
    weights came from) so that ``sepconv.create_model(weights=path)`` rebuilds it with no other
    input: :func:`sepconv.formats.checkpoint.save_model`."""
    return save_model(model, path)
