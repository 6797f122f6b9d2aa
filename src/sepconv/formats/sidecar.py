"""The JSON sidecar of a sepconv checkpoint: its schema, declared once here, and its validation.

A sidecar is untrusted input: any file named ``model.json`` beside a ``model.safetensors`` is read
as one. Before anything is built from it, :func:`validate_sidecar` checks every key against
:data:`SCHEMA` and raises one ``ValueError`` naming the file, the key, the value and the rule.
Files written by earlier versions (the keys below, nothing else) load unchanged.

========== ========= ========================================================================
key        required  value
========== ========= ========================================================================
format     yes       ``"sepconv"``
model      yes       a registered model name
kwargs               ``{argument: JSON scalar or list}``, arguments the model's builder accepts
weights              an object: where the weights came from (:mod:`sepconv.weights`)
separation           ``[{"to": TARGET, "layers": {name: {"to": TARGET, "setting": int >= 1,
                     "permute_in": bool, "permute_out": bool}}}]`` (:mod:`sepconv.formats.plan`)
train                what ``sepconv train`` records (:data:`TRAIN_SCHEMA`; for a super-resolution
                     model, ``task: "super_resolution"`` and :data:`SR_TRAIN_SCHEMA`)
ema                  ``true`` for the EMA weights of a run
tensors_sha256       the SHA-256 of the ``.safetensors`` file the sidecar belongs to (64 hex
                     digits; absent in files of older versions, which still load)
========== ========= ========================================================================

A sidecar that records ``tensors_sha256`` is read only beside the tensors it names:
:func:`read_sidecar` refuses a pair whose files do not belong together (one replaced without the
other, or the write of the pair killed between its two renames) with :class:`MismatchedSidecar`.

Numbers must be finite (``json`` accepts ``NaN`` and ``Infinity``; sepconv does not) and nothing
may nest deeper than :data:`~sepconv.models.provenance.MAX_DEPTH` levels.

Example::

    >>> validate_sidecar({"format": "sepconv", "model": "mobilenet_v2", "kwargs": {"width_mult": 0.5}},
    ...                  "m.json").provenance.kwargs
    {'width_mult': 0.5}
    >>> validate_sidecar({"format": "sepconv", "model": "mobilenet_v2", "kwargs": []}, "m.json")
    Traceback (most recent call last):
    ValueError: m.json: kwargs=[] must be an object of the model's arguments ({name: JSON scalar or list})
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._util.io import file_sha256
from ..models.provenance import Provenance
from ..models.registry import accepted_arguments, list_models, model_entry
from .plan import PLAN_KEY, TARGETS
from .rules import Check, check_document, check_json, is_int, is_number, need

__all__ = ["FORMAT", "MAX_BYTES", "MismatchedSidecar", "SCHEMA", "SR_TRAIN_SCHEMA", "TRAIN_SCHEMA", "Sidecar",
           "parse_sidecar", "read_sidecar", "sidecar_label", "sidecar_path", "validate_sidecar"]

FORMAT = "sepconv"
MAX_BYTES = 16 * 2**20  # far above any sidecar sepconv writes (ImageNet's class names are ~20 kB)


@dataclass(frozen=True)
class Sidecar:
    """A validated sidecar: the model's provenance, and what training recorded about the weights."""

    provenance: Provenance
    train: dict[str, Any] | None = None  # TRAIN_SCHEMA; eval needs it to preprocess as training did
    ema: bool = False  # the weights are a run's exponential moving average
    tensors_sha256: str | None = None  # the tensors file it belongs to; None in files older than the key

    def to_json(self) -> dict[str, Any]:
        """The document to write (and what :func:`validate_sidecar` accepts back)."""
        doc = {"format": FORMAT, **self.provenance.to_json()}
        if self.train is not None:
            doc["train"] = self.train
        if self.ema:
            doc["ema"] = True
        if self.tensors_sha256 is not None:
            doc["tensors_sha256"] = self.tensors_sha256
        return doc


class MismatchedSidecar(ValueError):
    """A sidecar and a tensors file that do not belong together: the sidecar records another file's SHA-256."""


# ---- the keys ------------------------------------------------------------------------------------

def _format(key: str, value: Any, doc: dict[str, Any]) -> None:
    need(value == FORMAT, "format", value, f"must be {FORMAT!r}")


def _model(key: str, value: Any, doc: dict[str, Any]) -> None:
    need(isinstance(value, str) and value in list_models(), "model", value,
          f"must be a registered model name ({', '.join(list_models())})")


