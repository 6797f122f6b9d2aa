"""Several runners timed side by side in interleaved rounds: the way sepconv compares engines on a
shared, noisy machine (``sepconv optimize``, ``benchmarks/deploy.py``).

Each round times every runner in turn: first a pause (``pause_s``) so that the previous runner's
worker threads go idle — OpenMP (PyTorch) spin-waits up to 200 ms after a parallel region and ONNX
Runtime's and OpenVINO's pools spin after a run, stealing cores from whoever runs next — then one
untimed call, then ``per_round`` timed calls. A slow moment of the machine falls on the runners of
one round alike; the median over all rounds' samples is each runner's figure, and the ratio of two
runners within each round (:func:`round_ratios`) shows how much of a difference is steady.

Example::

    >>> timings = interleaved({"a": lambda: sum(range(100)), "b": lambda: sum(range(200))}, rounds=2,
    ...                       budget_s=0.01, pause_s=0)
    >>> sorted(timings), len(timings["a"].round_medians_ms)
    (['a', 'b'], 2)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .._util.checks import positive_int
from .._util.timing import Timing, measure

__all__ = ["Interleaved", "interleaved", "round_ratios"]


@dataclass(frozen=True)
class Interleaved:
    """One runner's times over all rounds (ms per call): median, 90th percentile, every sample, and
    each round's median."""

    median_ms: float
    p90_ms: float
    samples_ms: tuple[float, ...]
    round_medians_ms: tuple[float, ...]

    def to_dict(self) -> dict[str, object]:
        return {"median_ms": self.median_ms, "p90_ms": self.p90_ms, "samples": len(self.samples_ms),
                "round_medians_ms": list(self.round_medians_ms)}


def interleaved(calls: Mapping[str, Callable[[], object]], rounds: int = 5, budget_s: float = 2.0,
                pause_s: float = 0.3, max_per_round: int = 20,
                advance: Callable[[], None] | None = None) -> dict[str, Interleaved]:
    """Time every call of ``calls`` in ``rounds`` interleaved rounds (see the module docstring).
    The calls per round are sized from two warm-up calls so that each runner gets about
    ``budget_s`` seconds in all (at least one call per round, at most ``max_per_round``);
    ``advance`` is called after each round."""
    positive_int("rounds", rounds)
    if not calls:
        return {}
    per_round = {}
    for name, call in calls.items():
        warm = measure(call, repeats=1, warmup=1).median_ms
        per_round[name] = max(1, min(max_per_round, round(budget_s * 1e3 / max(warm, 1e-3) / rounds)))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    medians: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            if pause_s:
                time.sleep(pause_s)
            timing = measure(call, repeats=per_round[name], warmup=1)
            samples[name] += timing.samples_ms
            medians[name].append(timing.median_ms)
        if advance is not None:
            advance()
    out = {}
    for name, values in samples.items():
        overall = Timing.from_samples(values)
        out[name] = Interleaved(overall.median_ms, overall.p90_ms, overall.samples_ms, tuple(medians[name]))
    return out


def round_ratios(timings: Mapping[str, Interleaved], a: str, b: str) -> list[float]:
    """``a``'s round median over ``b``'s, round by round: the spread of their ratio."""
    return [x / y for x, y in zip(timings[a].round_medians_ms, timings[b].round_medians_ms, strict=True)]
