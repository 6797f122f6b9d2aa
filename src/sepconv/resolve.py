"""One resolver: a model reference (and optional weights) -> :class:`Resolved` ``(model,
description, input_shape)``. Every command that takes a MODEL uses :func:`resolve_model`;
:func:`create_model` (``sepconv.create_model``) is the public façade for building and loading.

A reference is tried as, in this order:

1. a run directory written by ``sepconv train`` (``runs/mnv2``): its ``model.safetensors``, or
   ``ema.safetensors`` with ``ema=True``; an output folder of ``sepconv optimize`` (its
   ``report.json`` says ``format: "sepconv-deploy"``, :mod:`sepconv.formats.manifest`) resolves the
   same way, to the fp32 source model it keeps (what it deployed runs with :func:`sepconv.deploy.load`);
2. a sepconv checkpoint, a path ending in ``.safetensors`` with its JSON sidecar
   (:mod:`sepconv.formats.checkpoint`; a separated model too), e.g. ``runs/mnv2/model.safetensors``;
3. a registered model with optional arguments (:func:`sepconv.models.parse_spec`), e.g.
   ``mobilenet_v1:width_mult=0.5,num_classes=10``; ``weights`` (a sepconv checkpoint, or with
   ``weights_source`` a torchvision/timm/Keras file) are loaded into it;
4. ``package.module:callable``, a user's own code: the module is imported (the current directory
   first on ``sys.path``, as ``python -m`` does) and the callable is called with no arguments; it
   must return an ``nn.Module`` (a class with a no-argument constructor works too).

The input shape (:func:`default_input_shape`) is ``(1, C, S, S)``: ``S`` a zoo model's ``img_size``
argument or its registry input size, ``C`` its ``in_chans``; for other modules ``S`` is 224 and ``C``
the first convolution's input channels. A super-resolution model's registry input size is the
low-resolution image's side; one that takes the image upscaled already (``sr_input="upsampled"``,
SRCNN) gets ``S`` times its ``scale``.

Example::

    >>> r = resolve_model("mobilefacenet:img_size=96")
    >>> r.description, r.input_shape, r.model.eval()(torch.zeros(r.input_shape)).shape
    ('mobilefacenet:img_size=96', (1, 3, 96, 96), torch.Size([1, 128]))
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ._util.checks import ArgumentError, positive_int
from .formats.checkpoint import load_with_sidecar
from .formats.manifest import is_deploy_folder
from .formats.sidecar import Sidecar, sidecar_path
from .models.provenance import provenance_of
from .models.registry import argument_defaults, list_models, model_entry, parse_spec
from .models.registry import create_model as build_model
from .weights import create_with_weights

__all__ = ["FORMS", "Resolved", "create_model", "default_input_shape", "load_model_spec", "resolve_model",
           "run_checkpoint"]

FORMS = ("a registered name with optional arguments (mobilenet_v1:width_mult=0.5)",
         "package.module:callable returning an nn.Module",
         "a sepconv checkpoint path ending in .safetensors",
         "a run directory written by sepconv train")
DEFAULT_SIZE = 224  # the input size of a module the registry did not build
FOREIGN = "; for torchvision, timm or Keras weights pass weights_source='torchvision', 'timm' or 'keras'"


@dataclass(frozen=True)
class Resolved:
    """A model, where it came from in one line, and the input it takes by default, ``(1, C, H, W)``.

    ``checkpoint`` and ``sidecar`` are the sepconv checkpoint read and its validated sidecar, when
    the reference was one (or a run directory).
    """

    model: nn.Module
    description: str
    input_shape: tuple[int, int, int, int]
    checkpoint: Path | None = None
    sidecar: Sidecar | None = None

    def shape(self, batch: int = 1, input_size: int | None = None) -> tuple[int, int, int, int]:
        """:attr:`input_shape` with ``batch`` images of ``input_size`` x ``input_size`` pixels
        (default: its own size).

        Example::

            >>> resolve_model("xception").shape(batch=8, input_size=96)
            (8, 3, 96, 96)
        """
        _, c, h, w = self.input_shape
        positive_int("batch", batch)
        if input_size is not None:
            h = w = positive_int("input_size", input_size)
        return (batch, c, h, w)


def resolve_model(model: str | Path | nn.Module, weights: str | Path | Mapping[str, Any] | None = None,
                  weights_source: str | None = None, *, ema: bool = False) -> Resolved:
    """Build or load the model ``model`` refers to (see the module docstring for the forms).

    Raises ``ValueError`` naming the reference and the accepted forms for anything that is none of
    them, and the underlying reason for a form that fails (unknown argument, import error, a
    checkpoint that does not validate or fit).
    """
    if isinstance(model, nn.Module):
        if weights is not None or weights_source is not None or ema:
            raise ArgumentError("weights", "weights, weights_source and ema apply to a model reference, not to "
                                f"the {type(model).__name__} given")
        return Resolved(model, type(model).__name__, default_input_shape(model))
    if not isinstance(model, (str, Path)) or not str(model).strip():
        raise ArgumentError("model", f"model={model!r} must be {_forms()}")
    reference = str(model).strip()
    checkpoint = _checkpoint_of(reference, ema)
    if checkpoint is not None:
        if weights is not None or weights_source is not None:
            raise ArgumentError("weights", f"weights={_given(weights)}: model={reference!r} is a sepconv checkpoint "
                                "and brings its own weights; give weights with a registered model name")
        built, side = load_with_sidecar(checkpoint)
        return Resolved(built, f"{side.provenance.model} from {checkpoint}", default_input_shape(built),
                        checkpoint, side)
    name, _, rest = reference.partition(":")
    if name in list_models():
        name, kwargs = parse_spec(reference)
        built = create_model(name, weights=weights, weights_source=weights_source, **kwargs)
        with_weights = f" with {weights_source + ' ' if weights_source else ''}weights {_given(weights)}"
        return Resolved(built, reference + (with_weights if weights is not None else ""), default_input_shape(built))
    if rest and _is_dotted(name) and _is_dotted(rest):
        if weights is not None or weights_source is not None:
            raise ArgumentError("weights", f"weights={_given(weights)}: weights load into a registered model; "
                                f"model={reference!r} is the user's own code, which builds its own")
        built = _from_callable(reference, name, rest)
        return Resolved(built, reference, default_input_shape(built))
    raise ArgumentError("model", f"model={reference!r} is not {_forms()}; registered names: "
                                 f"{', '.join(list_models())}")


def run_checkpoint(directory: str | Path, ema: bool = False) -> Path:
    """The model file of a run directory ``sepconv train`` wrote: ``model.safetensors``, or with
    ``ema`` the EMA weights' ``ema.safetensors``."""
    path = Path(directory) / ("ema.safetensors" if ema else "model.safetensors")
    if not path.is_file():
        raise ArgumentError("model", f"model={str(directory)!r} is a directory without {path.name}: not a sepconv "
                                     "run directory" + (" trained with an EMA of the weights" if ema else ""))
    return path


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
            raise ArgumentError("weights_source", f"weights_source={weights_source!r} needs weights, the file to read")
        if name is None:
            raise ArgumentError("name", "name=None: give a registered model name, or weights= a sepconv checkpoint")
        return build_model(name, **kwargs)
    if weights_source is not None:
        return create_with_weights(name, weights, weights_source, **kwargs)
    if not isinstance(weights, (str, Path)):
        raise ArgumentError("weights", f"weights is a {type(weights).__name__}, not a sepconv checkpoint's path{FOREIGN}")
    if not Path(weights).is_file():
        raise ArgumentError("weights", f"weights={str(weights)!r}: no such file")
    if not sidecar_path(weights).is_file():
        raise ArgumentError("weights", f"weights={str(weights)!r}: no JSON sidecar {sidecar_path(weights).name} "
                                       f"beside it, so not a sepconv checkpoint{FOREIGN}")
    return load_with_sidecar(weights, name=name, **kwargs)[0]