def _kwargs(key: str, value: Any, doc: dict[str, Any]) -> None:
    need(isinstance(value, dict), "kwargs", value,
          "must be an object of the model's arguments ({name: JSON scalar or list})")
    accepted = accepted_arguments(model_entry(doc["model"]))
    for name, v in value.items():
        need(name in accepted, f"kwargs[{name!r}]", v,
              f"is no argument of {doc['model']}; accepted: {', '.join(accepted)}")
        need(not isinstance(v, dict), f"kwargs[{name!r}]", v, "must be a JSON scalar or list, not an object")
        check_json(f"kwargs[{name!r}]", v, objects=False)


def _weights(key: str, value: Any, doc: dict[str, Any]) -> None:
    need(isinstance(value, dict), "weights", value, "must be an object (where the weights came from)")


def _separation(key: str, value: Any, doc: dict[str, Any]) -> None:
    stage_rule = f"must be a stage {{'to': one of {', '.join(TARGETS)}, 'layers': {{name: entry}}}}"
    need(isinstance(value, list), PLAN_KEY, value, "must be a list of separation stages")
    for i, stage in enumerate(value):
        key = f"{PLAN_KEY}[{i}]"
        need(isinstance(stage, dict) and set(stage) == {"to", "layers"}, key, stage, stage_rule)
        need(stage["to"] in TARGETS, f"{key}['to']", stage["to"], f"must be one of {', '.join(TARGETS)}")
        need(isinstance(stage["layers"], dict), f"{key}['layers']", stage["layers"],
              "must be an object {layer name: entry}")
        for name, entry in stage["layers"].items():
            _layer(f"{key}['layers'][{name!r}]", name, entry, stage["to"])


LAYER_KEYS = {"to": "must be the stage's 'to'", "setting": "must be a positive int (d, r or G)",
              "permute_in": "must be true or false", "permute_out": "must be true or false"}


def _layer(key: str, name: str, entry: Any, to: str) -> None:
    need(bool(name), key, name, "must name a layer (a module path such as 'blocks.0.conv')")
    need(isinstance(entry, dict) and {"to", "setting"} <= set(entry) <= set(LAYER_KEYS), key, entry,
          "must be an object with 'to' and 'setting', and optionally 'permute_in', 'permute_out'")
    for field, rule in LAYER_KEYS.items():
        if field in entry:
            v = entry[field]
            ok = {"to": v == to, "setting": is_int(v, 1)}.get(field, isinstance(v, bool))
            need(ok, f"{key}[{field!r}]", v, rule)


TRAIN_SCHEMA: dict[str, tuple[str, Callable[[Any], bool], bool]] = {
    # key: (rule, check, required)
    "data": ("must be a data spec (a non-empty str)", lambda v: isinstance(v, str) and bool(v), True),
    "classes": ("must be a non-empty list of class names (str)",
                lambda v: isinstance(v, list) and bool(v) and all(isinstance(c, str) for c in v), True),
    "channels": ("must be a positive int", lambda v: is_int(v, 1), True),
    "mean": ("must be a list of numbers", lambda v: isinstance(v, list) and all(map(is_number, v)), True),
    "std": ("must be a list of positive numbers",
            lambda v: isinstance(v, list) and all(is_number(s) and s > 0 for s in v), True),
    "eval_crop": ("must be a number in (0, 1]", lambda v: is_number(v) and 0 < v <= 1, True),
    "img_size": ("must be a positive int", lambda v: is_int(v, 1), True),
    "epoch": ("must be an int >= 0", lambda v: is_int(v, 0), False),
    "val_acc": ("must be a number or null", lambda v: v is None or is_number(v), False),
    "task": ("must be 'classification' (or absent)", lambda v: v == "classification", False),
}
# What sepconv train records for a super-resolution model (train["task"] == "super_resolution").
SR_TRAIN_SCHEMA: dict[str, tuple[str, Callable[[Any], bool], bool]] = {
    "task": ("must be 'super_resolution'", lambda v: v == "super_resolution", True),
    "data": ("must be a data spec (a non-empty str)", lambda v: isinstance(v, str) and bool(v), True),
    "scale": ("must be an int >= 2 (the upscaling factor)", lambda v: is_int(v, 2), True),
    "held_out": ("must be a list of photo names (str)",
                 lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v), True),
    "channels": ("must be a positive int", lambda v: is_int(v, 1), False),
    "img_size": ("must be a positive int (the HR patch side)", lambda v: is_int(v, 1), True),
    "epoch": ("must be an int >= 0", lambda v: is_int(v, 0), False),
    "val_psnr": ("must be a number or null", lambda v: v is None or is_number(v), False),
    "val_ssim": ("must be a number or null", lambda v: v is None or is_number(v), False),
}


