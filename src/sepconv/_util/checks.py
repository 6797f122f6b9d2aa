"""Argument checks shared by every operator.

Each raises ``ValueError`` naming the argument, the value and the rule, so that bad input never
surfaces as a traceback from deep inside torch (DESIGN.md, style rule 6).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return value


def boolean(name: str, value: Any) -> bool:
    """A real ``bool``: ``"no"`` or ``1`` are refused rather than read as truthy (a command-line spec
    gives ``true``/``false``, which :func:`sepconv.models.parse_spec` turns into bools)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be True or False")
    return value


def non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r} must be a non-negative integer")
    return value


def int_pair(name: str, value: Any, *, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    ok = (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in pair)
    )
    if not ok:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum} or a pair of them")
    return int(pair[0]), int(pair[1])


def divides(name: str, value: int, other_name: str, other: int) -> None:
    if other % value:
        raise ValueError(f"{name}={value} must divide {other_name}={other}")


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {', '.join(map(repr, choices))}")
    return value


def optional_callable(name: str, value: Any) -> Callable[..., Any] | None:
    # A module instance is callable too, but calling it runs its forward, it does not build one.
    if value is not None and (not callable(value) or isinstance(value, torch.nn.Module)):
        raise ValueError(
            f"{name}={value!r} must be a callable that builds a module (a class or "
            f"functools.partial, not a module instance), or None"
        )
    return value


def four_d(x: torch.Tensor, where: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{where}: input must be 4-D (B, C, H, W), got shape {tuple(x.shape)}")


def input_channels(x: torch.Tensor, expected: int, where: str) -> None:
    """Check a (B, C, H, W) input before it reaches torch's own, less helpful, errors."""
    four_d(x, where)
    if x.shape[1] != expected:
        raise ValueError(
            f"{where}: expected {expected} input channels, got {x.shape[1]} "
            f"(input shape {tuple(x.shape)})"
        )


Forward = TypeVar("Forward", bound=Callable[..., Any])


def reports_input_channels(forward: Forward) -> Forward:
    """Decorate a composite module's ``forward`` so that a wrong input reports the class the user
    called (``InvertedResidual: expected 24 input channels, got 16``), not the inner ``Conv2d``
    that met it first.

    The module's ``in_channels`` is compared with the input only when a ``ValueError`` is already
    on its way out, so a correct forward pass pays for one function call and an exception-table
    entry, nothing more; any other ``ValueError`` propagates unchanged.
    """

    @functools.wraps(forward)
    def checked(self: torch.nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        try:
            return forward(self, x, *args, **kwargs)
        except ValueError:
            if isinstance(x, torch.Tensor):
                try:
                    input_channels(x, self.in_channels, type(self).__name__)
                except ValueError as named:
                    raise named from None
            raise

    return checked  # type: ignore[return-value]
