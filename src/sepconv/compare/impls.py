"""The implementation dimension of ``sepconv compare --impl``: every form run under every implementation.

Each form's module is copied once per implementation (:func:`sepconv.engines.im2col.use_impl`:
``native`` is PyTorch's own kernels, ``im2col`` Caffe's historical per-image, per-group
im2col + GEMM algorithm, reproduced to explain old reports, not a recommended path). All the
copies are timed *interleaved* — one call of each per round, after warm-up rounds — so that the
speed-ups, ratios of medians, compare timings taken side by side under the same machine load.
A step is a forward (eval mode, ``torch.inference_mode``) or, with ``train``, a forward and a
backward computing the input's and the weights' gradients, as for a layer inside a network.
For the im2col copies, :func:`im2col_calls` counts the GEMM/GEMV calls one step makes: the why.

Example::

    >>> from sepconv.layers import DepthwiseConv2d
    >>> runs = run_impls({"dw": DepthwiseConv2d(8, 3)}, torch.randn(2, 8, 16, 16), ("native", "im2col"),
    ...                  train=False, repeats=2, warmup=1)
    >>> [(r.impl, len(r.timing.samples_ms)) for r in runs["dw"]], runs["dw"][1].calls["forward"]["calls"]
    ([('native', 2), ('im2col', 2)], 16)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from .._util.timing import Timing
from ..engines.im2col import count_calls, use_impl

__all__ = ["ImplResult", "im2col_calls", "interleaved", "run_impls"]

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class ImplResult:
    """One form under one implementation: its timing, its speed-up over the standard conv under the
    same implementation, and (im2col only) the matrix calls one step makes per phase."""

    impl: str
    timing: Timing | None = None
    speedup: float | None = None
    calls: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"impl": self.impl, "latency_ms": None if self.timing is None else self.timing.to_dict(),
                "speedup": self.speedup, "calls": self.calls}


def interleaved(steps: Mapping[Key, Callable[[], object]], repeats: int, warmup: int) -> dict[Key, Timing]:
    """Time every step in rounds — each round calls each step once — after ``warmup`` untimed rounds.

    Example::

        >>> timings = interleaved({"a": lambda: sum(range(100)), "b": lambda: None}, repeats=3, warmup=1)
        >>> sorted(timings), len(timings["a"].samples_ms)
        (['a', 'b'], 3)
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    samples: dict[Key, list[float]] = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            samples[key].append((time.perf_counter() - start) * 1e3)
    return {key: Timing.from_samples(values) for key, values in samples.items()}


def _step(module: nn.Module, x: torch.Tensor, train: bool) -> Callable[[], object]:
    """One forward (eval mode; the caller holds inference mode) or one forward + backward."""
    module.train(train)
    if not train:
        return lambda: module(x)
    x = x.detach().clone().requires_grad_(True)
    tensors = [x, *(p for p in module.parameters() if p.requires_grad)]
    grad = torch.ones_like(module(x))

    def forward_backward() -> None:
        for t in tensors:
            t.grad = None
        module(x).backward(grad)

    return forward_backward


def im2col_calls(module: nn.Module, x: torch.Tensor, train: bool) -> dict[str, Any]:
    """The matrix calls one step of ``module`` (already under im2col) makes: ``forward`` and, with
    ``train``, ``backward``, each a :meth:`~sepconv.engines.im2col.CallLog.summary`."""
    x = x.detach().clone().requires_grad_(train)
    module.train(train)
    with count_calls() as log, torch.set_grad_enabled(train):
        out = module(x)
        if train:
            out.backward(torch.ones_like(out))
    phases = ("forward", "backward") if train else ("forward",)
    return {phase: log.summary(phase) for phase in phases}


def run_impls(modules: Mapping[str, nn.Module], x: torch.Tensor, impls: Sequence[str], *, train: bool,
              repeats: int, warmup: int) -> dict[str, tuple[ImplResult, ...]]:
    """Each module under each implementation, timed interleaved (``repeats=0``: not timed).

    Returns, per key of ``modules``, one :class:`ImplResult` per implementation in ``impls``' order,
    speed-ups not yet filled in (the caller knows which form is the baseline).
    """
    copies = {(name, impl): use_impl(module, impl) for name, module in modules.items() for impl in impls}
    calls = {key: im2col_calls(copy, x, train) for key, copy in copies.items() if key[1] == "im2col"}
    timings: dict[tuple[str, str], Timing] = {}
    if repeats:
        steps = {key: _step(copy, x, train) for key, copy in copies.items()}
        with nullcontext() if train else torch.inference_mode():
            timings = interleaved(steps, repeats, warmup)
    return {name: tuple(ImplResult(impl, timings.get((name, impl)), calls=calls.get((name, impl)))
                        for impl in impls) for name in modules}
