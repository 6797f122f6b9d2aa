"""Pick the fastest way to run a model on this machine, by measuring each on the example input.

Every candidate runs the BN-folded model (:func:`~sepconv.engines.fold.fold_bn`):

- ``eager``: PyTorch eager, NCHW;
- ``channels_last``: eager with NHWC weights and input (oneDNN's preferred layout on CPU);
- ``inductor``: ``torch.compile`` with Inductor's ``freezing`` (weights become constants, so it
  pre-packs them for oneDNN and fuses each conv with its activation); compiling costs a minute
  or more per model on 2 cores;
- ``onnxruntime``: the clean ONNX export on ONNX Runtime (:func:`~sepconv.engines.ort.ort_session`).

A candidate is kept only if its output matches eager PyTorch on the unfolded model (max absolute
difference ``<= atol + rtol * max|output|``). ``threads`` sets ``torch.set_num_threads`` (for the
process, as torch has no per-call setting) and ORT's intra-op threads; default all cores.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .._util.checks import positive_int
from .._util.runtime import cores
from .._util.timing import Timing, measure
from ..engines.fold import fold_bn
from ..engines.ort import ort_session

BACKENDS = ("eager", "channels_last", "inductor", "onnxruntime")
Runner = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class BackendResult:
    """One candidate: its timing on the example, or why it was not usable."""

    backend: str
    timing: Timing | None = None
    max_abs_diff: float | None = None
    error: str | None = None


def _torch_runner(model: nn.Module, channels_last: bool = False) -> Runner:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x.contiguous(memory_format=torch.channels_last) if channels_last else x)

    return run


def build(backend: str, folded: nn.Module, example: torch.Tensor, threads: int) -> Runner:
    """The runner of one backend for an already folded, eval-mode model."""
    if backend == "eager":
        return _torch_runner(folded)
    if backend == "channels_last":
        return _torch_runner(copy.deepcopy(folded).to(memory_format=torch.channels_last), channels_last=True)
    if backend == "inductor":
        import torch._inductor.config as inductor_config

        compiled = torch.compile(folded, dynamic=False)

        def run(x: torch.Tensor) -> torch.Tensor:
            with inductor_config.patch(freezing=True), torch.no_grad():
                return compiled(x)

        # Every instance of a model class shares one forward code object, of which dynamo keeps at
        # most `recompile_limit` (8) compiled versions before it silently runs eager: a process that
        # has compiled a few models would get an uncompiled one here. Compile this one regardless.
        with torch._dynamo.config.patch(recompile_limit=1 << 16):
            run(example)  # compile now, not on the first timed call
        return run
    if backend == "onnxruntime":
        return ort_session(folded, tuple(example.shape), threads=threads)
    raise ValueError(f"backend={backend!r} must be one of {', '.join(('auto',) + BACKENDS)}")


class Compiled:
    """The chosen runner, callable like the model, with every candidate's measurement."""

    def __init__(self, backend: str, runner: Runner, results: list[BackendResult], threads: int,
                 example_shape: tuple[int, ...]) -> None:
        self.backend, self.runner, self.results = backend, runner, results
        self.threads, self.example_shape = threads, example_shape

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x)

    def __repr__(self) -> str:
        return f"Compiled(backend={self.backend!r}, threads={self.threads}, example={list(self.example_shape)})"

    def table(self) -> str:
        """The candidates as a plain-text table: median and p90 latency, speed-up over eager."""
        eager = next((r.timing.median_ms for r in self.results if r.backend == "eager" and r.timing), None)
        lines = [f"input {list(self.example_shape)}, {self.threads} threads, median of repeated runs",
                 f"{'backend':<14} {'median ms':>10} {'p90 ms':>10} {'vs eager':>9}  note"]
        for r in self.results:
            if r.timing is None:
                lines.append(f"{r.backend:<14} {'-':>10} {'-':>10} {'-':>9}  {r.error}")
                continue
            speedup = f"{eager / r.timing.median_ms:.2f}x" if eager else "-"
            note = "chosen" if r.backend == self.backend else ""
            lines.append(f"{r.backend:<14} {r.timing.median_ms:>10.2f} {r.timing.p90_ms:>10.2f} {speedup:>9}  {note}")
        return "\n".join(lines)


def optimize(model: nn.Module, example_input: torch.Tensor, backend: str = "auto", threads: int | None = None,
             candidates: Sequence[str] = BACKENDS, repeats: int = 20, warmup: int = 3, verbose: bool = False,
             atol: float = 1e-4, rtol: float = 1e-4) -> Compiled:
    """A callable running ``model`` through ``backend``; ``"auto"`` measures ``candidates`` on
    ``example_input`` (median of ``repeats`` runs) and picks the fastest that matches PyTorch.

    ``verbose`` prints the table of every candidate (also ``Compiled.table()``).

    Example::

        >>> from sepconv.models import create_model
        >>> fast = optimize(create_model("mobilenet_v2", num_classes=10), torch.zeros(1, 3, 96, 96),
        ...                candidates=("eager", "onnxruntime"))
        >>> fast.backend in ("eager", "onnxruntime"), fast(torch.zeros(1, 3, 96, 96)).shape
        (True, torch.Size([1, 10]))
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model={type(model).__name__} must be a torch.nn.Module")
    if not isinstance(example_input, torch.Tensor):
        raise ValueError(f"example_input={type(example_input).__name__} must be a torch.Tensor")
    wanted = list(candidates) if backend == "auto" else [backend]
    for name in wanted:
        if name not in BACKENDS:
            raise ValueError(f"backend={name!r} must be one of {', '.join(('auto',) + BACKENDS)}")
    threads = cores() if threads is None else positive_int("threads", threads)
    torch.set_num_threads(threads)
    folded = fold_bn(model, example_input)
    with torch.inference_mode():
        was_training = model.training
        reference = model.eval()(example_input)
        model.train(was_training)
    limit = atol + rtol * float(reference.abs().max())
    results, runners = [], {}
    for name in wanted:
        result = BackendResult(name)
        results.append(result)
        try:
            runner = build(name, folded, example_input, threads)
            result.max_abs_diff = float((runner(example_input) - reference).abs().max())
        except Exception as e:  # noqa: BLE001 - a backend that fails here is reported, not fatal
            if backend != "auto":
                raise ValueError(f"backend {name!r} failed: {' '.join(str(e).split())[:300]}") from None
            result.error = f"failed: {' '.join(str(e).split())[:120]}"
            continue
        if not result.max_abs_diff <= limit:
            result.error = f"output differs from PyTorch by {result.max_abs_diff:.3g} (limit {limit:.3g})"
            if backend != "auto":
                raise ValueError(f"backend {name!r}: {result.error}")
            continue
        runners[name] = runner
        if backend == "auto" or verbose:
            result.timing = measure(lambda: runner(example_input), repeats, warmup)
    if not runners:
        raise ValueError("no backend could run the model: " + "; ".join(f"{r.backend}: {r.error}" for r in results))
    timed = [r for r in results if r.timing is not None]
    chosen = min(timed, key=lambda r: r.timing.median_ms).backend if timed else wanted[0]
    compiled = Compiled(chosen, runners[chosen], results, threads, tuple(example_input.shape))
    if verbose:
        print(compiled.table())
    return compiled
