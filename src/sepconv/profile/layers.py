"""Per-layer wall-clock time: every unit replayed in isolation on its own recorded input, the
functional ops of the parents' forwards likewise, and each unit timed in place in the model.

The unit is one call of one unit module (:func:`sepconv.cost.leaf_modules`), the same rows as
:func:`sepconv.cost.analyze` (a conv, its BatchNorm and its activation are three rows, as eager
PyTorch runs them as three kernels; a deployed model folds the norm into the conv, see
``sepconv.deploy``; a norm that runs its activation inside, timm's ``BatchNormAct2d``, is one row).
One forward pass records each call's arguments and, at the dispatch level, every op a parent's
own ``forward`` runs between its children's calls (residual adds, squeeze-and-excitation
multiplies, concatenations, shuffles: :mod:`sepconv.profile.functional`). Then, in each of
``repeats`` rounds: the whole model runs once; with ``in_model``, once more with a pair of hooks
on every unit timing each call in place (``perf_counter`` around the call: the layer in the
model, its input as the model left it in cache); then every layer and every functional op runs
once on its recorded input, in the order they ran, each timed on its own. The medians are taken
over rounds. Interleaving the rounds means a layer's samples and the whole model's are drawn under
the same load, so on one thread, or on an idle machine, the layers and functional ops add up to
the whole-model time (minus Python between module calls and what a layer costs more or less in
the model than alone) even while other processes come and go. Not so with several threads on cores
other processes also use: at every kernel's barrier OpenMP threads spin-wait for one that lost its
core, and the whole model (hundreds of kernels back to back) can take many times its layers' sum
(measured: 240.7 ms against 6.7 ms, 2 threads on 2 loaded cores,
``benchmarks/results/profile/loaded_machine.txt``). Minor page faults are counted around the whole
model, the replays and each layer in place: eager PyTorch on glibc returns a large freed tensor to
the OS and gets it back, zeroed, in the next forward, which the replays, reusing their memory, do
not pay (measured here, MobileNetV2 at 224 px, one thread: 2,300 to 4,500 faults a run and 25.5 to
35.6 ms, against none and 18.6 to 21.8 ms with ``MALLOC_MMAP_THRESHOLD_=268435456
MALLOC_TRIM_THRESHOLD_=1073741824``). :func:`addup` explains what does not add up, and blames
other processes only when the load average says so.

Example::

    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    >>> profile = time_layers(model, torch.randn(1, 3, 32, 32), names=["0", "1"], repeats=5)
    >>> [row.name for row in profile.layers], profile.model.median_ms > 0, profile.in_model_ms > 0
    (['0', '1'], True, True)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._util.checks import non_negative_int, positive_int
from .._util.runtime import eval_mode, is_busy
from .._util.timing import Timing, measure
from ..cost import unit_hooks
from .functional import FunctionalCall, capture_functional

try:
    import resource  # minor page faults (getrusage); not on Windows
except ImportError:  # pragma: no cover
    resource = None

__all__ = ["ADDUP_TOLERANCE", "FAULTS_WORTH_SAYING", "MIN_REPEATS", "AddUp", "FunctionalTiming", "LayerProfile",
           "LayerTiming", "Recording", "addup", "record_calls", "record_forward", "time_layers"]

MIN_REPEATS = 5  # rounds (or calls) timed even when a time budget has run out
ADDUP_TOLERANCE = 0.15  # layers + functional ops within 15% of the whole model: they account for it
FAULTS_WORTH_SAYING = 100  # page faults a run more than the replays' that the add-up names (~0.1 ms and up)


@dataclass(frozen=True)
class LayerTiming:
    """The measured time of one unit call, named as in :class:`sepconv.cost.LayerCost`: replayed
    alone (``timing``) and, when measured, timed in place in the model (``in_model``), with the
    median minor page faults the call took there (``in_model_faults``: memory the allocator got
    fresh from the OS, which the kernel zeroes on first touch; None where not counted)."""

    name: str
    timing: Timing
    in_model: Timing | None = None
    in_model_faults: int | None = None


@dataclass(frozen=True)
class FunctionalTiming:
    """The measured time of one functional op replayed alone (:class:`~sepconv.profile.functional.FunctionalCall`):
    ``name`` (``blocks.3:add``), ``parent`` (the module whose forward ran it, ``(model)`` for the
    root), ``op`` (``aten.add.Tensor``), ``kind`` (:data:`~sepconv.profile.functional.FUNCTIONAL_KINDS`),
    ``bytes`` read and written (0 for a view)."""

    name: str
    parent: str
    op: str
    kind: str
    timing: Timing
    bytes: int


@dataclass(frozen=True)
class LayerProfile:
    """Per-layer timings, the functional ops' and the whole model's, sampled in the same rounds;
    ``instrumented`` is the whole forward with the in-model hooks on (None when not measured);
    ``model_faults`` and ``replay_faults`` the median minor page faults of one whole-model run and
    of one round's replays together (None where the OS does not count them)."""

    layers: list[LayerTiming]
    model: Timing
    functional: list[FunctionalTiming] = field(default_factory=list)
    instrumented: Timing | None = None
    model_faults: int | None = None
    replay_faults: int | None = None

    @property
    def layers_ms(self) -> float:
        """Sum of the per-layer medians (replayed alone)."""
        return sum(row.timing.median_ms for row in self.layers)

    @property
    def functional_ms(self) -> float:
        """Sum of the functional ops' medians."""
        return sum(row.timing.median_ms for row in self.functional)

    @property
    def accounted_ms(self) -> float:
        """Layers + functional ops: what the replays account for of the whole model's time."""
        return self.layers_ms + self.functional_ms

    @property
    def in_model_ms(self) -> float | None:
        """Sum of the layers' medians timed in place in the model, or None when not measured."""
        if not self.layers or any(row.in_model is None for row in self.layers):
            return None
        return sum(row.in_model.median_ms for row in self.layers)

    def functional_by_parent(self) -> dict[str, float]:
        """Parent -> the summed medians of its functional ops, largest first."""
        totals: dict[str, float] = {}
        for row in self.functional:
            totals[row.parent] = totals.get(row.parent, 0.0) + row.timing.median_ms
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    def addup(self, load: float | None = None, cores: int | None = None, threads: int = 1) -> AddUp:
        """:func:`addup` of this profile's totals."""
        return addup(self.layers_ms, self.functional_ms, self.model.median_ms, in_model_ms=self.in_model_ms,
                     parents=self.functional_by_parent(), load=load, cores=cores, threads=threads,
                     model_faults=self.model_faults, replay_faults=self.replay_faults)


