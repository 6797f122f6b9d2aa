"""Training checkpoints: everything ``--resume`` needs to continue a run exactly.

A checkpoint in the run directory is:

- ``model-<step>.safetensors`` (+ ``.json`` sidecar): the weights, loadable on their own with
  :func:`sepconv.formats.checkpoint.load_model`; ``ema-<step>.*`` likewise for the EMA weights;
- ``optim-<step>.safetensors``: the optimizer's tensors (momentum buffers, Adam moments),
  named ``state.<param index>.<key>``;
- ``state.json``: the commit record. It names those files and holds every scalar: epoch and
  step, the optimizer's param groups and scalar state, the LR schedule, the AMP scaler, the
  run's configuration and metrics, and the RNG states (torch, CUDA, NumPy, Python; byte states
  base64-encoded).

Every file is written atomically (temporary file, then rename), and ``state.json`` last: until
it is renamed into place the previous checkpoint stays the current one and is untouched, so a
run killed at any moment (SIGKILL included) leaves loadable files and a consistent checkpoint.
Only then are ``model.safetensors``/``ema.safetensors`` (stable names, hard links to the newest
files) updated and the superseded step files removed.

Example::

    >>> save_checkpoint(out, step=10, model=model, optimizer=opt, payload={"epoch": 1})  # doctest: +SKIP
    >>> read_state(out)["files"]["model"]  # doctest: +SKIP
    'model-00000010.safetensors'
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from .._util.io import atomic_write, atomic_write_text
from ..formats.checkpoint import check_state_dict, save_model, save_tensors

__all__ = ["STATE_FILE", "load_checkpoint", "prune", "read_state", "rng_state", "save_checkpoint", "set_rng_state"]

STATE_FILE = "state.json"
STATE_VERSION = 1
_STEP_FILES = ("model", "ema", "optim")


# ---- RNG states ------------------------------------------------------------------------------

def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def rng_state() -> dict[str, Any]:
    """Every global RNG's state as JSON-able data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": _b64(torch.get_rng_state()),
        "numpy": {"kind": kind, "keys": base64.b64encode(np.asarray(keys, np.uint32).tobytes()).decode("ascii"),
                  "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(_unb64(state["torch"]))
    n = state["numpy"]
    keys = np.frombuffer(base64.b64decode(n["keys"]), dtype=np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([_unb64(s) for s in state["cuda"]])


# ---- optimizer state: tensors to safetensors, scalars to JSON ---------------------------------

def split_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` as (tensors keyed ``state.<i>.<key>``, the JSON-able rest)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`split_optimizer_state`: a dict for ``optimizer.load_state_dict``."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


# ---- save / load -----------------------------------------------------------------------------

def _step_name(kind: str, step: int) -> str:
    return f"{kind}-{step:08d}.safetensors"


def save_checkpoint(out: str | Path, *, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    payload: dict[str, Any], ema: nn.Module | None = None, model_extra: dict[str, Any] | None = None
                    ) -> Path:
    """Write a checkpoint of ``step`` into ``out`` (see the module docstring); return ``state.json``.

    ``payload`` (JSON-able: epoch, schedule, scaler, config, metrics, ...) is stored in
    ``state.json`` beside the file names, the optimizer's scalars and the RNG states.
    ``model`` and ``ema`` must come from :func:`sepconv.create_model` (unwrapped from DDP).
    """
    out = Path(out)
    files = {"model": _step_name("model", step), "optim": _step_name("optim", step)}
    save_model(model, out / files["model"], extra=model_extra)
    if ema is not None:
        files["ema"] = _step_name("ema", step)
        save_model(ema, out / files["ema"], extra={**(model_extra or {}), "ema": True})
    tensors, optim_meta = split_optimizer_state(optimizer)
    atomic_write(out / files["optim"], lambda tmp: save_tensors(tensors, tmp, metadata={"format": "sepconv-optimizer"}))
    state = {"version": STATE_VERSION, "step": int(step), "files": files, "optimizer": optim_meta,
             "rng": rng_state(), **payload}
    path = out / STATE_FILE
    atomic_write_text(path, json.dumps(state, indent=1, sort_keys=True) + "\n")  # the commit point
    for kind in ("model", "ema"):
        if kind in files:
            _link(out / files[kind], out / f"{kind}.safetensors")
            _link((out / files[kind]).with_suffix(".json"), out / f"{kind}.json")
    prune(out, files)
    return path


def _link(src: Path, dst: Path) -> None:
    """Atomically make ``dst`` the same file as ``src`` (a hard link; a copy where links fail)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
        os.replace(tmp, dst)
    except OSError:
        tmp.unlink(missing_ok=True)
        data = src.read_bytes()
        atomic_write(dst, lambda t: Path(t).write_bytes(data))


def prune(out: Path, current: dict[str, str]) -> None:
    """Remove step files that ``current`` (the committed state's files) does not name, and the
    temporary files of writes a killed run left unfinished."""
    keep = set(current.values()) | {Path(f).with_suffix(".json").name for f in current.values()}
    for kind in _STEP_FILES:
        for p in out.glob(f"{kind}-*.*"):
            if p.name not in keep and p.suffix in (".safetensors", ".json"):
                p.unlink(missing_ok=True)
    # atomic_write's temporary folders (and the files of older versions) and _link's temporary files,
    # and safetensors' own: its save_file (0.8 here) writes through a Rust tempfile ".tmpXXXXXX" beside
    # its target (inside atomic_write's folder now; beside the run's files in older versions).
    for pattern in (".*.tmp", ".*.link", ".tmp??????"):
        for p in out.glob(pattern):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def read_state(out: str | Path) -> dict[str, Any]:
    """The committed ``state.json`` of run directory ``out``, checked; ValueError naming the file."""
    path = Path(out) / STATE_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no checkpoint to resume from (--resume needs a run directory written by "
                         "sepconv train)")
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable checkpoint state ({type(err).__name__}: {err})") from None
    needed = ("version", "step", "files", "optimizer", "rng", "epoch", "config")
    if not isinstance(state, dict) or any(k not in state for k in needed):
        raise ValueError(f"{path}: not a sepconv training state (needs keys {', '.join(needed)})")
    if state["version"] != STATE_VERSION:
        raise ValueError(f"{path}: state version {state['version']!r}; this sepconv reads version {STATE_VERSION}")
    for name in state["files"].values():
        if not (Path(out) / name).is_file():
            raise ValueError(f"{Path(out) / name}: missing, but {path} names it")
    return state


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None


def load_checkpoint(out: str | Path, state: dict[str, Any], *, model: nn.Module, optimizer: torch.optim.Optimizer,
                    ema: nn.Module | None = None) -> None:
    """Load the tensors ``state`` (from :func:`read_state`) names into the live objects and
    restore the RNG states. Everything is read and checked before anything is changed."""
    out = Path(out)
    weights = _load_tensors(out / state["files"]["model"])
    optim = _load_tensors(out / state["files"]["optim"])
    ema_weights = None
    if ema is not None:
        if "ema" not in state["files"]:
            raise ValueError(f"{out / STATE_FILE}: the run was trained without --ema; resume it without --ema")
        ema_weights = _load_tensors(out / state["files"]["ema"])
    check_state_dict(model, weights, str(out / state["files"]["model"]))
    if ema is not None:
        check_state_dict(ema, ema_weights, str(out / state["files"]["ema"]))
    try:  # torch checks the optimizer's state as it loads it: first, so that a misfit changes nothing
        optimizer.load_state_dict(join_optimizer_state(optim, state["optimizer"]))
    except (ValueError, KeyError) as err:
        raise ValueError(f"{out / state['files']['optim']}: does not fit the optimizer ({err})") from None
    model.load_state_dict(weights, strict=True)  # checked above: cannot fail half-way
    if ema is not None:
        ema.load_state_dict(ema_weights, strict=True)
    set_rng_state(state["rng"])
