"""``report.json`` of a ``sepconv optimize`` output folder: its schema, declared once here, and its
validation (the same rules and messages as the checkpoint sidecar's, :mod:`sepconv.formats.sidecar`).

The folder holds the chosen artifact (``model.onnx``; OpenVINO IR ``model.xml`` + ``model.bin``;
or, for a torch engine, nothing more than the source checkpoint and the settings below), the fp32
source model as a sepconv checkpoint (``model.safetensors`` + ``model.json``, when the model came
from the zoo), ``candidates.txt`` (the table of every candidate) and this manifest. Like a sidecar
it is untrusted input: :func:`validate_manifest` checks every key and raises one ``ValueError``
naming the file, the key, the value and the rule; the artifact's files are named by their SHA-256,
so that a file swapped or edited after ``optimize`` wrote it is refused.

=============== ======== ==================================================================
key             required value
=============== ======== ==================================================================
format          yes      ``"sepconv-deploy"``
version         yes      ``1``
model           yes      what was optimized, in one line
backend         yes      the chosen runner's name (:data:`sepconv.engines.runner.RUNNERS`)
engine          yes      ``"torch"``, ``"onnxruntime"`` or ``"openvino"``
precision       yes      ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"int8"``
input_shape     yes      ``[batch, channels, height, width]``, positive integers
threads         yes      a positive integer
files           yes      ``{file name: sha256 hex}``: the artifact, plain names in the folder
source                   the fp32 source checkpoint's file name, or null
budget          yes      ``{"max_drop": points >= 0 or null, "min_agreement": percent in [0, 100] or null}``
data                     the held-out data's description, or null (fp32-only mode)
candidates      yes      a list of objects, one per candidate (the table's rows)
baseline_ms              plain ONNX Runtime's median ms in the same rounds, or null
machine                  an object: CPU, library versions, load average
=============== ======== ==================================================================
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .rules import Check, check_document, is_int, is_number, need

__all__ = ["ENGINES", "FORMAT", "MANIFEST", "PRECISIONS", "SCHEMA", "is_deploy_folder", "read_manifest",
           "validate_manifest"]

FORMAT = "sepconv-deploy"
MANIFEST = "report.json"
ENGINES = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
MAX_BYTES = 4 * 2**20


def _one_of(choices: tuple[Any, ...]) -> Check:
    def check(key: str, value: Any, doc: Any = None) -> None:
        need(value in choices, key, value, f"must be one of {', '.join(map(repr, choices))}")

    return check


def _text(key: str, value: Any, doc: Any = None) -> None:
    need(isinstance(value, str) and 0 < len(value) <= 1000, key, value, "must be a non-empty string")


def _shape(key: str, value: Any, doc: Any = None) -> None:
    need(isinstance(value, list) and len(value) == 4 and all(is_int(v, 1) for v in value), key, value,
          "must be [batch, channels, height, width] of positive integers")


def _threads(key: str, value: Any, doc: Any = None) -> None:
    need(is_int(value, 1), key, value, "must be a positive integer")


def _file_name(key: str, value: Any, doc: Any = None) -> None:
    need(isinstance(value, str) and _NAME.match(value) is not None, key, value,
          "must be a plain file name in the folder (letters, digits, '.', '_', '-'; no path)")


def _files(key: str, value: Any, doc: Any = None) -> None:
    need(isinstance(value, dict), key, value, "must be an object {file name: sha256}")
    for name, digest in value.items():
        _file_name(f"{key}[{name!r}]", name)
        need(isinstance(digest, str) and _SHA.match(digest) is not None, f"{key}[{name!r}]", digest,
              "must be a SHA-256 hex digest (64 lowercase hex digits)")


def _source(key: str, value: Any, doc: Any = None) -> None:
    if value is not None:
        _file_name(key, value)
        need(value.endswith(".safetensors"), key, value, "must be a .safetensors checkpoint")


def _budget(key: str, value: Any, doc: Any = None) -> None:
    need(isinstance(value, dict) and set(value) == {"max_drop", "min_agreement"}, key, value,
          "must be an object with max_drop and min_agreement")
    drop, agree = value["max_drop"], value["min_agreement"]
    need(drop is None or (is_number(drop) and drop >= 0), f"{key}.max_drop", drop, "must be >= 0 or null")
    need(agree is None or (is_number(agree) and 0 <= agree <= 100), f"{key}.min_agreement", agree,
          "must be a percentage in [0, 100] or null")


def _optional_text(key: str, value: Any, doc: Any = None) -> None:
    if value is not None:
        _text(key, value)


def _candidates(key: str, value: Any, doc: Any = None) -> None:
    need(isinstance(value, list) and all(isinstance(row, dict) for row in value), key, value,
          "must be a list of objects (one per candidate)")


def _ms(key: str, value: Any, doc: Any = None) -> None:
    need(value is None or (is_number(value) and value > 0), key, value, "must be a positive number or null")


def _object(key: str, value: Any, doc: Any = None) -> None:
    need(isinstance(value, dict), key, value, "must be an object")


SCHEMA: dict[str, tuple[Check, bool]] = {
    "format": (_one_of((FORMAT,)), True),
    "version": (_one_of((1,)), True),
    "model": (_text, True),
    "backend": (_text, True),
    "engine": (_one_of(ENGINES), True),
    "precision": (_one_of(PRECISIONS), True),
    "input_shape": (_shape, True),
    "threads": (_threads, True),
    "files": (_files, True),
    "source": (_source, False),
    "budget": (_budget, True),
    "data": (_optional_text, False),
    "candidates": (_candidates, True),
    "baseline_ms": (_ms, False),
    "machine": (_object, False),
}


def validate_manifest(doc: Any, where: str | Path) -> dict[str, Any]:
    """Check ``doc`` (a parsed ``report.json``) against :data:`SCHEMA`; ``where`` names it in errors.

    Example::

        >>> validate_manifest({"format": "sepconv"}, "out/report.json")
        Traceback (most recent call last):
        ValueError: out/report.json: format='sepconv' must be one of 'sepconv-deploy'
    """
    return check_document(doc, where, SCHEMA, "a sepconv-deploy manifest", lacking="a sepconv optimize report")


def is_deploy_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding a ``report.json`` that says it is ``sepconv-deploy``
    (read no further: :func:`read_manifest` validates)."""
    manifest = Path(path) / MANIFEST
    if not manifest.is_file() or manifest.stat().st_size > MAX_BYTES:
        return False
    try:
        return f'"format": "{FORMAT}"' in manifest.read_text(errors="replace")
    except OSError:
        return False


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The validated ``report.json`` of the optimize output ``folder``."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{str(folder)!r} holds no {MANIFEST}: not a sepconv optimize output")
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, far more than a sepconv optimize report")
    try:
        doc = json.loads(path.read_text())
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a sepconv optimize report") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    return validate_manifest(doc, path)
