"""One runner per inference backend, prepared and timed one way, for ``sepconv profile``,
``sepconv bench`` and :func:`sepconv.deploy.optimize` alike.

The backends (:data:`RUNNERS`, in this order):

- ``eager``: PyTorch eager, NCHW, under ``torch.inference_mode``;
- ``channels_last``: eager with NHWC weights and input (oneDNN's preferred layout on CPU);
- ``inductor``: ``torch.compile`` (Inductor) with ``freezing``: the weights become constants, so it
  pre-packs them for oneDNN and fuses each conv with its activation; compiling costs a minute or
  more per model on 2 cores. ``compile``, its 0.1 name in ``sepconv profile``, still works and warns;
- ``onnxruntime``: the clean ONNX export (:func:`~sepconv.engines.onnx_export.to_onnx`) on an
  ONNX Runtime session (:func:`~sepconv.engines.ort.ort_session`), fp32;
- ``int8``: that export quantized (:func:`~sepconv.engines.quantize.quantize`, QDQ, per-channel
  weights) with the caller's ``calibration`` images, on ONNX Runtime;
- ``openvino``, ``openvino_bf16``, ``openvino_fp16``, ``openvino_int8``: the same clean export (the
  int8 one: the same QDQ file) on OpenVINO's CPU plugin at that inference precision
  (:mod:`~sepconv.engines.openvino`; fp32 forces the ``f32`` hint, OpenVINO's CPU default being bf16
  where the CPU has it);
- ``torch_bf16``, ``torch_fp16``: channels_last eager under CPU autocast to that dtype (oneDNN's
  AMX / AVX512-BF16 / AVX512-FP16 kernels).

Each :class:`RunnerSpec` says why it cannot run on this machine (``unavailable()``: an engine not
installed, a precision the CPU lacks), so that callers list the reason instead of failing.

Folding: each :class:`RunnerSpec` declares ``folds_bn``, whether preparing it folds BatchNorm
whatever the caller asks (the ONNX export always does). ``fold=True`` folds the model first
(:func:`~sepconv.engines.fold.fold_bn`) for every backend; each :class:`BackendResult` says which
backend ran and whether BN was folded (``bn_folded``), and every report prints it.

Threads: :func:`prepare` and :func:`time_backends` set torch's intra-op threads to ``threads`` for
their work and restore them (:func:`~sepconv._util.runtime.threads_set_to`). A prepared
:class:`Runner` of a torch backend does the same around each call, so it may be called later,
anywhere, and leaves the process's thread count as it found it; an ONNX Runtime session owns its
intra-op thread count and does not touch torch's.

Example::

    >>> rows = time_backends(nn.Conv2d(3, 8, 3), (1, 3, 32, 32), ["eager", "channels_last"], [1, 4], repeats=3)
    >>> [(r.backend, r.batch, r.status, r.bn_folded) for r in rows]  # doctest: +NORMALIZE_WHITESPACE
    [('eager', 1, 'ok', False), ('eager', 4, 'ok', False), ('channels_last', 1, 'ok', False),
     ('channels_last', 4, 'ok', False)]
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .._util.checks import ArgumentError, non_negative_int, positive_int
from .._util.runtime import eval_mode, threads_set_to
from .._util.timing import Timing, measure
from .fold import fold_bn

__all__ = ["ALIASES", "BACKENDS", "FP32_BACKENDS", "RUNNERS", "BackendResult", "Runner", "RunnerSpec",
           "canonical", "largest_difference", "parse_backends", "prepare", "results_table", "time_backends",
           "time_runner", "torch_unavailable", "with_speedups"]

Build = Callable[[nn.Module, torch.Tensor, int, "torch.Tensor | None"], Callable[[torch.Tensor], object]]


def _always() -> str | None:
    return None


@dataclass(frozen=True)
class RunnerSpec:
    """What one backend is: its ``engine`` (``"torch"``, ``"onnxruntime"`` or ``"openvino"``: whose
    threads it runs on), its ``dtype`` (the precision it computes in), whether preparing it folds
    BatchNorm whatever the caller asks (``folds_bn``), whether it needs calibration images,
    ``build(model, example, threads, calibration)``, which returns the callable (the model is in
    eval mode, already folded when the row is), and ``unavailable()``: why it cannot run here, or
    None."""

    name: str
    engine: str
    dtype: str
    folds_bn: bool
    needs_calibration: bool
    build: Build
    unavailable: Callable[[], str | None] = _always


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    # set_num_threads is only called when the count differs: a runner timed inside time_backends
    # (threads already set) pays nothing per call
    if torch.get_num_threads() == threads:
        yield
    else:
        with threads_set_to(threads):
            yield


def _eager(model: nn.Module, example: torch.Tensor, threads: int, calibration: torch.Tensor | None):
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return run


def _channels_last(model: nn.Module, example: torch.Tensor, threads: int, calibration: torch.Tensor | None):
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fast(x.contiguous(memory_format=torch.channels_last))

    return run


def _inductor(model: nn.Module, example: torch.Tensor, threads: int, calibration: torch.Tensor | None):
    import torch._inductor.config as inductor_config

    compiled = torch.compile(copy.deepcopy(model), dynamic=False)

    def run(x: torch.Tensor) -> torch.Tensor:
        # Every instance of a model class shares one forward code object, of which dynamo keeps at
        # most `recompile_limit` (8) compiled versions before it silently runs eager: a process that
        # has compiled a few models (or batch sizes) would get an uncompiled one. Compile regardless.
        with inductor_config.patch(freezing=True), torch._dynamo.config.patch(recompile_limit=1 << 16), \
                torch.no_grad():
            return compiled(x)

    run(example)  # compile now, not on the first timed call
    return run


# The ONNX runners import onnx and onnxruntime when built, so that naming the backends (the
# command line's help) costs no import of either.


def _onnxruntime(model: nn.Module, example: torch.Tensor, threads: int, calibration: torch.Tensor | None):
    from .onnx_export import to_onnx
    from .ort import ort_session

    # already folded (the spec declares folds_bn), so the export does not fold again
    return ort_session(to_onnx(model, tuple(example.shape), fold=False).proto, threads=threads)


def _int8(model: nn.Module, example: torch.Tensor, threads: int, calibration: torch.Tensor | None):
    from .onnx_export import to_onnx
    from .ort import ort_session
    from .quantize import quantize

    fp32 = to_onnx(model, tuple(example.shape), fold=False).proto
    return ort_session(quantize(fp32, calibration).proto, threads=threads)


def _openvino(precision: str) -> Build:
    def build(model: nn.Module, example: torch.Tensor, threads: int, calibration: torch.Tensor | None):
        from .onnx_export import to_onnx
        from .openvino import openvino_runner
        from .quantize import quantize

        proto = to_onnx(model, tuple(example.shape), fold=False).proto
        if precision == "int8":
            proto = quantize(proto, calibration).proto
        return openvino_runner(proto, precision, threads, example_shape=tuple(example.shape))

    return build


def _openvino_unavailable(precision: str) -> Callable[[], str | None]:
    def why() -> str | None:
        from .openvino import unavailable

        return unavailable(precision)

    return why


def _torch_autocast(precision: str) -> Build:
    def build(model: nn.Module, example: torch.Tensor, threads: int, calibration: torch.Tensor | None):
        fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), torch.autocast("cpu", dtype=dtype):
                return fast(x.contiguous(memory_format=torch.channels_last)).float()

        return run

    return build


def torch_unavailable(precision: str) -> str | None:
    """Why torch on this CPU has no native ``precision`` ("bf16"/"fp16") convolution kernels (oneDNN
    emulates them, slower than fp32), or None where it has."""
    check = {"bf16": torch.ops.mkldnn._is_mkldnn_bf16_supported,
             "fp16": torch.ops.mkldnn._is_mkldnn_fp16_supported}[precision]
    if check():
        return None
    return (f"this CPU has no native {precision} for oneDNN (torch.ops.mkldnn._is_mkldnn_{precision}_supported() "
            "is False): it would run emulated, slower than fp32")


RUNNERS: dict[str, RunnerSpec] = {spec.name: spec for spec in (
    RunnerSpec("eager", engine="torch", dtype="fp32", folds_bn=False, needs_calibration=False, build=_eager),
    RunnerSpec("channels_last", engine="torch", dtype="fp32", folds_bn=False, needs_calibration=False,
               build=_channels_last),
    RunnerSpec("inductor", engine="torch", dtype="fp32", folds_bn=False, needs_calibration=False, build=_inductor),
    RunnerSpec("onnxruntime", engine="onnxruntime", dtype="fp32", folds_bn=True, needs_calibration=False,
               build=_onnxruntime),
    RunnerSpec("int8", engine="onnxruntime", dtype="int8", folds_bn=True, needs_calibration=True, build=_int8),
    *(RunnerSpec("openvino" if precision == "fp32" else f"openvino_{precision}", engine="openvino", dtype=precision,
                 folds_bn=True, needs_calibration=precision == "int8", build=_openvino(precision),
                 unavailable=_openvino_unavailable(precision)) for precision in ("fp32", "bf16", "fp16", "int8")),
    *(RunnerSpec(f"torch_{precision}", engine="torch", dtype=precision, folds_bn=False, needs_calibration=False,
                 build=_torch_autocast(precision), unavailable=functools.partial(torch_unavailable, precision))
      for precision in ("bf16", "fp16")),
)}
BACKENDS: tuple[str, ...] = tuple(RUNNERS)
# What optimize chooses among (an int8 output does not match PyTorch's to 1e-4) and what a profile
# times (it has no calibration images).
FP32_BACKENDS: tuple[str, ...] = tuple(name for name, spec in RUNNERS.items() if spec.dtype == "fp32")
# Old name -> the backend's one name (removed in 0.3).
ALIASES: dict[str, str] = {"compile": "inductor"}


def canonical(name: str, warn: Callable[[str], None] | None = None) -> str:
    """``name`` itself, or the backend a deprecated alias (:data:`ALIASES`) stands for, after telling
    ``warn`` (default: a ``DeprecationWarning``)."""
    if name not in ALIASES:
        return name
    message = f"backend {name!r} is deprecated: use {ALIASES[name]!r} (the same torch.compile runner)"
    if warn is None:
        warnings.warn(message, DeprecationWarning, stacklevel=3)
    else:
        warn(message)
    return ALIASES[name]


def parse_backends(text: str, choices: Sequence[str] = BACKENDS, argument: str = "backends",
                   warn: Callable[[str], None] | None = None) -> list[str]:
    """``"eager"``, ``"eager,onnxruntime"`` or ``"all"`` -> backend names among ``choices``, eager
    always first (the reference every speed-up is taken against), then :data:`RUNNERS`' order.
    A deprecated alias works and is reported to ``warn`` (see :func:`canonical`).

    Example::

        >>> parse_backends("onnxruntime,int8"), parse_backends("all", FP32_BACKENDS)
        (['eager', 'onnxruntime', 'int8'], ['eager', 'channels_last', 'inductor', 'onnxruntime', 'openvino'])
    """
    names = [canonical(part.strip(), warn) for part in str(text).split(",") if part.strip()]
    if names == ["all"]:
        return list(choices)
    if not names or any(name not in choices for name in names):
        raise ArgumentError(argument, f"{argument}={text!r} must be 'all' or a comma-separated list of "
                                      f"{', '.join(choices)}")
    return [name for name in choices if name in names or name == "eager"]


@dataclass(frozen=True)
class Runner:
    """A prepared backend: ``runner(x)`` runs the model on the NCHW batch ``x`` (a torch tensor in,
    a torch tensor out). ``bn_folded`` says whether it runs the BN-folded model; a torch backend
    runs each call on ``threads`` torch threads (restored after), an ONNX Runtime one on its
    session's own ``threads``."""

    spec: RunnerSpec
    bn_folded: bool
    threads: int
    call: Callable[[torch.Tensor], object]

    @property
    def backend(self) -> str:
        return self.spec.name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.engine != "torch":
            return self.call(x)
        with _torch_threads(self.threads):
            return self.call(x)

    def __repr__(self) -> str:
        return f"Runner({self.backend!r}, bn_folded={self.bn_folded}, threads={self.threads})"


