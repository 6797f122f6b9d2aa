"""The folder ``sepconv optimize --out DIR`` writes, and :func:`load`, which runs what it holds.

The folder (manifest schema: :mod:`sepconv.formats.manifest`):

- the chosen artifact: ``model.onnx`` (ONNX Runtime, fp32 or the int8 QDQ file), or ``model.xml`` +
  ``model.bin`` (OpenVINO IR), or nothing more for a torch engine (eager, channels_last, autocast,
  torch.compile), which :func:`load` rebuilds from the source checkpoint with the same runner;
- ``model.safetensors`` + ``model.json``: the fp32 source model as a sepconv checkpoint (its training
  record kept), when it came from the zoo — what ``sepconv eval DIR`` or ``sepconv profile DIR`` read;
- ``candidates.txt``: the table of every candidate; ``report.json``: the manifest.

The folder is written whole or not at all: staged in a temporary sibling folder, then renamed into
place; an existing folder is replaced only with ``overwrite`` (and only once the new one is complete).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._util.checks import positive_int
from .._util.io import check_output, file_sha256
from ..engines.runner import RUNNERS, Runner, prepare
from ..formats.checkpoint import save_model
from ..formats.manifest import MANIFEST, read_manifest, validate_manifest
from ..models.provenance import provenance_of

__all__ = ["Deployed", "load", "write_folder"]

SOURCE = "model.safetensors"
TABLE = "candidates.txt"


def _artifact_writers(runner: Runner, folder: Path) -> list[Path]:
    """Write the chosen runner's own files into ``folder``; returns their paths."""
    engine = runner.spec.engine
    if engine == "onnxruntime":
        import onnx

        path = folder / "model.onnx"
        onnx.save_model(runner.call.proto, str(path))
        return [path]
    if engine == "openvino":
        from ..engines.openvino import save_ir

        return save_ir(runner.call, folder / "model.xml")
    return []


def write_folder(out: str | Path, runner: Runner, source: nn.Module, manifest: dict[str, Any], table: str, *,
                 train: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write the optimize output folder ``out`` (see the module docstring); ``manifest`` lacks only
    ``files`` and ``source``, which are filled in here. Returns ``out``."""
    out = check_output(out, "out", directory=True, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        files = _artifact_writers(runner, stage)
        has_source = provenance_of(source) is not None
        if has_source:
            save_model(source, stage / SOURCE, extra={"train": train} if train else None)
        elif runner.spec.engine == "torch":
            raise ValueError(f"the chosen {runner.backend!r} runs the PyTorch model itself, which sepconv can save "
                             "only for a model of its zoo; this one has no provenance")
        doc = {**manifest, "files": {p.name: file_sha256(p) for p in files},
               "source": SOURCE if has_source else None}
        validate_manifest(doc, stage / MANIFEST)
        (stage / TABLE).write_text(table + "\n")
        (stage / MANIFEST).write_text(json.dumps(doc, indent=2) + "\n")
        for path in stage.iterdir():  # on disk before the folder is renamed into place
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{stage.name[-8:]}")
            out.rename(old)
        stage.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out


class Deployed:
    """What :func:`load` returns: callable like the model (an NCHW float tensor in, logits out), run
    by the chosen engine at its precision on ``threads`` threads; ``manifest`` is the validated
    ``report.json``."""

    def __init__(self, folder: Path, manifest: dict[str, Any], call: Callable[[torch.Tensor], object],
                 threads: int) -> None:
        self.folder, self.manifest, self.call, self.threads = folder, manifest, call, threads
        self.backend, self.engine = manifest["backend"], manifest["engine"]
        self.precision, self.input_shape = manifest["precision"], tuple(manifest["input_shape"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.call(x))

    def __repr__(self) -> str:
        return (f"Deployed({str(self.folder)!r}, backend={self.backend!r}, precision={self.precision!r}, "
                f"input={list(self.input_shape)}, threads={self.threads})")


def _verified(folder: Path, manifest: dict[str, Any]) -> None:
    names = list(manifest["files"]) + ([manifest["source"]] if manifest.get("source") else [])
    for name in names:
        if not (folder / name).is_file():
            raise ValueError(f"{folder}: {name} is missing (named by {MANIFEST})")
    for name, digest in manifest["files"].items():
        if file_sha256(folder / name) != digest:
            raise ValueError(f"{folder / name}: its SHA-256 is not the one {MANIFEST} records: the file was changed "
                             "after sepconv optimize wrote it")


def load(folder: str | Path, threads: int | None = None) -> Deployed:
    """The artifact ``sepconv optimize`` chose, ready to run: ONNX Runtime or OpenVINO on its file,
    or the PyTorch runner rebuilt from the source checkpoint. ``threads`` defaults to what it was
    optimized for. A torch.compile choice compiles again here (a compiled model cannot be saved),
    and says so with a warning.

    Example::

        >>> run = load("mnv2-deployed")       # doctest: +SKIP
        >>> run(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """
    from ..formats.checkpoint import load_model

    folder = Path(folder)
    manifest = read_manifest(folder)
    _verified(folder, manifest)
    threads = manifest["threads"] if threads is None else positive_int("threads", threads)
    engine, precision, backend = manifest["engine"], manifest["precision"], manifest["backend"]
    files = [folder / name for name in manifest["files"]]
    if engine == "onnxruntime":
        from ..engines.ort import ort_session

        return Deployed(folder, manifest, ort_session(files[0], threads=threads), threads)
    if engine == "openvino":
        from ..engines.openvino import load_ir

        xml = next((f for f in files if f.suffix == ".xml"), None)
        if xml is None:
            raise ValueError(f"{folder / MANIFEST}: an OpenVINO choice must name its .xml file")
        return Deployed(folder, manifest, load_ir(xml, precision, threads), threads)
    if backend not in RUNNERS or RUNNERS[backend].engine != "torch":
        raise ValueError(f"{folder / MANIFEST}: backend={backend!r} is not a torch runner of this sepconv "
                         f"({', '.join(n for n, s in RUNNERS.items() if s.engine == 'torch')})")
    if not manifest.get("source"):
        raise ValueError(f"{folder / MANIFEST}: a torch choice needs its source checkpoint, and none is named")
    if backend == "inductor":
        warnings.warn(f"{folder}: the chosen torch.compile runner is compiled again now (a compiled model "
                      "cannot be saved); the first call waits for it", stacklevel=2)
    model = load_model(folder / manifest["source"]).eval()
    example = torch.zeros(manifest["input_shape"])
    return Deployed(folder, manifest, prepare(backend, model, example, threads=threads, fold=True), threads)
