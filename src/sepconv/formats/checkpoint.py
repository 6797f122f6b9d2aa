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
import errno
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .._util.checks import ArgumentError
from .._util.io import atomic_write_files, check_output, file_sha256
from ..models.provenance import provenance_of
from ..models.registry import create_model
from .plan import apply_plan
from .sidecar import (
    FORMAT,
    MismatchedSidecar,
    Sidecar,
    parse_sidecar,
    read_sidecar,
    sidecar_label,
    sidecar_path,
    validate_sidecar,
)

__all__ = ["FORMAT", "check_checkpoint_output", "checkpoint_state", "load_model", "load_state_dict_exact",
           "load_with_sidecar", "read_config", "save_model", "save_tensors", "sidecar_path"]


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
    digest: list[str] = []

    def write_tensors(tmp: str) -> None:
        save_tensors(state, tmp, metadata={"format": FORMAT, "model": provenance.model})
        digest.append(file_sha256(tmp))

    def write_sidecar(tmp: str) -> None:
        doc = dataclasses.replace(side, tensors_sha256=digest[0]).to_json()
        Path(tmp).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")

    atomic_write_files({path: write_tensors, sidecar_path(path): write_sidecar})
    return path


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors' ``save_file``, its I/O failures raised as the ``OSError`` they are (a full disk,
    a file too large: same errno) rather than safetensors' own error type."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - SafetensorError carries the OS error in its message
        found = re.search(r"os error (\d+)", str(err))
        code = int(found.group(1)) if found else errno.EIO
        raise OSError(code, os.strerror(code) if found else str(err), str(path)) from None


CheckpointState = Literal["absent", "complete", "unfinished", "other"]


def checkpoint_state(path: str | Path) -> CheckpointState:
    """What is at the checkpoint path ``path`` (``.safetensors``) and its sidecar:

    - ``"absent"``: neither file;
    - ``"complete"``: a sepconv checkpoint whose files belong together (a sidecar older than
      ``tensors_sha256`` counts as belonging);
    - ``"unfinished"``: what a killed write of sepconv's leaves: tensors that sepconv wrote
      (their header says ``format: sepconv``) without a sidecar, or with one recording other
      tensors; or a valid sidecar alone;
    - ``"other"``: anything else (a file sepconv did not write, an unreadable one).
    """
    path = Path(path)
    side = sidecar_path(path)
    has_tensors, has_side = path.is_file(), side.is_file()
    if not path.exists() and not side.exists():
        return "absent"
    if has_tensors and has_side:
        try:
            read_sidecar(path)
            return "complete"
        except MismatchedSidecar:
            return "unfinished"
        except ValueError:
            return "other"
    if has_tensors and not side.exists():
        return "unfinished" if _written_by_sepconv(path) else "other"
    if has_side and not path.exists():
        try:
            parse_sidecar(side.read_text(encoding="utf-8"), side)
            return "unfinished"
        except (OSError, UnicodeDecodeError, ValueError):
            return "other"
    return "other"


def _written_by_sepconv(path: Path) -> bool:
    try:
        with safe_open(str(path), "pt") as f:
            return (f.metadata() or {}).get("format") == FORMAT
    except Exception:  # noqa: BLE001 - any unreadable header: not sepconv's
        return False


def check_checkpoint_output(path: str | Path, argument: str = "out", *, overwrite: bool = False,
                            need_bytes: int | None = None) -> Path:
    """Check, before any work, that a checkpoint can be written at ``path`` (``.safetensors``; its
    sidecar beside it): the suffix, no directory in the way of either file, the folder writable, and
    ``need_bytes`` free where given (:func:`sepconv._util.io.check_output`). A complete checkpoint
    there, or a file sepconv did not write, is replaced only with ``overwrite``; what a killed write
    left (:func:`checkpoint_state` ``"unfinished"``) is replaced without asking."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ArgumentError(argument, f"{argument}={str(path)!r} must end in .safetensors")
    side = sidecar_path(path)
    check_output(path, argument, need_bytes=need_bytes)
    check_output(side, argument)
    state = checkpoint_state(path)
    if state == "complete" and not overwrite:
        raise ArgumentError(argument, f"{argument}={str(path)!r} already holds a sepconv checkpoint (with "
                                      f"{side.name}); pass overwrite=True to replace it")
    if state == "other" and not overwrite:
        there = [p.name for p in (path, side) if p.exists()]
        raise ArgumentError(argument, f"{argument}={str(path)!r}: {' and '.join(there)} already exist"
                                      f"{'s' if len(there) == 1 else ''} and {'is' if len(there) == 1 else 'are'} "
                                      "not a sepconv checkpoint; pass overwrite=True to replace "
                                      f"{'it' if len(there) == 1 else 'them'}")
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
