"""The whole training step per backend and precision: images/s, peak memory, speed-up over eager fp32.

A step is what a training loop does per batch: the forward and a loss, ``loss.backward()``,
``optimizer.step()`` with SGD (momentum 0.9), ``optimizer.zero_grad(set_to_none=True)`` (last, so
that no step starts holding the previous one's gradients). The loss is
the mean of the squared outputs, a stand-in whose cost is nothing next to the network's (a profile
has no labels). Every row runs its own deep copy of the model in training mode, so the model given
is never changed. Backends (:data:`TRAIN_BACKENDS`, the names of :mod:`sepconv.engines.runner`):

- ``eager``: NCHW, as the model is written;
- ``channels_last``: weights and input in NHWC (oneDNN's preferred layout on CPU);
- ``inductor``: ``torch.compile`` of the model (forward and backward, by AOTAutograd), the
  optimizer step eager; compiling takes a minute or more on 2 cores, so only when asked.

Precisions (:data:`PRECISIONS`): ``fp32``; ``bf16`` and ``fp16``, mixed precision with
``torch.autocast("cpu", dtype)`` (weights, gradients and the optimizer stay fp32), fp16 with a
``torch.amp.GradScaler`` as fp16 training needs. A reduced precision runs only where oneDNN says
this CPU has it (``torch.ops.mkldnn._is_mkldnn_bf16_supported()``,
``torch.ops.mkldnn._is_mkldnn_fp16_supported()``): asked by name on a machine without it, it is
an error naming what the machine has (:func:`parse_precisions`); asked as ``all``, its rows are
``skipped`` with the reason.

Peak memory (:func:`peak_memory_bytes`) is measured, on one extra step after the timed ones:
``torch.profiler`` with ``profile_memory=True`` records every allocation and free of the CPU
allocator; the running sum of those records, from the step's start, peaks at the largest amount of
tensor memory the step held beyond what existed before it (activations kept for backward,
gradients, temporaries, and what a compiled graph allocates). The weights and the optimizer's
momentum, allocated before, are not in it; allocator caching and fragmentation are not either.
(The profiler records no free of a block allocated before it started; a step here frees none.)

Example::

    >>> rows = time_steps(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten()), (2, 3, 16, 16), ["eager"], ["fp32"],
    ...                   [2], repeats=3)
    >>> [(r.backend, r.precision, r.batch, r.status) for r in rows]
    [('eager', 'fp32', 2, 'ok')]
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .._util.checks import ArgumentError, non_negative_int, positive_int
from .._util.modules import tensors_in
from .._util.precision import DTYPES, PRECISIONS
from .._util.runtime import threads_set_to
from ..engines.runner import canonical, time_runner
from .training import check_trainable, training_copy

__all__ = ["DTYPES", "MEMORY_METHOD", "OPTIMIZER", "PRECISIONS", "TRAIN_BACKENDS", "StepResult", "build_step",
           "parse_precisions", "peak_memory_bytes", "precision_unavailable", "time_steps", "training_backends"]

TRAIN_BACKENDS = ("eager", "channels_last", "inductor")
OPTIMIZER = "SGD(lr=1e-3, momentum=0.9)"
LOSS = "mean of the squared outputs"
MEMORY_METHOD = ("torch.profiler allocator records (profile_memory=True) over one extra step: the largest tensor "
                 "memory held above the step's start")


def precision_unavailable(precision: str) -> str | None:
    """None when this machine can train in ``precision``, else why it cannot.

    Example::

        >>> precision_unavailable("fp32") is None
        True
    """
    if precision == "fp32":
        return None
    check = {"bf16": "_is_mkldnn_bf16_supported", "fp16": "_is_mkldnn_fp16_supported"}[precision]
    try:
        supported = bool(getattr(torch.ops.mkldnn, check)())
    except (AttributeError, RuntimeError) as err:
        return f"this torch cannot tell whether the CPU runs {precision} (torch.ops.mkldnn.{check}: {err})"
    return None if supported else f"oneDNN reports no {precision} support on this CPU (torch.ops.mkldnn.{check}())"


def parse_precisions(text: str) -> list[str]:
    """``--precision``'s value -> precisions, in :data:`PRECISIONS` order, fp32 always first (the
    reference every speed-up is taken against). ``all`` gives every precision (rows this machine
    cannot run are skipped, with the reason); a precision named that this machine cannot run is an
    :class:`ArgumentError` naming the ones it can.

    Example::

        >>> parse_precisions("fp32"), len(parse_precisions("all"))
        (['fp32'], 3)
    """
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    if names == ["all"]:
        return list(PRECISIONS)
    if not names or any(name not in PRECISIONS for name in names):
        raise ArgumentError("precision", f"precision={text!r} must be 'all' or a comma-separated list of "
                                         f"{', '.join(PRECISIONS)}")
    for name in names:
        reason = precision_unavailable(name)
        if reason:
            available = [p for p in PRECISIONS if precision_unavailable(p) is None]
            raise ArgumentError("precision", f"precision={name!r} cannot run on this machine: {reason}; "
                                             f"available here: {', '.join(available)}")
    return [name for name in PRECISIONS if name in names or name == "fp32"]


def training_backends(backends: Sequence[str]) -> list[str]:
    """The backends among ``backends`` that can train (ONNX Runtime runs inference only), eager first."""
    names = {canonical(name) for name in backends} | {"eager"}
    return [name for name in TRAIN_BACKENDS if name in names]


@dataclass(frozen=True)
class StepResult:
    """One backend at one precision and batch: ``status`` "ok", "failed" (``error`` says why) or
    "skipped" (``error`` says why: a precision this machine does not run); times in ms per step,
    median and 90th percentile of ``repeats`` steps; ``images_per_s = batch / median``;
    ``speedup_vs_eager`` is eager fp32's median over this one's at the same batch (> 1: faster)."""

    backend: str
    precision: str
    batch: int
    status: str
    error: str | None = None
    repeats: int | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    images_per_s: float | None = None
    peak_memory_bytes: int | None = None
    speedup_vs_eager: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _loss(output: object) -> torch.Tensor:
    return sum(t.float().square().mean() for t in tensors_in(output) if t.is_floating_point())


def build_step(model: nn.Module, backend: str, precision: str) -> Callable[[torch.Tensor], None]:
    """``step(x)``: one training step on the batch ``x`` (NCHW) of a training copy of ``model``
    on ``backend`` at ``precision`` (see the module docstring).

    Example::

        >>> step = build_step(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), "channels_last", "fp32")
        >>> step(torch.randn(2, 3, 8, 8))
    """
    if backend not in TRAIN_BACKENDS:
        raise ArgumentError("backend", f"backend={backend!r} cannot train: use one of {', '.join(TRAIN_BACKENDS)}")
    if precision not in PRECISIONS:
        raise ArgumentError("precision", f"precision={precision!r} must be one of {', '.join(PRECISIONS)}")
    work = training_copy(model)
    layout = torch.channels_last if backend == "channels_last" else torch.contiguous_format
    work = work.to(memory_format=layout)
    forward: Callable[[torch.Tensor], object] = work
    compiling: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    if backend == "inductor":
        forward = torch.compile(work, dynamic=False)
        # as in sepconv.engines.runner: dynamo keeps at most `recompile_limit` versions of one
        # forward code object, shared by every instance of a model class; compile regardless
        compiling = functools.partial(torch._dynamo.config.patch, recompile_limit=1 << 16)
    optimizer = torch.optim.SGD([p for p in work.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    dtype = None if precision == "fp32" else DTYPES[precision]  # fp32: no autocast
    scaler = torch.amp.GradScaler("cpu") if precision == "fp16" else None

    def step(x: torch.Tensor) -> None:
        with compiling(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = _loss(forward(x.contiguous(memory_format=layout)))
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)

    return step


def peak_memory_bytes(fn: Callable[[], object]) -> int:
    """The largest tensor memory ``fn()`` holds above what was allocated when it started, in bytes,
    from ``torch.profiler``'s allocator records (see the module docstring).

    Example::

        >>> peak_memory_bytes(lambda: torch.ones(1000).add(1))  # two 4000-byte tensors, and add's scalar
        8012
    """
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_stderr():  # Kineto prints a line to the process's stderr when it starts and stops
        prof.start()
    try:
        fn()
    finally:
        with _quiet_stderr():
            prof.stop()
    records = sorted((event.start_ns(), event.nbytes()) for event in prof.profiler.kineto_results.events()
                     if event.name() == "[memory]")
    running = peak = 0
    for _, nbytes in records:
        running += nbytes
        peak = max(peak, running)
    return peak


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to the null device for the block (C++ writes there, not to sys.stderr)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _with_speedups(rows: list[StepResult]) -> list[StepResult]:
    eager = {r.batch: r.median_ms for r in rows if (r.backend, r.precision) == ("eager", "fp32") and r.median_ms}
    return [dataclasses.replace(r, speedup_vs_eager=eager[r.batch] / r.median_ms)
            if r.median_ms and r.batch in eager else r for r in rows]


def _failed(backend: str, precision: str, batch: int, error: BaseException) -> StepResult:
    text = str(error).strip()
    message = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
    return StepResult(backend, precision, batch, "failed", message[:300])


def time_steps(
    model: nn.Module,
    input_shape: Sequence[int],
    backends: Sequence[str],
    precisions: Sequence[str],
    batches: Sequence[int],
    repeats: int = 20,
    warmup: int = 2,
    threads: int | None = None,
    budget_s: float | None = None,
    *,
    min_repeats: int = 1,
    advance: Callable[[], None] | None = None,
) -> list[StepResult]:
    """Time one training step of ``model`` for each backend (eager always, first), precision
    (fp32 always, first) and batch size (replacing ``input_shape[0]``): one untimed step (it
    compiles ``inductor``), then :func:`sepconv.engines.runner.time_runner` (``warmup`` untimed,
    up to ``repeats`` timed, at least ``min_repeats``), then one step for :func:`peak_memory_bytes`.
    Rows in backend, precision, batch order; a precision this machine cannot run gives "skipped"
    rows, a step that fails "failed" rows with the reason, and the others still run. ``budget_s``
    is for all rows together; ``advance`` is called after each row; ``threads`` defaults to
    torch's current count (restored afterwards).
    """
    check_trainable(model)
    backends = training_backends(backends)
    precisions = [p for p in PRECISIONS if p in set(precisions) | {"fp32"}]
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    for batch in batches:
        positive_int("batch", batch)
    threads = torch.get_num_threads() if threads is None else positive_int("threads", threads)
    generator = torch.Generator().manual_seed(0)
    inputs = {b: torch.randn((b, *input_shape[1:]), generator=generator) for b in batches}
    runnable = [p for p in precisions if precision_unavailable(p) is None]
    row_budget = None if budget_s is None else budget_s / max(1, len(backends) * len(runnable) * len(batches))
    rows: list[StepResult] = []
    with threads_set_to(threads):
        for backend in backends:
            for precision in precisions:
                reason = precision_unavailable(precision)
                for batch in batches:
                    if reason:
                        rows.append(StepResult(backend, precision, batch, "skipped", reason))
                    else:
                        rows.append(_time_row(model, backend, precision, inputs[batch], repeats, warmup, row_budget,
                                              min_repeats))
                    if advance is not None:
                        advance()
    return _with_speedups(rows)


def _time_row(model: nn.Module, backend: str, precision: str, x: torch.Tensor, repeats: int, warmup: int,
              budget_s: float | None, min_repeats: int) -> StepResult:
    batch = x.shape[0]
    try:
        step = build_step(model, backend, precision)
        step(x)  # compiles inductor; the timing's warm-up starts after it
        timing = time_runner(functools.partial(step, x), repeats, warmup, budget_s, min_repeats)
        peak = peak_memory_bytes(functools.partial(step, x))
    except Exception as e:  # noqa: BLE001 - any backend's failure is reported, not raised
        return _failed(backend, precision, batch, e)
    return StepResult(backend, precision, batch, "ok", None, len(timing.samples_ms), timing.median_ms, timing.p90_ms,
                      batch / (timing.median_ms * 1e-3), peak, None)