def _spec(name: str) -> RunnerSpec:
    name = canonical(name)
    if name not in RUNNERS:
        raise ArgumentError("backend", f"backend={name!r} must be one of {', '.join(BACKENDS)}")
    return RUNNERS[name]


def _check_calibration(specs: Sequence[RunnerSpec], calibration: torch.Tensor | None) -> None:
    needing = [spec.name for spec in specs if spec.needs_calibration]
    if needing and calibration is None:
        raise ArgumentError("calibration", f"backend {needing[0]!r} needs calibration images: pass "
                                           "calibration=(N, C, H, W) images of the model's input")


def prepare(backend: str, model: nn.Module, example: torch.Tensor, *, threads: int | None = None,
            fold: bool = False, calibration: torch.Tensor | None = None) -> Runner:
    """``backend``'s :class:`Runner` for ``model``, built and warmed up on the ``example`` batch.

    With ``fold`` (or when the backend's spec ``folds_bn``) the runner runs a BN-folded copy;
    otherwise ``model`` as given (the eager runner calls it directly: keep it in eval mode).
    ``threads`` defaults to torch's current count; ``calibration`` images are for ``int8``.

    Example::

        >>> run = prepare("channels_last", nn.Conv2d(3, 8, 3).eval(), torch.zeros(1, 3, 16, 16), threads=1)
        >>> run(torch.zeros(2, 3, 16, 16)).shape, run.bn_folded
        (torch.Size([2, 8, 14, 14]), False)
    """
    spec = _spec(backend)
    if not isinstance(model, nn.Module):
        raise ArgumentError("model", f"model={type(model).__name__} must be a torch.nn.Module")
    _check_calibration([spec], calibration)
    reason = spec.unavailable()
    if reason is not None:
        raise ValueError(f"backend {spec.name!r} cannot run here: {reason}")
    threads = torch.get_num_threads() if threads is None else positive_int("threads", threads)
    folded = fold or spec.folds_bn
    if not folded and model.training:
        raise ArgumentError("model", f"model is in training mode; the {spec.name} runner runs it as given: "
                                     "call model.eval() first, or pass fold=True")
    with threads_set_to(threads):
        source = fold_bn(model, example) if folded else model
        call = spec.build(source, example, threads, calibration)
    return Runner(spec, folded, threads, call)


