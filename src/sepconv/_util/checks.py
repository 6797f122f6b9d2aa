"""Argument checks shared by the whole library.

Each raises :class:`ArgumentError` — a ``ValueError`` naming the argument, the value and the rule,
with the Python argument's name in ``.argument`` — so that bad input never surfaces as a traceback
from deep inside torch (DESIGN.md, style rule 6), and the command line can say which flag it was
(``sepconv.cli.flags``).

Example::

    >>> try:
    ...     positive_int("threads", 0)
    ... except ValueError as err:
    ...     print(err.argument, "|", err)
    threads | threads=0 must be a positive integer
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class ArgumentError(ValueError):
    """A bad value for the Python argument ``argument``; the message names the value and the rule."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(name, f"{name}={value!r} must be a positive integer")
    return value


def boolean(name: str, value: Any) -> bool:
    """A real ``bool``: ``"no"`` or ``1`` are refused rather than read as truthy (a command-line spec
    gives ``true``/``false``, which :func:`sepconv.models.parse_spec` turns into bools)."""
    if not isinstance(value, bool):
        raise ArgumentError(name, f"{name}={value!r} must be True or False")
    return value


def non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ArgumentError(name, f"{name}={value!r} must be a non-negative integer")
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
        raise ArgumentError(name, f"{name}={value!r} must be an integer >= {minimum} or a pair of them")
    return int(pair[0]), int(pair[1])


def divides(name: str, value: int, other_name: str, other: int) -> None:
    if other % value:
        raise ArgumentError(name, f"{name}={value} must divide {other_name}={other}")


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ArgumentError(name, f"{name}={value!r} must be one of {', '.join(map(repr, choices))}")
    return value


def optional_callable(name: str, value: Any) -> Callable[..., Any] | None:
    # A module instance is callable too, but calling it runs its forward, it does not build one.
    if value is not None and (not callable(value) or isinstance(value, torch.nn.Module)):
        raise ArgumentError(
            name,
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
