"""The derived numbers of a measured pass against the roofline, and how the tables write numbers.

One place for both, so that the inference rows, the training passes and every table (terminal
and HTML alike) compute and print them one way.

Example::

    >>> achieved(machine, flops=2e9, nbytes=1e8, median_ms=10.0, p90_ms=12.0)["gflops_per_s"]  # doctest: +SKIP
    200.0
    >>> cell(None), cell(3.14159, ".1f")
    ('—', '3.1')
"""

from __future__ import annotations

from typing import Any

from ..machine import Machine

__all__ = ["achieved", "cell", "share"]


def achieved(machine: Machine, flops: float, nbytes: float, median_ms: float | None,
             p90_ms: float | None) -> dict[str, Any]:
    """``time_ms``, ``p90_ms``, ``gflops_per_s``, ``gb_per_s``, ``roofline_ms`` (the machine's
    bound for that work), ``roofline_fraction`` (roofline time / measured time) and ``bound``
    ("memory", "compute", "none") of ``flops`` and ``nbytes`` done in ``median_ms`` (None: not
    timed, and the rates None too)."""
    seconds = None if median_ms is None else median_ms * 1e-3
    roofline_ms = machine.bound_ms(flops, nbytes)
    return {
        "time_ms": median_ms,
        "p90_ms": p90_ms,
        "gflops_per_s": flops / seconds / 1e9 if seconds else None,
        "gb_per_s": nbytes / seconds / 1e9 if seconds else None,
        "roofline_ms": roofline_ms,
        "roofline_fraction": roofline_ms / median_ms if median_ms else None,
        "bound": machine.bound(flops, nbytes),
    }


def share(part: float, total: float) -> float:
    """``part / total``, 0.0 when the total is 0."""
    return part / total if total else 0.0


def cell(value: float | None, fmt: str = ",.2f") -> str:
    """A number as a table cell; an absent one (None) as a dash."""
    return "—" if value is None else format(value, fmt)