@dataclass(frozen=True)
class BackendResult:
    """One backend at one batch size: ``status`` "ok" or "failed" (with the one-line ``error``),
    whether BN was folded, the largest absolute difference from eager PyTorch on the model as given
    (``max_abs_diff``), and times in ms per call: the median and 90th percentile of ``repeats``
    calls (None when not timed); ``samples_per_s = batch / median``; ``speedup_vs_eager`` is eager's
    median over this one's at the same batch (> 1: faster)."""

    backend: str
    batch: int
    status: str
    bn_folded: bool
    error: str | None = None
    max_abs_diff: float | None = None
    repeats: int | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    samples_per_s: float | None = None
    speedup_vs_eager: float | None = None

    @classmethod
    def measured(cls, runner: Runner, batch: int, max_abs_diff: float | None,
                 timing: Timing | None) -> BackendResult:
        """An "ok" row of ``runner``; untimed when ``timing`` is None."""
        if timing is None:
            return cls(runner.backend, batch, "ok", runner.bn_folded, max_abs_diff=max_abs_diff)
        return cls(runner.backend, batch, "ok", runner.bn_folded, None, max_abs_diff, len(timing.samples_ms),
                   timing.median_ms, timing.p90_ms, batch / (timing.median_ms * 1e-3))

    @classmethod
    def failed(cls, backend: str, batch: int, bn_folded: bool, error: BaseException | str) -> BackendResult:
        """A "failed" row; an exception becomes ``"Type: its first line"``."""
        if isinstance(error, BaseException):
            text = str(error).strip()
            error = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
        return cls(backend, batch, "failed", bn_folded, error[:300])

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def time_runner(fn: Callable[[], object], repeats: int, warmup: int, budget_s: float | None = None,
                min_repeats: int = 1) -> Timing:
    """``measure(fn)``: at least one untimed call (compilation, session start), which also tells how
    long a call takes; with ``budget_s`` (seconds) fewer than ``repeats`` timed calls when calls are
    slow, but at least ``min_repeats``."""
    probe = measure(fn, repeats=max(warmup, 1), warmup=0)
    if budget_s is not None:
        repeats = max(min_repeats, min(repeats, int(budget_s / (probe.samples_ms[-1] * 1e-3))))
    return measure(fn, repeats, warmup=0)