def _train(key: str, value: Any, doc: dict[str, Any]) -> None:
    need(isinstance(value, dict), "train", value, "must be an object (what sepconv train recorded)")
    schema = SR_TRAIN_SCHEMA if value.get("task") == "super_resolution" else TRAIN_SCHEMA
    for key in value:
        need(key in schema, f"train[{key!r}]", value[key], f"is not a key of train ({', '.join(schema)})")
    for key, (rule, check, required) in schema.items():
        if key in value:
            need(check(value[key]), f"train[{key!r}]", value[key], rule)
        else:
            need(not required, "train", value, f"lacks {key!r}; it needs {', '.join(schema)}")


def _ema(key: str, value: Any, doc: dict[str, Any]) -> None:
    need(isinstance(value, bool), "ema", value, "must be true or false")


def _tensors_sha256(key: str, value: Any, doc: dict[str, Any]) -> None:
    need(isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value) is not None, "tensors_sha256", value,
          "must be the SHA-256 of the tensors file (64 lowercase hex digits)")


# key -> (check, required); checked in this order (kwargs needs model)
SCHEMA: dict[str, tuple[Check, bool]] = {
    "format": (_format, True),
    "model": (_model, True),
    "kwargs": (_kwargs, False),
    "weights": (_weights, False),
    PLAN_KEY: (_separation, False),
    "train": (_train, False),
    "ema": (_ema, False),
    "tensors_sha256": (_tensors_sha256, False),
}


# ---- entry points --------------------------------------------------------------------------------

def validate_sidecar(doc: Any, where: str | Path) -> Sidecar:
    """Check ``doc`` (a parsed sidecar) against :data:`SCHEMA`; ``where`` names it in errors."""
    check_document(doc, where, SCHEMA, "a sepconv sidecar", lacking="a sepconv checkpoint sidecar")
    return Sidecar(Provenance.from_json(doc), doc.get("train"), doc.get("ema", False), doc.get("tensors_sha256"))


def parse_sidecar(text: str, where: str | Path) -> Sidecar:
    """:func:`validate_sidecar` of the JSON ``text``; invalid or too deeply nested JSON is a ValueError too."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: nested too deeply to be a sepconv sidecar") from None
    except ValueError as err:  # JSONDecodeError, and int() refusing thousands of digits
        raise ValueError(f"{where}: not valid JSON ({err})") from None
    return validate_sidecar(doc, where)


def sidecar_path(checkpoint: str | Path) -> Path:
    """``model.safetensors`` -> ``model.json``."""
    return Path(checkpoint).with_suffix(".json")


def sidecar_label(checkpoint: str | Path) -> str:
    """How errors name the sidecar of ``checkpoint``: ``runs/x/model.json (the sidecar of model.safetensors)``."""
    return f"{sidecar_path(checkpoint)} (the sidecar of {Path(checkpoint).name})"


def read_sidecar(checkpoint: str | Path) -> Sidecar:
    """The validated sidecar beside the sepconv checkpoint ``checkpoint`` (a ``.safetensors`` path);
    one that records the SHA-256 of another tensors file is refused (:class:`MismatchedSidecar`)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise ValueError(f"{str(path)!r}: no such file")
    side = sidecar_path(path)
    if not side.is_file():
        raise ValueError(f"{str(path)!r}: no JSON sidecar {side.name} beside it, so not a sepconv checkpoint "
                         "(sepconv.formats.checkpoint.save_model writes one)")
    where = sidecar_label(path)
    try:
        size = side.stat().st_size
        if size > MAX_BYTES:
            raise ValueError(f"{where}: {size} bytes; a sepconv sidecar is at most {MAX_BYTES}")
        text = side.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: cannot be read as UTF-8 text ({type(err).__name__}: {err})") from None
    sidecar = parse_sidecar(text, where)
    if sidecar.tensors_sha256 is not None:
        try:
            actual = file_sha256(path)
        except OSError as err:
            raise ValueError(f"{str(path)!r}: cannot be read ({type(err).__name__}: {err.strerror or err})") from None
        if actual != sidecar.tensors_sha256:
            raise MismatchedSidecar(f"{where}: records the tensors file with SHA-256 {sidecar.tensors_sha256[:12]}..., "
                                    f"but {path.name} has {actual[:12]}...: the two files do not belong together "
                                    "(one was replaced without the other)")
    return sidecar
