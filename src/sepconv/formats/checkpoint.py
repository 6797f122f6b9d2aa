"""sepconv's own checkpoint format: safetensors for tensors, a JSON sidecar for everything else.

``model.safetensors`` holds the state dict; ``model.json`` beside it holds the model's
:class:`~sepconv.models.provenance.Provenance` (``{"format": "sepconv", "model": name, "kwargs":
{...}, ...}``, schema in :mod:`sepconv.formats.sidecar`) so that :func:`load_model` rebuilds the
model with no other input. Writes are atomic (temporary file in the same directory, then rename), so
a failed or killed run never leaves a half-written file in place of a good one.

Example::

    >>> save_model(create_model("mobilenet_v2", width_mult=0.35), "m.safetensors")
    PosixPath('m.safetensors')
    >>> load_model("m.safetensors").provenance.kwargs
    {'width_mult': 0.35}
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .._util.checks import ArgumentError
from .._util.io import atomic_write, atomic_write_text
from ..models.provenance import provenance_of
from ..models.registry import create_model
from .plan import apply_plan
from .sidecar import FORMAT, Sidecar, read_sidecar, sidecar_label, sidecar_path, validate_sidecar

__all__ = ["FORMAT", "load_model", "load_state_dict_exact", "load_with_sidecar", "read_config", "save_model",
           "sidecar_path"]


def save_model(model: nn.Module, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save ``model``'s state dict to ``path`` (.safetensors) and its provenance to the JSON sidecar.

    The model must come from :func:`sepconv.create_model` (it carries ``provenance``). ``extra``
    adds sidecar keys (``train``, ``ema``; :data:`sepconv.formats.sidecar.SCHEMA`); the document
    is validated before anything is written, so sepconv never writes a sidecar it would refuse.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ArgumentError("path", f"path={str(path)!r} must end in .safetensors")
    provenance = provenance_of(model)
    if provenance is None:
        raise ValueError(f"model is a {type(model).__name__} that sepconv.create_model did not build (it has no "
                         "provenance), so it cannot be rebuilt from a file")
    side = validate_sidecar({**Sidecar(provenance).to_json(), **(extra or {})}, sidecar_path(path))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT, "model": provenance.model}))
    atomic_write_text(sidecar_path(path), json.dumps(side.to_json(), indent=2, sort_keys=True) + "\n")
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    """The validated sidecar of checkpoint ``path`` as its JSON document (:func:`read_sidecar` gives it typed)."""
    return read_sidecar(path).to_json()


def load_model(path: str | Path, name: str | None = None, **overrides: Any) -> nn.Module:
    """Rebuild the model a sepconv checkpoint describes, replay its separation stages and load its
    tensors (strictly). ``overrides`` replace arguments the sidecar gives; ``name``, when given,
    must be the model the checkpoint holds."""
    return load_with_sidecar(path, name, **overrides)[0]


def load_with_sidecar(path: str | Path, name: str | None = None, **overrides: Any) -> tuple[nn.Module, Sidecar]:
    """:func:`load_model`, and the validated sidecar it was built from."""
    side = read_sidecar(path)
    recorded = side.provenance
    if name is not None and name != recorded.model:
        raise ArgumentError("name", f"weights={str(path)!r} holds a {recorded.model}, not a {name}")
    try:
        model = create_model(recorded.model, **{**recorded.kwargs, **overrides})
        if recorded.separation:  # written after sepconv.separate: replay its layer replacements first
            apply_plan(model, recorded.separation)
    except (TypeError, ValueError) as err:  # the sidecar passed the schema but does not build
        raise ValueError(f"{sidecar_label(path)}: cannot build the model it describes ({err})") from None
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{str(path)!r}: not a readable safetensors file ({e})") from None
    load_state_dict_exact(model, state, str(path))
    model.provenance = dataclasses.replace(model.provenance, weights=recorded.weights,
                                           separation=recorded.separation)
    return model, side


def load_state_dict_exact(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` strictly; on any mismatch raise one ValueError listing names, touching nothing."""
    check_state_dict(model, state, where)
    model.load_state_dict(state, strict=True)


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Raise one ValueError listing every missing, unexpected and mis-shaped tensor of ``state`` for
    ``model`` (checked only: nothing is loaded)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
        if items:
            problems.append(f"{len(items)} {label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}")
    if problems:
        raise ValueError(f"{where}: weights do not fit the model ({'; '.join(problems)})")
