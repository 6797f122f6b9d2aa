"""Where a model came from, as one declared, typed value: :class:`Provenance`.

The registry's ``create_model`` sets ``model.provenance`` (declared on
:class:`~sepconv.models._base.ConvNet`); loading foreign weights adds where they came from,
separation adds the stages that changed its layers. Checkpoint sidecars store exactly
:meth:`Provenance.to_json` and rebuild it with :meth:`Provenance.from_json`. Every field holds JSON
types only (tuples become lists), so a rebuilt model's provenance compares equal to the original's.
A module that the registry did not build (a user's own ``nn.Module``) has none:
:func:`provenance_of` returns ``None``.

Example::

    >>> p = Provenance("mobilenet_v3_large", {"features_only": True, "out_indices": (2, 3)})
    >>> p.kwargs, Provenance.from_json(p.to_json()) == p
    ({'features_only': True, 'out_indices': [2, 3]}, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["MAX_DEPTH", "Provenance", "json_typed", "provenance_of"]

MAX_DEPTH = 32  # nesting deeper than this is no sepconv document


def json_typed(name: str, value: Any, *, objects: bool = True, depth: int = 0) -> Any:
    """``value`` with JSON types only (tuples -> lists): str, bool, int, finite float, None, lists
    and, with ``objects``, dicts with str keys. Raises ``TypeError`` (a non-JSON type) or
    ``ValueError`` (NaN or infinity, nesting deeper than :data:`MAX_DEPTH`) naming ``name``.

    Example::

        >>> json_typed("out_indices", (2, 3))
        [2, 3]
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"{name} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name}={value!r} must be a finite number (JSON has no NaN or Infinity)")
        return value
    if isinstance(value, (list, tuple)):
        return [json_typed(f"{name}[{i}]", v, objects=objects, depth=depth + 1) for i, v in enumerate(value)]
    if objects and isinstance(value, dict):
        bad = next((k for k in value if not isinstance(k, str)), None)
        if bad is not None:
            raise TypeError(f"{name} has the key {bad!r}; keys must be strings")
        return {k: json_typed(f"{name}[{k!r}]", v, objects=objects, depth=depth + 1) for k, v in value.items()}
    kinds = "a str, bool, int, float, None, list" + (" or dict" if objects else "")
    raise TypeError(f"{name}={value!r} is a {type(value).__name__}; it must be {kinds} (it is saved as JSON)")


@dataclass(frozen=True)
class Provenance:
    """A registry model's name and build arguments, where its weights came from, and the
    separation stages applied to it (``[{"to": ..., "layers": {name: build arguments}}]``).

    ``kwargs`` are the arguments given to ``create_model`` (defaults are not filled in); their
    values are JSON scalars or lists. ``weights`` and ``separation`` are ``None`` when there is
    nothing to say.
    """

    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] | None = None
    separation: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise TypeError(f"model={self.model!r} must be a model name (a non-empty str)")
        if not isinstance(self.kwargs, dict):
            raise TypeError(f"kwargs={self.kwargs!r} must be a dict of the model's arguments")
        kwargs = {}
        for key, value in self.kwargs.items():
            if not isinstance(key, str):
                raise TypeError(f"kwargs has the key {key!r}; argument names are strings")
            kwargs[key] = json_typed(key, value, objects=False)
        object.__setattr__(self, "kwargs", kwargs)
        if self.weights is not None:
            if not isinstance(self.weights, dict):
                raise TypeError(f"weights={self.weights!r} must be a dict (where the weights came from) or None")
            object.__setattr__(self, "weights", json_typed("weights", self.weights))
        if self.separation is not None:
            if not isinstance(self.separation, (list, tuple)):
                raise TypeError(f"separation={self.separation!r} must be a list of stages or None")
            object.__setattr__(self, "separation", json_typed("separation", self.separation) or None)

    def to_json(self) -> dict[str, Any]:
        """``{"model", "kwargs"}`` and, when set, ``"weights"`` and ``"separation"``: the sidecar's keys."""
        doc: dict[str, Any] = {"model": self.model, "kwargs": self.kwargs}
        if self.weights is not None:
            doc["weights"] = self.weights
        if self.separation is not None:
            doc["separation"] = self.separation
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Provenance:
        """The inverse of :meth:`to_json` (other keys of ``doc`` are ignored)."""
        return cls(doc["model"], dict(doc.get("kwargs") or {}), doc.get("weights"), doc.get("separation"))


def provenance_of(model: nn.Module) -> Provenance | None:
    """``model.provenance``, or ``None`` for a module the registry did not build."""
    value = getattr(model, "provenance", None)
    return value if isinstance(value, Provenance) else None