@dataclass(frozen=True)
class _Call:
    name: str
    module: nn.Module
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def run(self) -> Any:
        return self.module(*self.args, **self.kwargs)


@dataclass(frozen=True)
class Recording:
    """One recorded forward: the unit calls, the functional ops, and both in the order they ran."""

    calls: list[_Call]
    functional: list[FunctionalCall]
    sequence: list[_Call | FunctionalCall]


def record_calls(model: nn.Module, x: torch.Tensor, *, grad: bool = False) -> list[_Call]:
    """Run ``model(x)`` once and return every unit call with its arguments.

    Names are :func:`sepconv.cost.unit_hooks`' (the same as :func:`sepconv.cost.analyze`'s rows):
    the unit's qualified name, ``"(model)"`` for a model that is itself a unit, and ``name#2``,
    ``name#3`` ... for a unit called again. Without ``grad`` the forward runs under
    ``torch.inference_mode`` and the arguments are the forward's own tensors; with ``grad`` it runs
    with gradients enabled (in whatever mode the model is in) and each tensor argument is kept as
    the call received it (before an in-place module changes it): a detached copy that requires a
    gradient exactly when the forward's did, ready to be replayed through autograd on its own
    (:mod:`sepconv.profile.training`).
    """
    calls: list[_Call] = []

    def record(name: str, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if grad:
            args, kwargs = tuple(_detached(a) for a in args), {k: _detached(v) for k, v in kwargs.items()}
        calls.append(_Call(name, module, args, kwargs))

    with unit_hooks(model, record, before=grad), torch.enable_grad() if grad else torch.inference_mode():
        model(x)
    return calls


def record_forward(model: nn.Module, x: torch.Tensor, *, functional: bool = True) -> Recording:
    """Run ``model(x)`` once under ``torch.inference_mode`` and return its unit calls (as
    :func:`record_calls`) and, with ``functional``, the ops the parents' forwards ran
    (:func:`sepconv.profile.functional.capture_functional`), both also in the order they ran."""
    calls: list[_Call] = []
    with torch.inference_mode(), ExitStack() as stack:
        capture = stack.enter_context(capture_functional(model)) if functional else None
        sequence: list[Any] = capture.sequence if capture is not None else []  # ops and unit calls, as they ran

        def record(name: str, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            calls.append(_Call(name, module, args, kwargs))
            sequence.append(calls[-1])

        stack.enter_context(unit_hooks(model, record))
        model(x)
    return Recording(calls, capture.calls if capture is not None else [], sequence)


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
    *,
    functional: bool = True,
    in_model: bool = True,
) -> LayerProfile:
    """Time each unit call named in ``names`` (the rows of a cost report, in order) and the whole
    model, in ``warmup`` untimed then ``repeats`` timed interleaved rounds (see the module
    docstring); with ``functional``, also every op the parents' forwards run (``LayerProfile.functional``,
    in the order they ran); with ``in_model``, also each named call timed in place in an
    instrumented forward (``LayerTiming.in_model``, ``LayerProfile.instrumented``). With
    ``budget_s``, timed rounds stop once that many seconds have passed and at least
    :data:`MIN_REPEATS` rounds are done (a slow model or a busy machine still finishes).
    ``advance`` is called once per round (a progress bar's step). Runs in eval mode under
    ``torch.inference_mode`` on the threads torch has.

    Raises ``ValueError`` if a name is not a unit call of ``model(x)``.
    """
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    with eval_mode(model), torch.inference_mode():
        recording = record_forward(model, x, functional=functional)
        by_name = {call.name: call for call in recording.calls}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise ValueError(f"names: {', '.join(missing[:5])} are not leaf-module calls of the model")
        wanted = set(names)
        replays = [item for item in recording.sequence if isinstance(item, FunctionalCall) or item.name in wanted]
        samples: dict[int, list[float]] = {id(item): [] for item in replays}
        in_place: dict[str, list[float]] = {name: [] for name in names}
        in_place_faults: dict[str, list[int]] = {name: [] for name in names}
        whole: list[float] = []
        instrumented: list[float] = []
        model_faults: list[int] = []
        replay_faults: list[int] = []
        start = time.perf_counter()
        for round_ in range(warmup + repeats):
            timed = round_ >= warmup
            if timed and len(whole) >= MIN_REPEATS and budget_s is not None \
                    and time.perf_counter() - start > budget_s:
                break
            faults = _faults()
            ms = _once(lambda: model(x))
            if timed:
                whole.append(ms)
                model_faults.append(_faults() - faults)
            if in_model:
                ms, per_call = _in_model(model, x, wanted)
                if timed:
                    instrumented.append(ms)
                    for name, (call_ms, call_faults) in per_call.items():
                        in_place[name].append(call_ms)
                        in_place_faults[name].append(call_faults)
            faults = _faults()
            for item in replays:
                if isinstance(item, FunctionalCall):
                    item.prepare()
                ms = _once(item.run)
                if timed:
                    samples[id(item)].append(ms)
            if timed:
                replay_faults.append(_faults() - faults)
            if advance is not None:
                advance()
    counted = resource is not None
    layers = [LayerTiming(name, _timing(samples[id(by_name[name])]),
                          _timing(in_place[name]) if in_model and in_place[name] else None,
                          _median(in_place_faults[name]) if counted and in_place_faults[name] else None)
              for name in names]
    ops = [FunctionalTiming(op.name, op.parent, op.op, op.kind, _timing(samples[id(op)]), op.bytes)
           for op in recording.functional]
    return LayerProfile(layers=layers, model=_timing(whole), functional=ops,
                        instrumented=_timing(instrumented) if instrumented else None,
                        model_faults=_median(model_faults) if counted else None,
                        replay_faults=_median(replay_faults) if counted else None)


def _in_model(model: nn.Module, x: torch.Tensor, wanted: set[str]) -> tuple[float, dict[str, tuple[float, int]]]:
    """One forward with each unit call timed in place: ``(whole forward ms, {name: (ms, page
    faults)})``. The hooks are registered for this pass only, so the other timings run without them."""
    per_call: dict[str, tuple[float, int]] = {}
    began: list[tuple[int, float]] = []

    def start(name: str, module: nn.Module) -> None:
        began.append((_faults(), time.perf_counter()))

    def record(name: str, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        end = time.perf_counter()
        faults, then = began.pop()
        if name in wanted:
            per_call[name] = ((end - then) * 1e3, _faults() - faults)

    with unit_hooks(model, record, start=start):
        ms = _once(lambda: model(x))
    return ms, per_call


@dataclass(frozen=True)
class AddUp:
    """How the parts of a per-layer profile add up to the whole model (:func:`addup`).

    ``accounted_ms`` = layers + functional ops (each replayed alone) + ``unmapped_ms`` (an engine's
    nodes that map to no layer; 0 in eager PyTorch); ``unaccounted_ms`` = model -
    accounted (negative when the parts take longer than the whole), ``unaccounted_share`` its
    fraction of the model; ``hot_cache_ms`` = the layers timed in place in the model - replayed
    alone (None when not measured); ``glue_ms`` = model - in-model layers - functional ops: Python
    between module calls; ``parents`` the largest functional-op parents (name, ms);
    ``model_faults``/``replay_faults`` the page faults of a model run and of the replays; ``within``
    whether the share is within the tolerance; ``busy`` whether the load average says other
    processes competed (:func:`sepconv._util.runtime.is_busy`); ``text`` says all that in a
    sentence, ``warning`` the same prefixed with "warning: " when not ``within``, else None.
    """

    model_ms: float
    layers_ms: float
    functional_ms: float
    in_model_ms: float | None
    accounted_ms: float
    unaccounted_ms: float
    unaccounted_share: float
    hot_cache_ms: float | None
    glue_ms: float | None
    parents: tuple[tuple[str, float], ...]
    model_faults: int | None
    replay_faults: int | None
    load: float | None
    cores: int | None
    busy: bool
    within: bool
    text: str
    unmapped_ms: float = 0.0

    @property
    def warning(self) -> str | None:
        return None if self.within else f"warning: {self.text}"


def addup(layers_ms: float, functional_ms: float, model_ms: float, *, in_model_ms: float | None = None,
          parents: Mapping[str, float] | None = None, load: float | None = None, cores: int | None = None,
          threads: int = 1, model_faults: int | None = None, replay_faults: int | None = None,
          tolerance: float = ADDUP_TOLERANCE, top: int = 3, unmapped_ms: float = 0.0) -> AddUp:
    """Explain how ``layers_ms`` (the layers replayed alone) and ``functional_ms`` (the parents'
    functional ops replayed alone) add up to ``model_ms`` (the whole model, same rounds): what is
    unaccounted (ms and share of the model), the ``top`` largest functional-op ``parents`` (name ->
    ms), the layers in the model against replayed alone (``in_model_ms``: a layer replayed right
    after itself finds its input hot in cache) and what is left (Python between module calls), and
    the page faults of a whole-model run against the replays' (``model_faults``, ``replay_faults``:
    eager PyTorch on glibc hands a large freed tensor back to the OS and gets it again, zeroed, in
    the next run; the replays reuse theirs). ``unmapped_ms``: an engine's nodes that map to no layer
    (ONNX Runtime's layout changes), accounted for and named apart.
    Other processes are blamed only when the load average says they competed (``load`` at or
    above 3/4 of ``cores``: :func:`sepconv._util.runtime.is_busy`); with ``threads`` over 1 they
    also make OpenMP threads spin-wait at every kernel's barrier. A pure function of its arguments.

    Example::

        >>> a = addup(19.1, 6.2, 27.4, in_model_ms=21.0, parents={"blocks.5.0": 1.2}, load=0.2, cores=2)
        >>> round(a.unaccounted_ms, 2), a.within, a.busy, "other processes" in a.text
        (2.1, True, False, False)
    """
    accounted = layers_ms + functional_ms + unmapped_ms
    unaccounted = model_ms - accounted
    share = unaccounted / model_ms if model_ms else 0.0
    busy = is_busy(load, cores)
    largest = tuple(sorted((parents or {}).items(), key=lambda item: -item[1])[:top])
    hot = None if in_model_ms is None else in_model_ms - layers_ms
    glue = None if in_model_ms is None else model_ms - in_model_ms - functional_ms
    unmapped = f" + unmapped nodes {unmapped_ms:.2f} ms" if unmapped_ms else ""
    text = (f"layers {layers_ms:.2f} ms + functional ops {functional_ms:.2f} ms{unmapped} = {accounted:.2f} ms, "
            f"{accounted / model_ms if model_ms else 0.0:.0%} of the whole model's {model_ms:.2f} ms")
    if largest:
        more = ", ..." if len(parents or {}) > len(largest) else ""
        text += " (functional ops by parent: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in largest) + more + ")"
    text += (f"; {unaccounted:.2f} ms ({share:.0%}) unaccounted" if unaccounted >= 0 else
             f"; the parts take {-unaccounted:.2f} ms ({-share:.0%}) more than the whole")
    if in_model_ms is not None:
        if hot >= 0:
            why = (f"{hot:.2f} ms more than replayed alone (replayed alone a layer reuses warm memory: its input "
                   "in cache, its output where the last replay's was)")
        else:
            why = (f"{-hot:.2f} ms less than replayed alone (in the model a layer's input comes hot from the layer "
                   "before)")
        left = (f"{glue:.2f} ms between module calls (Python: module calls, the parents' forward)" if glue > 0
                else "nothing between module calls")
        text += f"; timed in place in the model the layers take {in_model_ms:.2f} ms, {why}, which leaves {left}"
    if model_faults is not None and model_faults - (replay_faults or 0) >= FAULTS_WORTH_SAYING:
        text += (f"; a whole-model run takes {model_faults:,} page faults against {replay_faults or 0:,} for all "
                 "the replays: the allocator returns large freed tensors to the OS and gets them back zeroed "
                 "every run (with glibc, raising MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ keeps them)")
    if busy:
        text += (f"; the machine was busy (load {load} on {cores} cores): other processes took the core in "
                 "between" + (f", and with {threads} threads OpenMP threads spin-wait for a busy one at every "
                              "kernel's barrier" if threads > 1 else "") + ": profile an idle machine")
    elif load is not None and abs(share) > tolerance:
        text += f"; not other processes: the load average was {load} on {cores} cores"
    return AddUp(model_ms, layers_ms, functional_ms, in_model_ms, accounted, unaccounted, share, hot, glue, largest,
                 model_faults, replay_faults, load, cores, busy, abs(share) <= tolerance, text, unmapped_ms)


def _faults() -> int:
    """Minor page faults of this process so far (0 where the OS does not count them)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource is not None else 0


def _median(values: list[int]) -> int:
    return int(statistics.median(values))


def _once(fn: Callable[[], object]) -> float:
    return measure(fn, repeats=1, warmup=0).median_ms


def _timing(samples: list[float]) -> Timing:
    """A :class:`Timing` over samples gathered across rounds (median, nearest-rank p90)."""
    return Timing.from_samples(samples)
