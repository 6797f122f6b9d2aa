"""Pick the fastest way to run a model on this machine, by measuring each candidate on the example input.

The candidates are the fp32 runners of :mod:`sepconv.engines.runner` (``eager``, ``channels_last``,
``inductor`` = torch.compile, ``onnxruntime``), every one on the BN-folded model
(:func:`~sepconv.engines.fold.fold_bn`; ``Compiled.table()`` says so per row). A candidate is kept
only if its output matches eager PyTorch on the unfolded model (max absolute difference
``<= atol + rtol * max|output|``).

Threads: ``threads`` (default: all cores) is what every candidate is prepared, timed and later run
on. :func:`optimize` sets torch's thread count for its own work and restores it; the returned
:class:`Compiled` runs later, outside any ``with`` block, so its runner sets torch's threads around
each call and restores them (a torch backend), or runs on its ONNX Runtime session's own intra-op
threads (``onnxruntime``). Either way the process's ``torch.get_num_threads()`` is left as it was.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import torch
from torch import nn

from .._util.checks import ArgumentError, non_negative_int, positive_int
from .._util.runtime import cores, eval_mode, threads_set_to
from ..engines.runner import (
    FP32_BACKENDS,
    BackendResult,
    Runner,
    canonical,
    largest_difference,
    prepare,
    results_table,
    time_runner,
    with_speedups,
)

__all__ = ["Compiled", "optimize"]


class Compiled:
    """The chosen :class:`~sepconv.engines.runner.Runner`, callable like the model, with every
    candidate's :class:`~sepconv.engines.runner.BackendResult` (timed ones with their speed-up over
    eager)."""

    def __init__(self, backend: str, runner: Runner, results: list[BackendResult], threads: int,
                 example_shape: tuple[int, ...]) -> None:
        self.backend, self.runner, self.results = backend, runner, results
        self.threads, self.example_shape = threads, example_shape

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x)

    def __repr__(self) -> str:
        return f"Compiled(backend={self.backend!r}, threads={self.threads}, example={list(self.example_shape)})"

    def table(self) -> str:
        """The candidates as a plain-text table: BN folded, median and p90 latency, speed-up over
        eager, difference from PyTorch, and which was chosen."""
        title = f"input {list(self.example_shape)}, {self.threads} threads, median of repeated runs"
        return results_table(self.results, title, notes={self.backend: "chosen"})


def optimize(model: nn.Module, example_input: torch.Tensor, backend: str = "auto", threads: int | None = None,
             candidates: Sequence[str] = FP32_BACKENDS, repeats: int = 20, warmup: int = 3, verbose: bool = False,
             atol: float = 1e-4, rtol: float = 1e-4) -> Compiled:
    """A callable running ``model`` (BN folded) through ``backend``; ``"auto"`` measures ``candidates``
    on ``example_input`` (median of ``repeats`` runs) and picks the fastest that matches PyTorch.

    ``verbose`` prints the table of every candidate (also ``Compiled.table()``). ``threads``: see
    the module docstring (restored; the returned runner restores them too).

    Example::

        >>> from sepconv.models import create_model
        >>> fast = optimize(create_model("mobilenet_v2", num_classes=10), torch.zeros(1, 3, 96, 96),
        ...                candidates=("eager", "onnxruntime"))
        >>> fast.backend in ("eager", "onnxruntime"), fast(torch.zeros(1, 3, 96, 96)).shape
        (True, torch.Size([1, 10]))
    """
    if not isinstance(model, nn.Module):
        raise ArgumentError("model", f"model={type(model).__name__} must be a torch.nn.Module")
    if not isinstance(example_input, torch.Tensor):
        raise ArgumentError("example_input", f"example_input={type(example_input).__name__} must be a torch.Tensor")
    auto = backend == "auto"
    wanted = [canonical(name) for name in (candidates if auto else [backend])]
    for name in wanted:
        if name not in FP32_BACKENDS:
            raise ArgumentError("backend", f"backend={name!r} must be one of {', '.join(('auto',) + FP32_BACKENDS)}")
    threads = cores() if threads is None else positive_int("threads", threads)
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    batch = int(example_input.shape[0]) if example_input.dim() else 1
    with threads_set_to(threads):
        with eval_mode(model), torch.inference_mode():
            reference = model(example_input)
        limit = atol + rtol * float(reference.abs().max())
        results, runners = [], {}
        for name in wanted:
            try:
                runner = prepare(name, model, example_input, threads=threads, fold=True)
                diff = largest_difference(runner(example_input), reference)
            except Exception as e:  # noqa: BLE001 - a backend that fails here is reported, not fatal
                failed = BackendResult.failed(name, batch, True, e)
                if not auto:
                    raise ValueError(f"backend {name!r} failed: {failed.error}") from None
                results.append(failed)
                continue
            if not diff <= limit:
                error = f"output differs from PyTorch by {diff:.3g} (limit {limit:.3g})"
                if not auto:
                    raise ValueError(f"backend {name!r}: {error}")
                results.append(dataclasses.replace(BackendResult.failed(name, batch, True, error), max_abs_diff=diff))
                continue
            runners[name] = runner
            timing = time_runner(functools.partial(runner, example_input), repeats, warmup) if auto or verbose else None
            results.append(BackendResult.measured(runner, batch, diff, timing))
    if not runners:
        raise ValueError("no backend could run the model: " + "; ".join(f"{r.backend}: {r.error}" for r in results))
    results = with_speedups(results)
    timed = [r for r in results if r.median_ms is not None]
    chosen = min(timed, key=lambda r: r.median_ms).backend if timed else next(iter(runners))
    compiled = Compiled(chosen, runners[chosen], results, threads, tuple(example_input.shape))
    if verbose:
        print(compiled.table())
    return compiled