def largest_difference(output: object, reference: torch.Tensor | None) -> float | None:
    """Largest absolute difference of ``output`` from ``reference`` (None without a reference)."""
    return None if reference is None else float((torch.as_tensor(output) - reference).abs().max())


def with_speedups(rows: Sequence[BackendResult]) -> list[BackendResult]:
    """``rows`` with ``speedup_vs_eager`` set wherever the same batch has a timed eager row."""
    eager = {r.batch: r.median_ms for r in rows if r.backend == "eager" and r.median_ms}
    return [dataclasses.replace(r, speedup_vs_eager=eager[r.batch] / r.median_ms)
            if r.median_ms and r.batch in eager else r for r in rows]


def time_backends(
    model: nn.Module,
    input_shape: Sequence[int],
    backends: Sequence[str],
    batches: Sequence[int],
    repeats: int = 20,
    warmup: int = 2,
    threads: int | None = None,
    budget_s: float | None = None,
    *,
    fold: bool = False,
    calibration: torch.Tensor | None = None,
    min_repeats: int = 1,
    advance: Callable[[], None] | None = None,
) -> list[BackendResult]:
    """Prepare each backend once (on a random batch of ``input_shape``), then run it at each batch
    size (the batch replaces ``input_shape[0]``): once against eager PyTorch on ``model`` as given
    (``max_abs_diff``), then timed with :func:`time_runner`. Rows in ``backends`` order, then
    ``batches`` order, with :func:`with_speedups`. A backend that cannot be prepared or run gives
    ``status="failed"`` rows with the reason, and the others still run. ``budget_s`` is for all
    rows together; ``advance`` is called after each row; ``fold`` and ``calibration`` as in
    :func:`prepare`; ``threads`` defaults to torch's current count (restored afterwards).
    """
    specs = [_spec(name) for name in backends]
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    for batch in batches:
        positive_int("batch", batch)
    _check_calibration(specs, calibration)
    threads = torch.get_num_threads() if threads is None else positive_int("threads", threads)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(tuple(input_shape), generator=generator)
    inputs = {b: torch.randn((b, *input_shape[1:]), generator=generator) for b in batches}
    row_budget = None if budget_s is None else budget_s / max(1, len(specs) * len(batches))
    rows: list[BackendResult] = []
    with threads_set_to(threads), eval_mode(model):
        references = {b: _reference(model, x) for b, x in inputs.items()}
        for spec in specs:
            try:
                run = prepare(spec.name, model, example, threads=threads, fold=fold, calibration=calibration)
            except Exception as e:  # noqa: BLE001 - any backend's failure is reported, not raised
                rows += [BackendResult.failed(spec.name, b, fold or spec.folds_bn, e) for b in batches]
                _advance(advance, len(batches))
                continue
            for batch in batches:
                x = inputs[batch]
                try:
                    diff = largest_difference(run(x), references[batch])
                    timing = time_runner(functools.partial(run, x), repeats, warmup, row_budget, min_repeats)
                    rows.append(BackendResult.measured(run, batch, diff, timing))
                except Exception as e:  # noqa: BLE001
                    rows.append(BackendResult.failed(spec.name, batch, run.bn_folded, e))
                _advance(advance, 1)
    return with_speedups(rows)


