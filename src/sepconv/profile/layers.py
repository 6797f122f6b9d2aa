"""Per-layer wall-clock time: every leaf module replayed in isolation on its own recorded input.

The unit is one call of one leaf module, the same rows as :func:`sepconv.cost.analyze` (a conv, its
BatchNorm and its activation are three rows, as eager PyTorch runs them as three kernels; a
deployed model folds the norm into the conv, see ``sepconv.deploy``). One forward pass with hooks
records each call's arguments; then, in each of ``repeats`` rounds, the whole model runs once and
every layer runs once on its recorded input, each call timed on its own. The medians are taken
over rounds. Interleaving the rounds means a layer's samples and the whole model's are drawn under
the same load, so on one thread, or on an idle machine, the per-layer times add up to the
whole-model time (minus what no leaf module does: residual additions, reshapes, Python glue) even
while other processes come and go. Not so with several threads on cores other processes also use:
at every kernel's barrier OpenMP threads spin-wait for one that lost its core, and the whole model
(hundreds of kernels back to back) can take many times its layers' sum (measured: 240.7 ms against
6.7 ms, 2 threads on 2 loaded cores, ``benchmarks/results/profile/loaded_machine.txt``); :func:`sepconv.profile.report.ratio_warning` says so in the
report. Replaying a layer right after all the others also leaves the caches about as cold as they
are in the real forward pass.

Example::

    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    >>> profile = time_layers(model, torch.randn(1, 3, 32, 32), names=["0", "1"], repeats=5)
    >>> [row.name for row in profile.layers], profile.model.median_ms > 0
    (['0', '1'], True)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._util.checks import non_negative_int, positive_int
from .._util.runtime import eval_mode
from .._util.timing import Timing, measure

__all__ = ["MIN_REPEATS", "LayerProfile", "LayerTiming", "record_calls", "time_layers"]

MIN_REPEATS = 5  # rounds (or calls) timed even when a time budget has run out


@dataclass(frozen=True)
class LayerTiming:
    """The measured time of one leaf-module call, named as in :class:`sepconv.cost.LayerCost`."""

    name: str
    timing: Timing


@dataclass(frozen=True)
class LayerProfile:
    """Per-layer timings and the whole model's, sampled in the same rounds."""

    layers: list[LayerTiming]
    model: Timing

    @property
    def layers_ms(self) -> float:
        """Sum of the per-layer medians."""
        return sum(row.timing.median_ms for row in self.layers)


@dataclass(frozen=True)
class _Call:
    name: str
    module: nn.Module
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def record_calls(model: nn.Module, x: torch.Tensor, *, grad: bool = False) -> list[_Call]:
    """Run ``model(x)`` once and return every leaf-module call with its arguments.

    Names follow :func:`sepconv.cost.analyze`: the module's qualified name, ``"(model)"`` for a
    model that is itself a leaf, and ``name#2``, ``name#3`` ... for a module called again. Without
    ``grad`` the forward runs under ``torch.inference_mode`` and the arguments are the forward's own
    tensors; with ``grad`` it runs with gradients enabled (in whatever mode the model is in) and
    each tensor argument is kept as the call received it (before an in-place module changes it):
    a detached copy that requires a gradient exactly when the forward's did, ready to be replayed
    through autograd on its own (:mod:`sepconv.profile.training`).
    """
    names = {module: name or "(model)" for name, module in model.named_modules()}
    counts: Counter[nn.Module] = Counter()
    calls: list[_Call] = []

    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any = None) -> None:
        counts[module] += 1
        suffix = f"#{counts[module]}" if counts[module] > 1 else ""
        if grad:
            args, kwargs = tuple(_detached(a) for a in args), {k: _detached(v) for k, v in kwargs.items()}
        calls.append(_Call(names[module] + suffix, module, args, kwargs))

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) if grad else
               m.register_forward_hook(hook, with_kwargs=True)
               for m in names if next(m.children(), None) is None]
    try:
        with torch.enable_grad() if grad else torch.inference_mode():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _detached(value: Any) -> Any:
    """A tensor as a new leaf holding a copy of its values, requiring a gradient as it did."""
    if not isinstance(value, torch.Tensor):
        return value
    copy = value.detach().clone()
    return copy.requires_grad_() if value.requires_grad and copy.is_floating_point() else copy


def time_layers(
    model: nn.Module,
    x: torch.Tensor,
    names: Sequence[str],
    repeats: int = 20,
    warmup: int = 2,
    budget_s: float | None = None,
    advance: Callable[[], None] | None = None,
) -> LayerProfile:
    """Time each leaf call named in ``names`` (the rows of a cost report, in order) and the whole
    model, in ``warmup`` untimed then ``repeats`` timed interleaved rounds (see the module
    docstring). With ``budget_s``, timed rounds stop once that many seconds have passed and at
    least :data:`MIN_REPEATS` rounds are done (a slow model or a busy machine still finishes).
    ``advance`` is called once per round (a progress bar's step). Runs in eval mode under
    ``torch.inference_mode`` on the threads torch has.

    Raises ``ValueError`` if a name is not a leaf-module call of ``model(x)``.
    """
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    with eval_mode(model), torch.inference_mode():
        by_name = {call.name: call for call in record_calls(model, x)}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise ValueError(f"names: {', '.join(missing[:5])} are not leaf-module calls of the model")
        calls = [by_name[name] for name in names]
        whole: list[float] = []
        samples: list[list[float]] = [[] for _ in calls]
        start = time.perf_counter()
        for round_ in range(warmup + repeats):
            timed = round_ >= warmup
            if timed and len(whole) >= MIN_REPEATS and budget_s is not None \
                    and time.perf_counter() - start > budget_s:
                break
            ms = _once(lambda: model(x))
            if timed:
                whole.append(ms)
            for call, row in zip(calls, samples):
                ms = _once(lambda call=call: call.module(*call.args, **call.kwargs))
                if timed:
                    row.append(ms)
            if advance is not None:
                advance()
    return LayerProfile(
        layers=[LayerTiming(call.name, _timing(row)) for call, row in zip(calls, samples)],
        model=_timing(whole),
    )


def _once(fn: Callable[[], object]) -> float:
    return measure(fn, repeats=1, warmup=0).median_ms


def _timing(samples: list[float]) -> Timing:
    """A :class:`Timing` over samples gathered across rounds (median, nearest-rank p90)."""
    return Timing.from_samples(samples)
