"""sepconv's own checkpoint format: safetensors for tensors, a JSON sidecar for everything else.

``model.safetensors`` holds the state dict; ``model.json`` beside it holds ``{"model": name,
"kwargs": {...}, "format": "sepconv", ...}`` so that :func:`load_model` rebuilds the model with no
other input. Writes are atomic (temporary file in the same directory, then rename), so a failed or
killed run never leaves a half-written file in place of a good one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .._util.io import atomic_write, atomic_write_text

FORMAT = "sepconv"


def sidecar(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_model(model: nn.Module, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save ``model``'s state dict to ``path`` (.safetensors) and its config to the JSON sidecar.

    The model must come from :func:`sepconv.create_model` (it carries ``sepconv_config``).
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path={str(path)!r} must end in .safetensors")
    config = getattr(model, "sepconv_config", None)
    if config is None:
        raise ValueError("model was not built by sepconv.create_model, so it cannot be rebuilt from a file")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, **config, **(extra or {})}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT, "model": config["model"]}))
    atomic_write_text(sidecar(path), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights={str(path)!r}: no such file")
    side = sidecar(path)
    if not side.is_file():
        raise ValueError(f"weights={str(path)!r}: no JSON sidecar {side.name} beside it (written by sepconv.weights.save)")
    try:
        config = json.loads(side.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{side}: not valid JSON ({e})") from None
    if config.get("format") != FORMAT or "model" not in config:
        raise ValueError(f"{side}: not a sepconv checkpoint sidecar (no format/model keys)")
    return config


def load_model(path: str | Path, name: str | None = None, **overrides: Any) -> nn.Module:
    """Rebuild the model a sepconv checkpoint describes and load its tensors (strictly)."""
    from ..models.registry import create_model

    config = read_config(path)
    if name is not None and name != config["model"]:
        raise ValueError(f"weights={str(path)!r} holds a {config['model']}, not a {name}")
    model = create_model(config["model"], **{**config.get("kwargs", {}), **overrides})
    if config.get("separation"):  # written after sepconv.separate: replay its layer replacements first
        from .plan import apply_plan

        apply_plan(model, config["separation"])
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"weights={str(path)!r}: not a readable safetensors file ({e})") from None
    load_state_dict_exact(model, state, str(path))
    if config.get("weights"):  # where imported weights came from: sepconv.weights.save writes it again
        model.sepconv_weights = config["weights"]
    return model


def load_state_dict_exact(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` strictly; on any mismatch raise one ValueError listing names, touching nothing."""
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
    model.load_state_dict(state, strict=True)