def _reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    try:
        with torch.inference_mode():
            return torch.as_tensor(model(x)).clone()
    except Exception:  # noqa: BLE001 - the eager row reports the failure
        return None


def _advance(advance: Callable[[], None] | None, steps: int) -> None:
    for _ in range(steps if advance is not None else 0):
        advance()


def results_table(rows: Sequence[BackendResult], title: str, notes: dict[str, str] | None = None) -> str:
    """``rows`` as a plain-text table under ``title``: which backend ran, at which batch, whether BN
    was folded, median and p90 ms, the speed-up over eager, the difference from eager PyTorch, and
    a note (``notes[backend]``, else a failed row's error).

    Example::

        >>> print(results_table([BackendResult("eager", 1, "failed", False, "no")], "title"))
        title
        backend        batch BN folded  median ms    p90 ms  vs eager  max |diff|  note
        eager              1        no          -         -         -           -  no
    """
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    head = (f"{'backend':<14} {'batch':>5} {'BN folded':>9} {'median ms':>10} {'p90 ms':>9} {'vs eager':>9} "
            f"{'max |diff|':>11}  note")
    lines = [title, head]
    for r in rows:
        speedup = "-" if r.speedup_vs_eager is None else f"{r.speedup_vs_eager:.2f}x"
        note = (notes or {}).get(r.backend, r.error or "")
        lines.append(f"{r.backend:<14} {r.batch:>5} {'yes' if r.bn_folded else 'no':>9} {num(r.median_ms, '.2f'):>10} "
                     f"{num(r.p90_ms, '.2f'):>9} {speedup:>9} {num(r.max_abs_diff, '.2g'):>11}  {note}".rstrip())
    return "\n".join(lines)
