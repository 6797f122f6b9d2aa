"""The derived numbers of a measured pass against the roofline, and how the tables write numbers.

One place for both, so that the inference rows, the training passes and every table (terminal
and HTML alike) compute and print them one way.

The ceiling a pass is held against (:meth:`sepconv.machine.Machine.ceiling`, the cache-aware
roofline's rule): the memory level its working set fits (inputs + weights + outputs of that call,
at the dtype it ran in — the bytes the cost model counts it as moving, so both are recomputed per
dtype) and the compute peak of its precision. A pass measured faster than that ceiling allows, by
more than :data:`ABOVE_CEILING_TOLERANCE`, is flagged ``above_ceiling``: an anomaly (a ceiling
that measured code beats is not a ceiling), never excused.

Example::

    >>> row = achieved(machine, flops=2e9, nbytes=1e8, median_ms=10.0, p90_ms=12.0)  # doctest: +SKIP
    >>> row["gflops_per_s"], row["memory_level"], row["above_ceiling"]  # doctest: +SKIP
    (200.0, 'DRAM', False)
    >>> cell(None), cell(3.14159, ".1f")
    ('—', '3.1')
"""

from __future__ import annotations

from typing import Any

from ..machine import Machine

__all__ = ["ABOVE_CEILING_TOLERANCE", "above_ceiling", "achieved", "cell", "flagged", "share"]

# A pass is above its ceiling when its roofline time exceeds its measured time by more than 5%:
# room for the timer (perf_counter around calls of a few microseconds) and for the ceilings' own
# run-to-run spread; anything beyond is an anomaly to explain, not noise.
ABOVE_CEILING_TOLERANCE = 0.05


def above_ceiling(roofline_fraction: float | None) -> bool | None:
    """Whether a pass whose roofline time is ``roofline_fraction`` of its measured time ran above its
    ceiling: faster than ``max(flops / peak, bytes / bandwidth)`` allows, i.e. above the peak or
    above the level's bandwidth, by more than :data:`ABOVE_CEILING_TOLERANCE` (None: not timed)."""
    return None if roofline_fraction is None else roofline_fraction > 1 + ABOVE_CEILING_TOLERANCE


def achieved(machine: Machine, flops: float, nbytes: float, median_ms: float | None, p90_ms: float | None,
             precision: str = "fp32", working_set_bytes: float | None = None) -> dict[str, Any]:
    """The numbers of ``flops`` and ``nbytes`` done in ``median_ms`` (None: not timed, and the rates
    None too) in ``precision``: ``time_ms``, ``p90_ms``, ``gflops_per_s``, ``gb_per_s``, then the
    ceiling it is held against — ``precision``, ``working_set_bytes`` (default ``nbytes``: every byte
    read or written once), ``memory_level`` (the smallest measured level that holds it),
    ``ceiling_gb_per_s``, ``ceiling_gflops_per_s`` (None where the precision's peak is unknown) —
    and ``roofline_ms`` (the bound at that ceiling), ``roofline_fraction`` (roofline time /
    measured time), ``bound`` ("memory", "compute", "none") and ``above_ceiling``."""
    seconds = None if median_ms is None else median_ms * 1e-3
    working_set = nbytes if working_set_bytes is None else working_set_bytes
    ceiling = machine.ceiling(working_set, precision)
    roofline_ms = ceiling.bound_ms(flops, nbytes)
    fraction = roofline_ms / median_ms if median_ms else None
    return {
        "time_ms": median_ms,
        "p90_ms": p90_ms,
        "gflops_per_s": flops / seconds / 1e9 if seconds else None,
        "gb_per_s": nbytes / seconds / 1e9 if seconds else None,
        "precision": precision,
        "working_set_bytes": working_set,
        "memory_level": ceiling.level,
        "ceiling_gb_per_s": ceiling.bandwidth_gb_per_s,
        "ceiling_gflops_per_s": ceiling.peak_gflops_per_s,
        "roofline_ms": roofline_ms,
        "roofline_fraction": fraction,
        "bound": ceiling.bound(flops, nbytes),
        "above_ceiling": above_ceiling(fraction),
    }


def share(part: float, total: float) -> float:
    """``part / total``, 0.0 when the total is 0."""
    return part / total if total else 0.0


def cell(value: float | None, fmt: str = ",.2f") -> str:
    """A number as a table cell; an absent one (None) as a dash."""
    return "—" if value is None else format(value, fmt)


def flagged(fraction: float | None, above: bool | None) -> str:
    """A roofline fraction as a percentage cell, ``!`` after it when the pass ran above its ceiling."""
    return cell(None if fraction is None else 100 * fraction, ".0f") + ("!" if above else "")
