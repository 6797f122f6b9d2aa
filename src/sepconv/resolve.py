"""Resolve a MODEL argument of the command line into a module: a name, a callable or a checkpoint.

Three forms are accepted, tried in this order:

1. a sepconv checkpoint, a path ending in ``.safetensors`` with its JSON sidecar
   (:func:`sepconv.formats.checkpoint.load_model`), e.g. ``runs/digits/model.safetensors``;
2. a registered model with optional arguments (:func:`sepconv.models.parse_spec`), e.g.
   ``mobilenet_v2`` or ``mobilenet_v1:width_mult=0.5,num_classes=10``;
3. ``package.module:callable``, a user's own code: the module is imported (the current directory
   first on ``sys.path``, as ``python -m`` does) and the callable is called with no arguments; it
   must return an ``nn.Module`` (a class with a no-argument constructor works too).

Example::

    >>> model, what = load_model_spec("mobilenet_v1:width_mult=0.25")
    >>> what, model(torch.zeros(1, 3, 224, 224)).shape
    ('mobilenet_v1:width_mult=0.25', torch.Size([1, 1000]))
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from .formats.checkpoint import load_model, read_config, sidecar
from .models.registry import create_model as build_model
from .models.registry import list_models, model_entry, parse_spec
from .weights import create_with_weights

__all__ = ["FORMS", "create_model", "default_input_shape", "load_model_spec"]

FORMS = ("a registered name with optional arguments (mobilenet_v1:width_mult=0.5)",
         "package.module:callable returning an nn.Module",
         "a sepconv checkpoint path ending in .safetensors")


def load_model_spec(spec: str) -> tuple[nn.Module, str]:
    """Build the model ``spec`` names; return it with a one-line description of where it came from.

    Raises ``ValueError`` naming the spec and the accepted forms for anything that is none of them
    (and the underlying reason for a form that fails: unknown argument, import error, bad file).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"model={spec!r} must be {_forms()}")
    spec = spec.strip()
    if spec.endswith(".safetensors"):
        model = load_model(spec)
        return model, f"{read_config(spec)['model']} from {spec}"
    name, _, rest = spec.partition(":")
    if name in list_models():
        name, kwargs = parse_spec(spec)
        return build_model(name, **kwargs), spec
    if rest and _is_dotted(name) and _is_dotted(rest):
        return _from_callable(spec, name, rest), spec
    raise ValueError(f"model={spec!r} is not {_forms()}; registered names: {', '.join(list_models())}")


def create_model(name: str | None = None, weights: str | Path | Mapping[str, Any] | None = None,
                 weights_source: str | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model, optionally with weights: sepconv's public entry point.

    ``weights`` loads a checkpoint: a sepconv ``.safetensors`` file (with its JSON sidecar, which
    names the model and its arguments, so ``name`` may be ``None``), or a foreign checkpoint with
    ``weights_source`` "torchvision", "timm" or "keras" (see :mod:`sepconv.weights`).

    Example::

        >>> create_model("mobilenet_v2", width_mult=0.5, num_classes=10)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 10])
    """
    if weights is None:
        if weights_source is not None:
            raise ValueError(f"weights_source={weights_source!r} needs weights= (the file to read)")
        if name is None:
            raise ValueError("name=None: give a registered model name, or weights= a sepconv checkpoint")
        return build_model(name, **kwargs)
    if weights_source is None:
        foreign = "; for torchvision, timm or Keras weights pass weights_source='torchvision', 'timm' or 'keras'"
        if not isinstance(weights, (str, Path)):
            raise ValueError(f"weights is a {type(weights).__name__}, not a sepconv checkpoint's path{foreign}")
        if Path(weights).is_file() and not sidecar(weights).is_file():
            raise ValueError(f"weights={str(weights)!r}: no JSON sidecar {sidecar(weights).name} beside it, so not "
                             f"a sepconv checkpoint{foreign}")
        return load_model(weights, name=name, **kwargs)
    return create_with_weights(name, weights, weights_source, **kwargs)


def default_input_shape(model: nn.Module, batch: int = 1) -> tuple[int, int, int, int]:
    """``(batch, C, S, S)``: ``S`` is a zoo model's ``img_size`` argument or registry input size
    (224 for other models), ``C`` the first convolution's input channels (3 when it has none).

    Example::

        >>> default_input_shape(create_model("mobilefacenet"))
        (1, 3, 112, 112)
    """
    config = getattr(model, "sepconv_config", None)
    size = 224
    if config:
        entry = model_entry(config["model"])
        size = int({**entry.defaults, **config.get("kwargs", {})}.get("img_size", entry.input_size))
    conv = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return (batch, conv.in_channels if conv is not None else 3, size, size)


def _forms() -> str:
    return "one of: " + "; ".join(FORMS)


def _is_dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _from_callable(spec: str, module_name: str, attr_path: str) -> nn.Module:
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does, so a user's own package is found
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as e:  # any error while importing user code is reported on one line
        raise ValueError(f"model={spec!r}: cannot import {module_name!r} ({type(e).__name__}: {e})") from None
    for attr in attr_path.split("."):
        if not hasattr(target, attr):
            raise ValueError(f"model={spec!r}: {module_name!r} has no attribute {attr_path!r}")
        target = getattr(target, attr)
    if isinstance(target, nn.Module):
        return target
    if not callable(target):
        raise ValueError(f"model={spec!r}: {attr_path!r} is a {type(target).__name__}, not a callable")
    try:
        model = target()
    except Exception as e:
        raise ValueError(f"model={spec!r}: calling {attr_path}() failed ({type(e).__name__}: {e})") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"model={spec!r}: {attr_path}() returned a {type(model).__name__}, not an nn.Module")
    return model
