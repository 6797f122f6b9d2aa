"""The rules every file format of sepconv is validated with (the checkpoint sidecar,
:mod:`sepconv.formats.sidecar`; the optimize report, :mod:`sepconv.formats.manifest`): one
:class:`Invalid` per broken rule, and :func:`check_document`, which turns it into the one
``ValueError`` a user sees — the file, the key, the value (shortened) and the rule.

Example::

    >>> schema = {"format": (lambda key, value, doc: need(value == "x", key, value, "must be 'x'"), True)}
    >>> check_document({"format": "y"}, "f.json", schema, "an x file")
    Traceback (most recent call last):
    ValueError: f.json: format='y' must be 'x'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..models.provenance import json_typed

__all__ = ["Check", "Invalid", "check_document", "check_json", "is_int", "is_number", "need", "short"]

Check = Callable[[str, Any, dict[str, Any]], None]  # (key, value, the whole document); raises Invalid


class Invalid(Exception):
    """``key=value`` breaks ``rule``; :func:`check_document` adds the file's name."""

    def __init__(self, key: str, value: Any, rule: str) -> None:
        super().__init__(key, value, rule)
        self.key, self.value, self.rule = key, value, rule


def need(ok: bool, key: str, value: Any, rule: str) -> None:
    """Raise :class:`Invalid` unless ``ok``."""
    if not ok:
        raise Invalid(key, value, rule)


def is_int(v: Any, least: int) -> bool:
    """An integer (not a bool) ``>= least``."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_json(key: str, value: Any, objects: bool = True) -> None:
    """``value`` is plain JSON: finite numbers, not nested too deeply (:func:`json_typed`)."""
    try:
        json_typed(key, value, objects=objects)
    except (TypeError, ValueError) as err:
        raise Invalid("", None, str(err)) from None


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a deeply nested value included)."""
    try:
        text = repr(value)
    except RecursionError:
        return "[[[..."
    return text if len(text) <= limit else f"{text[:limit - 5]} ...{text[-1]}"


def check_document(doc: Any, where: str | Path, schema: Mapping[str, tuple[Check, bool]], kind: str,
                   lacking: str | None = None) -> dict[str, Any]:
    """Check ``doc`` against ``schema`` (``{key: (check, required)}``): a JSON object, no key outside
    the schema, every value plain JSON, every present key's ``check``, every required key present.
    ``kind`` names the format in errors ("a sepconv sidecar"); ``lacking`` what a document without a
    required key is not. Raises one ``ValueError`` naming ``where``; returns ``doc``."""
    required = [k for k, (_, req) in schema.items() if req]
    optional = [k for k, (_, req) in schema.items() if not req]
    try:
        need(isinstance(doc, dict), "top level", doc, f"must be a JSON object with the keys {', '.join(required)}"
             + (f" (and optionally {', '.join(optional)})" if optional else ""))
        for key in doc:
            need(key in schema, f"key {key!r}", doc[key], f"is not part of {kind} ({', '.join(schema)})")
            check_json(key, doc[key])
        for key, (check, req) in schema.items():
            if key in doc:
                check(key, doc[key], doc)
            else:
                need(not req, "top level", doc, f"lacks the key {key!r}: not {lacking or kind}")
    except Invalid as bad:
        what = bad.rule if not bad.key else f"{bad.key}={short(bad.value)} {bad.rule}"
        raise ValueError(f"{where}: {what}") from None
    return doc