def default_input_shape(model: nn.Module, batch: int = 1) -> tuple[int, int, int, int]:
    """``(batch, C, S, S)``: ``S`` is a zoo model's ``img_size`` argument or registry input size
    (224 for other models), ``C`` its ``in_chans`` (other models: the first convolution's input
    channels, 3 when it has none).

    Example::

        >>> default_input_shape(create_model("mobilefacenet", img_size=96))
        (1, 3, 96, 96)
    """
    positive_int("batch", batch)
    conv = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    channels, size = conv.in_channels if conv is not None else 3, DEFAULT_SIZE
    provenance = provenance_of(model)
    if provenance is not None:
        entry = model_entry(provenance.model)
        arguments = {**argument_defaults(entry), **provenance.kwargs}
        size = arguments.get("img_size", entry.input_size)
        channels = arguments.get("in_chans", channels)
        if entry.sr_input == "upsampled":  # input_size is the low-resolution side; the input is upscaled already
            size *= arguments["scale"]
    return (batch, int(channels), int(size), int(size))


def load_model_spec(spec: str) -> tuple[nn.Module, str]:
    """Deprecated: ``resolve_model(spec)`` gives the model, its description and its input shape."""
    warnings.warn("sepconv.resolve.load_model_spec is deprecated; use resolve_model(spec), whose result also "
                  "has the input shape", DeprecationWarning, stacklevel=2)
    resolved = resolve_model(spec)
    return resolved.model, resolved.description


def _checkpoint_of(reference: str, ema: bool) -> Path | None:
    """The sepconv checkpoint file ``reference`` names (a run directory's model), or ``None``."""
    path = Path(reference)
    try:
        is_dir = path.is_dir()
    except OSError:  # a name too long to be a path (a spec with a huge value): not a folder
        is_dir = False
    if is_dir and reference not in list_models():  # a registry name wins over a folder of that name
        if is_deploy_folder(path) and not (path / "model.safetensors").is_file():
            raise ArgumentError("model", f"model={reference!r} is a sepconv optimize output without its fp32 source "
                                         "(the model was not from sepconv's zoo): run what it holds with "
                                         "sepconv.deploy.load or sepconv bench")
        return run_checkpoint(path, ema)
    if ema:
        raise ArgumentError("ema", f"ema=True picks a run directory's EMA weights; model={reference!r} is no "
                                   "directory")
    return path if reference.endswith(".safetensors") else None


def _given(weights: Any) -> str:
    return repr(str(weights)) if isinstance(weights, (str, Path)) else type(weights).__name__


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
        raise ArgumentError("model", f"model={spec!r}: cannot import {module_name!r} ({type(e).__name__}: {e})") from None
    for attr in attr_path.split("."):
        if not hasattr(target, attr):
            raise ArgumentError("model", f"model={spec!r}: {module_name!r} has no attribute {attr_path!r}")
        target = getattr(target, attr)
    if isinstance(target, nn.Module):
        return target
    if not callable(target):
        raise ArgumentError("model", f"model={spec!r}: {attr_path!r} is a {type(target).__name__}, not a callable")
    try:
        model = target()
    except Exception as e:
        raise ArgumentError("model", f"model={spec!r}: calling {attr_path}() failed ({type(e).__name__}: {e})") from None
    if not isinstance(model, nn.Module):
        raise ArgumentError("model", f"model={spec!r}: {attr_path}() returned a {type(model).__name__}, "
                                     "not an nn.Module")
    return model
