"""Wall-clock timing the way DESIGN.md asks for it: warm-up, then the median of repeated runs.

The median (not the mean) because a shared machine's timings have a long right tail: one
preempted run moves the mean but not the median; the 90th percentile shows how long that tail is.
``time.perf_counter`` is the clock (monotonic, the highest resolution Python has). Callers state
``torch.get_num_threads()`` and the batch beside the numbers; see :func:`time_module`.

Example::

    >>> timing = measure(lambda: sum(range(1000)), repeats=5, warmup=1)
    >>> len(timing.samples_ms), timing.median_ms <= timing.p90_ms
    (5, True)
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .checks import non_negative_int, positive_int
from .runtime import eval_mode

__all__ = ["Timing", "measure", "time_module"]


@dataclass(frozen=True)
class Timing:
    """Milliseconds per call: the median, the 90th percentile (nearest rank) and every sample."""

    median_ms: float
    p90_ms: float
    samples_ms: tuple[float, ...]

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> Timing:
        """The median and nearest-rank 90th percentile of ``samples`` (milliseconds), kept in order."""
        if not samples:
            raise ValueError("samples=[] must hold at least one timing")
        ranked = sorted(samples)
        return cls(statistics.median(samples), ranked[math.ceil(0.9 * len(ranked)) - 1], tuple(samples))

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"median_ms": self.median_ms, "p90_ms": self.p90_ms, "samples_ms": list(self.samples_ms)}


def measure(fn: Callable[[], object], repeats: int = 10, warmup: int = 2) -> Timing:
    """Call ``fn()`` ``warmup`` times untimed, then ``repeats`` times timed one by one.

    Warm-up pays for first-call costs (allocator growth, oneDNN kernel selection, lazy imports)
    that a steady-state number should not include.
    """
    if not callable(fn):
        raise ValueError(f"fn={fn!r} must be callable")
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return Timing.from_samples(samples)


def time_module(module: nn.Module, x: torch.Tensor, repeats: int = 10, warmup: int = 2) -> Timing:
    """Time ``module(x)`` in eval mode under ``torch.inference_mode`` (training flags restored).

    Runs on whatever threads torch has; set them with ``torch.set_num_threads`` and report them.

    Example::

        >>> time_module(nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 64, 64), repeats=3).samples_ms.__len__()
        3
    """
    with eval_mode(module), torch.inference_mode():
        return measure(lambda: module(x), repeats, warmup)


