"""Whole-model latency and throughput per backend: eager NCHW, channels_last, torch.compile, ONNX Runtime.

Each backend prepares a callable once (a copy of the model in channels_last, a compiled graph, an
ONNX Runtime session), then :func:`time_backends` measures it at each batch size with
:func:`sepconv._util.timing.measure`: median and 90th percentile of ``repeats`` calls after ``warmup``.
A backend that cannot be prepared or run here (no C++ compiler for ``torch.compile``, an operator
ONNX cannot express) gives a row with ``status="failed"`` and the one-line reason, and the others
still run. eager, channels_last and compile run the model as given (BatchNorm and all, as the
per-layer profile does); onnxruntime runs :mod:`sepconv.deploy`'s export, BN folded.

Example::

    >>> rows = time_backends(nn.Conv2d(3, 8, 3), (1, 3, 32, 32), ["eager", "channels_last"], [1, 4], repeats=3)
    >>> [(r.backend, r.batch, r.status) for r in rows]
    [('eager', 1, 'ok'), ('eager', 4, 'ok'), ('channels_last', 1, 'ok'), ('channels_last', 4, 'ok')]
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .._util.checks import non_negative_int, positive_int
from .._util.runtime import eval_mode
from .._util.timing import Timing, measure
from .layers import MIN_REPEATS

__all__ = ["BACKENDS", "DEFAULT_BACKENDS", "BackendResult", "parse_backends", "prepare", "time_backends"]

BACKENDS = ("eager", "channels_last", "compile", "onnxruntime")
DEFAULT_BACKENDS = ("eager",)

Runner = Callable[[torch.Tensor], object]


@dataclass(frozen=True)
class BackendResult:
    """One backend at one batch size. Times in ms per call; ``samples_per_s = batch / median``;
    ``speedup_vs_eager`` is eager's median over this one's at the same batch (> 1: faster)."""

    backend: str
    batch: int
    status: str  # "ok" or "failed"
    error: str | None = None
    repeats: int | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    samples_per_s: float | None = None
    speedup_vs_eager: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_backends(text: str) -> list[str]:
    """``"eager"``, ``"eager,onnxruntime"`` or ``"all"`` -> backend names, eager always first.

    Example::

        >>> parse_backends("onnxruntime"), parse_backends("all")
        (['eager', 'onnxruntime'], ['eager', 'channels_last', 'compile', 'onnxruntime'])
    """
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    if names == ["all"]:
        return list(BACKENDS)
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise ValueError(f"backend={text!r} must be 'all' or a comma-separated list of {', '.join(BACKENDS)}")
    # eager is the reference every ratio is taken against, so it is always measured.
    return [name for name in BACKENDS if name in names or name == "eager"]


def prepare(backend: str, model: nn.Module, input_shape: Sequence[int], threads: int) -> Runner:
    """A callable running ``model`` (in eval mode, no grad) on an NCHW batch with ``backend``."""
    if backend == "eager":
        return _no_grad(model)
    if backend == "channels_last":
        fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
        run = _no_grad(fast)
        return lambda x: run(x.contiguous(memory_format=torch.channels_last))
    if backend == "compile":
        return _no_grad(torch.compile(copy.deepcopy(model)))
    if backend == "onnxruntime":
        return _onnxruntime(model, input_shape, threads)
    raise ValueError(f"backend={backend!r} must be one of {', '.join(BACKENDS)}")


def time_backends(
    model: nn.Module,
    input_shape: Sequence[int],
    backends: Sequence[str],
    batches: Sequence[int],
    repeats: int = 20,
    warmup: int = 2,
    threads: int | None = None,
    budget_s: float | None = None,
    advance: Callable[[], None] | None = None,
) -> list[BackendResult]:
    """Measure each backend at each batch size (the batch replaces ``input_shape[0]``); rows in
    ``backends`` order, then ``batches`` order. With ``budget_s`` (seconds for all rows together)
    a row makes fewer than ``repeats`` calls when its calls are slow, but at least
    :data:`~sepconv.profile.layers.MIN_REPEATS`. ``advance`` is called after each row."""
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    for batch in batches:
        positive_int("batch", batch)
    threads = torch.get_num_threads() if threads is None else positive_int("threads", threads)
    generator = torch.Generator().manual_seed(0)
    inputs = {b: torch.randn((b, *input_shape[1:]), generator=generator) for b in batches}
    rows: list[BackendResult] = []
    with eval_mode(model):
        for backend in backends:
            try:
                run = prepare(backend, model, input_shape, threads)
            except Exception as e:  # noqa: BLE001 - any backend's failure is reported, not raised
                rows += [_failed(backend, b, e) for b in batches]
                _advance(advance, len(batches))
                continue
            for batch in batches:
                try:
                    row_budget = None if budget_s is None else budget_s / (len(backends) * len(batches))
                    timing = _measure(lambda: run(inputs[batch]), repeats, warmup, row_budget)
                    rows.append(BackendResult(backend, batch, "ok", None, len(timing.samples_ms), timing.median_ms,
                                              timing.p90_ms, batch / (timing.median_ms * 1e-3)))
                except Exception as e:  # noqa: BLE001
                    rows.append(_failed(backend, batch, e))
                _advance(advance, 1)
    eager = {r.batch: r.median_ms for r in rows if r.backend == "eager" and r.status == "ok"}
    return [
        BackendResult(**{**r.to_dict(), "speedup_vs_eager": eager[r.batch] / r.median_ms})
        if r.status == "ok" and r.batch in eager else r
        for r in rows
    ]


def _measure(fn: Callable[[], object], repeats: int, warmup: int, budget_s: float | None) -> Timing:
    # The warm-up calls (at least one: compilation, session start) also tell how long a call takes.
    probe = measure(fn, repeats=max(warmup, 1), warmup=0)
    if budget_s is not None:
        repeats = max(MIN_REPEATS, min(repeats, int(budget_s / (probe.samples_ms[-1] * 1e-3))))
    return measure(fn, repeats, warmup=0)


def _no_grad(model: Callable[[torch.Tensor], object]) -> Runner:
    def run(x: torch.Tensor) -> object:
        with torch.no_grad():
            return model(x)

    return run


def _onnxruntime(model: nn.Module, input_shape: Sequence[int], threads: int) -> Runner:
    """The ONNX Runtime path of :mod:`sepconv.deploy`: the clean export (BN folded into the convs,
    checked against PyTorch, dynamic batch) on a session with ``threads`` intra-op threads."""
    from ..deploy import ort_session

    return ort_session(model, tuple(input_shape), threads=threads)


def _failed(backend: str, batch: int, error: BaseException) -> BackendResult:
    text = str(error).strip()
    reason = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
    return BackendResult(backend, batch, "failed", reason[:300])


def _advance(advance: Callable[[], None] | None, steps: int) -> None:
    for _ in range(steps if advance is not None else 0):
        advance()
