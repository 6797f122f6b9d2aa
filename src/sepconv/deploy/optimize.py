"""``sepconv optimize``: every engine × precision this machine can run, each checked for accuracy and
timed side by side, and the fastest that passes kept — the one chooser of sepconv's deploy path.

Candidates are the runners of :mod:`sepconv.engines.runner` (PyTorch eager / channels_last /
autocast bf16 and fp16 / torch.compile, ONNX Runtime fp32 and int8, OpenVINO fp32 / bf16 / fp16 /
int8), every one on the BN-folded model. Two modes:

- **with data** (``data="digits"``, a training data spec or an image array file): the images are
  prepared at the deployed size (:mod:`sepconv.deploy.heldout`; a model ``sepconv train`` saved gets
  its own preprocessing); 256 calibrate the int8 candidates and the rest (at least 1,000) are held
  out. Each built candidate runs every held-out image; against the fp32 PyTorch model on the same
  images it must keep top-1 agreement ``>= min_agreement`` percent and lose at most ``max_drop``
  accuracy points (with labels). The logit SQNR is reported too.
- **fp32-only** (no data): the fp32 candidates, each kept when its output on the example matches
  PyTorch's within ``atol + rtol * max|output|`` — ``sepconv.deploy.compile``'s old job.

The candidates that pass are timed in interleaved rounds (:mod:`sepconv.engines.interleave`) at the
batch and threads asked, beside a plain ``torch.onnx.export`` on ONNX Runtime with default options
(:func:`~sepconv.engines.ort.plain_session`), the baseline every speed-up is taken against; then
:func:`~sepconv.deploy.candidates.choose` keeps the fastest. With ``out`` the choice is written
(:mod:`sepconv.deploy.artifact`); :func:`sepconv.deploy.load` runs it later.

Threads: ``threads`` (default: all cores) is what every candidate is built, checked, timed and later
run on; torch's thread count is restored afterwards, and a torch runner sets it around each call.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._util.checks import ArgumentError, positive_int
from .._util.console import Step
from .._util.runtime import cores, cpu_name, eval_mode, thread_count, threads_set_to
from ..engines.interleave import interleaved
from ..engines.runner import RUNNERS, Runner, canonical, largest_difference, prepare
from ..resolve import Resolved, resolve_model
from .candidates import Candidate, accuracy_of, candidates_table, choose, logits_of
from .heldout import CALIBRATION, DeployImages, deploy_images

__all__ = ["EXCLUDED_WITH_DATA", "Optimized", "optimize"]

# Not a candidate with data: a compiled model cannot be saved (load would compile it again).
EXCLUDED_WITH_DATA = {"inductor": "torch.compile: a compiled model cannot be saved, load() would recompile it; "
                                  "name it in candidates to include it"}
ENGINES = ("torch", "onnxruntime", "openvino")
EVAL_BATCH = 32  # held-out images per call when checking accuracy
PRECISIONS = ("fp32", "bf16", "fp16", "int8")


class Optimized:
    """The chosen :class:`~sepconv.engines.runner.Runner`, callable like the model, with every
    candidate's :class:`~sepconv.deploy.candidates.Candidate` row; ``report`` is what
    ``report.json`` holds (written with ``out``), ``folder`` where it went."""

    def __init__(self, backend: str, runner: Runner, results: list[Candidate], threads: int,
                 example_shape: tuple[int, ...], report: dict[str, Any], folder: Path | None = None) -> None:
        self.backend, self.runner, self.results = backend, runner, results
        self.threads, self.example_shape, self.report, self.folder = threads, example_shape, report, folder

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x)

    def __repr__(self) -> str:
        return f"Optimized(backend={self.backend!r}, threads={self.threads}, example={list(self.example_shape)})"

    @property
    def chosen(self) -> Candidate:
        return next(row for row in self.results if row.backend == self.backend)

    def table(self) -> str:
        """Every candidate as a plain-text table (:func:`~sepconv.deploy.candidates.candidates_table`)."""
        baseline = self.report.get("baseline_ms")
        title = (f"input {list(self.example_shape)}, {self.threads} threads, BN folded; medians of interleaved "
                 f"rounds; plain ONNX Runtime fp32 {'-' if baseline is None else f'{baseline:.2f}'} ms")
        return candidates_table(self.results, title)


def _names(candidates: Sequence[str] | None, data: bool, engines: Sequence[str] | None,
           precisions: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """The runners to try, and the reason each other runner is not one."""
    for argument, given, allowed in (("engines", engines, ENGINES), ("precisions", precisions, PRECISIONS)):
        for value in given or ():
            if value not in allowed:
                raise ArgumentError(argument, f"{argument}={value!r} must be one of {', '.join(allowed)}")
    if candidates is not None:
        if isinstance(candidates, str):
            raise ArgumentError("candidates", f"candidates={candidates!r} must be a list of backend names")
        wanted = [canonical(name) for name in candidates]
        for name in wanted:
            if name not in RUNNERS:
                raise ArgumentError("candidates", f"candidates: {name!r} must be one of {', '.join(RUNNERS)}")
    else:
        wanted = [name for name in RUNNERS if name not in EXCLUDED_WITH_DATA] if data else \
            [name for name, spec in RUNNERS.items() if spec.dtype == "fp32"]
    excluded = {}
    for name, spec in RUNNERS.items():
        if name in wanted and engines and spec.engine not in engines:
            excluded[name] = f"engine {spec.engine} not among engines={','.join(engines)}"
        elif name in wanted and precisions and spec.dtype not in precisions:
            excluded[name] = f"precision {spec.dtype} not among precisions={','.join(precisions)}"
        elif name in wanted and not data and spec.dtype != "fp32":
            excluded[name] = f"{spec.dtype} needs data: its accuracy is checked on held-out images"
        elif name not in wanted:
            excluded[name] = EXCLUDED_WITH_DATA.get(name, "not asked for") if data or spec.dtype == "fp32" else \
                f"{spec.dtype} needs data: its accuracy is checked on held-out images"
    return [name for name in wanted if name not in excluded], excluded


def _row(name: str, status: str, reason: str | None = None, **measured: Any) -> Candidate:
    spec = RUNNERS[name]
    return Candidate(name, spec.engine, spec.dtype, status, reason, **measured)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")[:300]


def non_negative_float(name: str, value: Any) -> float:
    """``value`` as a float when it is a finite number >= 0, else :class:`ArgumentError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ArgumentError(name, f"{name}={value!r} must be a finite number >= 0")
    return float(value)


def _no_step(label: str, total: int | None) -> Callable[..., None]:
    return lambda *args: None


def optimize(model: nn.Module | str | Path | Resolved, example_input: torch.Tensor | None = None, *,
             data: str | None = None, backend: str = "auto", candidates: Sequence[str] | None = None,
             engines: Sequence[str] | None = None, precisions: Sequence[str] | None = None,
             max_drop: float | None = 0.5, min_agreement: float | None = 99.5, input_size: int | None = None,
             batch: int = 1, threads: int | None = None, held_out: int | None = None,
             calibration: int = CALIBRATION, rounds: int = 5, budget_s: float = 2.0,
             out: str | Path | None = None, overwrite: bool = False, step: Step | None = None,
             verbose: bool = False, atol: float = 1e-4, rtol: float = 1e-4,
             checked: Optimized | None = None) -> Optimized:
    """The fastest way to run ``model`` on this machine that keeps its answers (see the module
    docstring). ``model`` is an ``nn.Module``, any reference :func:`sepconv.resolve_model` takes
    (a checkpoint brings its training preprocessing) or what it returned. ``backend`` names one
    runner to build and check without timing, instead of ``"auto"``. ``example_input`` (fp32-only
    mode) fixes the input; otherwise the input is ``batch`` images of ``input_size`` (default: the
    model's own size).
    ``step(label, total) -> advance`` reports progress (a bar on the command line); ``verbose``
    prints the table. ``checked``: an earlier result on the same model and data, whose accuracy rows
    are kept (its passing candidates are rebuilt and timed at this ``batch`` and ``threads``, without
    checking the held-out images again). Raises ``ValueError`` when no candidate passes (nothing is
    written).

    Example::

        >>> from sepconv.models import create_model
        >>> fast = optimize(create_model("mobilenet_v2", num_classes=10), torch.zeros(1, 3, 96, 96),
        ...                 candidates=("eager", "onnxruntime"), threads=1)
        >>> fast.backend in ("eager", "onnxruntime"), fast(torch.zeros(1, 3, 96, 96)).shape
        (True, torch.Size([1, 10]))
    """
    _check_arguments(example_input, data, max_drop, min_agreement, rounds, budget_s, checked)
    threads = cores() if threads is None else thread_count("threads", threads)
    auto = backend == "auto"
    if not auto:
        candidates = [_one_backend(backend, data is not None)]
    resolved = model if isinstance(model, Resolved) else resolve_model(model)
    source = resolved.model
    train = resolved.sidecar.train if resolved.sidecar is not None else None
    shape = tuple(example_input.shape) if example_input is not None else \
        resolved.shape(batch=positive_int("batch", batch), input_size=input_size)
    _check_memory(source, shape, data is not None, input_size)
    if out is not None:  # before any work
        from .._util.io import check_output

        check_output(out, "out", directory=True, overwrite=overwrite)
    wanted, excluded = _names(candidates, data is not None, engines, precisions)
    step = step or _no_step
    with threads_set_to(threads), eval_mode(source), torch.inference_mode():
        if data is not None:
            images, example = _images(data, shape, train, calibration, held_out, step)
            reference = None
            if checked is None:
                advance = step("fp32 reference on the held-out images", _batches(images))
                reference = logits_of(source, images.held_out, EVAL_BATCH, advance)
        else:
            images = None
            example = example_input if example_input is not None else \
                torch.randn(shape, generator=torch.Generator().manual_seed(0))
            reference = source(example)
        if checked is not None:
            rows, runners = _rebuild_checked(checked, source, example, images, threads, step)
        else:
            rows, runners = _build_and_check(source, example, reference, images, wanted, excluded, threads,
                                             max_drop, min_agreement, atol, rtol, auto, step)
        if not runners:
            reasons = "; ".join(f"{r.backend}: {r.status}" + (f" ({r.reason})" if r.reason else "") for r in rows
                                if r.status not in ("excluded",))
            raise ValueError(f"no candidate {'within the budget' if data is not None else 'matches PyTorch'}: "
                             f"{reasons}")
        baseline_ms = None
        if auto:
            rows, baseline_ms = _timed(rows, runners, source, example, threads, rounds, budget_s, step)
    chosen = choose(rows) if auto else next(r for r in rows if r.status == "ok")
    rows = [_mark(r, chosen) for r in rows]
    report = _report(resolved.description, chosen, rows, shape, threads, max_drop, min_agreement,
                     images, baseline_ms)
    result = Optimized(chosen.backend, runners[chosen.backend], rows, threads, shape, report)
    if out is not None:
        from .artifact import write_folder

        result.folder = write_folder(out, runners[chosen.backend], source, report, result.table(), train=train,
                                     overwrite=overwrite)
    if verbose:
        print(result.table())
    return result


def _check_arguments(example_input: Any, data: str | None, max_drop: Any, min_agreement: Any, rounds: Any,
                     budget_s: Any, checked: Any) -> None:
    """The arguments :func:`optimize` checks before resolving the model (``ArgumentError`` naming one)."""
    if example_input is not None and not isinstance(example_input, torch.Tensor):
        raise ArgumentError("example_input", f"example_input={type(example_input).__name__} must be a torch.Tensor")
    if example_input is not None and data is not None:
        raise ArgumentError("example_input", "example_input is for the fp32-only mode; with data the input is "
                                             "batch held-out images of input_size")
    for argument, value in (("max_drop", max_drop), ("min_agreement", min_agreement)):
        if value is not None:
            non_negative_float(argument, value)
    if min_agreement is not None and min_agreement > 100:
        raise ArgumentError("min_agreement", f"min_agreement={min_agreement!r} must be a percentage in [0, 100]")
    positive_int("rounds", rounds)
    non_negative_float("budget_s", budget_s)
    if checked is not None and (data is None or not isinstance(checked, Optimized)):
        raise ArgumentError("checked", "checked must be an earlier optimize() result, reused with the same data")


def _one_backend(backend: str, data: bool) -> str:
    """The runner ``backend=`` names (with data any precision, without it an fp32 runner)."""
    name = canonical(backend)
    if name not in RUNNERS or (not data and RUNNERS[name].dtype != "fp32"):
        choices = [n for n, s in RUNNERS.items() if data or s.dtype == "fp32"]
        raise ArgumentError("backend", f"backend={backend!r} must be one of auto, {', '.join(choices)}")
    return name


def _images(data: str, shape: tuple[int, ...], train: dict[str, Any] | None, calibration: int,
            held_out: int | None, step: Step) -> tuple[DeployImages, torch.Tensor]:
    """The calibration and held-out images at the deployed size, and the example input: the first
    ``batch`` held-out images (repeated when there are fewer)."""
    done = step(f"preparing the images of {data} at {shape[2]}x{shape[3]}", None)
    images = deploy_images(data, shape, train, calibration=calibration, held_out=held_out)
    done()
    example = images.held_out[:shape[0]]
    if example.shape[0] < shape[0]:
        example = example.repeat((shape[0] + example.shape[0] - 1) // example.shape[0], 1, 1, 1)[:shape[0]]
    return images, example


def _check_memory(source: nn.Module, shape: tuple[int, ...], data: bool, input_size: int | None) -> None:
    """Refuse, before any work, a batch or input size whose tensors cannot fit: the model and its
    activations at the larger of the batch and the accuracy check's :data:`EVAL_BATCH`, twice over
    (the fp32 reference and a candidate live at once), plus one copy of the weights per engine."""
    from .._util.memory import check_fits
    from ..engines.shapes import forward_memory_bytes, weight_bytes

    largest = max(shape[0], EVAL_BATCH if data else shape[0])
    weights = weight_bytes(source)
    one = forward_memory_bytes(source, (1, *shape[1:])) - weights
    if weights * 4 + 2 * one > _available():
        check_fits(weights * 4 + 2 * one, f"input_size={shape[-1]}: one image's activations",
                   argument="input_size" if input_size is not None else "model")
    check_fits(weights * 4 + 2 * one * largest, f"batch={shape[0]}: the activations at that batch",
               argument="batch")


def _available() -> int:
    from .._util.memory import available_memory

    return available_memory().bytes


def _batches(images: DeployImages) -> int:
    return -(-images.held_out.shape[0] // EVAL_BATCH)


def _mark(row: Candidate, chosen: Candidate) -> Candidate:
    return dataclasses.replace(row, status="chosen") if row.backend == chosen.backend else row


def _rebuild_checked(checked: Optimized, source: nn.Module, example: torch.Tensor, images: DeployImages,
                     threads: int, step: Step) -> tuple[list[Candidate], dict[str, Runner]]:
    """The candidates of an earlier :func:`optimize` run on the same model and data, rebuilt at this
    run's batch and threads without checking their accuracy again (the earlier rows are kept)."""
    rows, runners = [], {}
    for row in checked.results:
        if row.backend not in RUNNERS:  # the earlier baseline row
            continue
        row = dataclasses.replace(row, median_ms=None, p90_ms=None, speedup=None,
                                  status="ok" if row.status == "chosen" else row.status)
        if row.status == "ok":
            try:
                done = step(f"building {row.backend}", None)
                runners[row.backend] = prepare(row.backend, source, example, threads=threads, fold=True,
                                               calibration=images.calibration)
                done()
            except Exception as e:  # noqa: BLE001 - reported like any failing candidate
                row = dataclasses.replace(row, status="failed", reason=_first_line(e))
        rows.append(row)
    return rows, runners


def _build_and_check(source: nn.Module, example: torch.Tensor, reference: torch.Tensor, images: DeployImages | None,
                     wanted: list[str], excluded: dict[str, str], threads: int, max_drop: float | None,
                     min_agreement: float | None, atol: float, rtol: float, auto: bool,
                     step: Step) -> tuple[list[Candidate], dict[str, Runner]]:
    rows, runners = [], {}
    limit = atol + rtol * float(reference.abs().max())
    for name in RUNNERS:
        if name not in wanted:
            if name in excluded and (name not in EXCLUDED_WITH_DATA or images is not None):
                rows.append(_row(name, "excluded", excluded[name]))
            continue
        why = RUNNERS[name].unavailable()
        if why is not None:
            if not auto:
                raise ValueError(f"backend {name!r} cannot run here: {why}")
            rows.append(_row(name, "unavailable", why))
            continue
        try:
            done = step(f"building {name}", None)
            runner = prepare(name, source, example, threads=threads, fold=True,
                             calibration=None if images is None else images.calibration)
            done()
            if images is None:
                diff = largest_difference(runner(example), reference)
            else:
                advance = step(f"checking {name} on the held-out images", _batches(images))
                logits = logits_of(runner, images.held_out, EVAL_BATCH, advance)
                accuracy = accuracy_of(logits, reference, images.labels)
                diff = float((logits - reference).abs().max())
        except Exception as e:  # noqa: BLE001 - a candidate that fails is reported, not fatal
            if not auto:
                raise ValueError(f"backend {name!r} failed: {_first_line(e)}") from None
            rows.append(_row(name, "failed", _first_line(e)))
            continue
        if images is None:
            if not diff <= limit:
                reason = f"output differs from PyTorch by {diff:.3g} (limit {limit:.3g})"
                if not auto:
                    raise ValueError(f"backend {name!r}: {reason}")
                rows.append(_row(name, "mismatch", reason, max_abs_diff=diff))
                continue
            rows.append(_row(name, "ok", max_abs_diff=diff))
        else:
            misses = accuracy.misses(max_drop, min_agreement)
            if misses is not None:
                rows.append(_row(name, "over budget", misses, max_abs_diff=diff, accuracy=accuracy))
                continue
            rows.append(_row(name, "ok", max_abs_diff=diff, accuracy=accuracy))
        runners[name] = runner
    return rows, runners


def _timed(rows: list[Candidate], runners: dict[str, Runner], source: nn.Module, example: torch.Tensor,
           threads: int, rounds: int, budget_s: float, step: Step) -> tuple[list[Candidate], float | None]:
    """Time every passing runner and the plain ONNX Runtime baseline in interleaved rounds."""
    calls = {name: (lambda run=run: run(example)) for name, run in runners.items()}
    baseline = None
    try:
        from ..engines.ort import plain_session

        plain = plain_session(source, example, threads)
        calls["plain onnxruntime"] = lambda: plain(example)
    except Exception as e:  # noqa: BLE001 - no baseline: speed-ups are left out, the choice stands
        baseline = _first_line(e)
    advance = step(f"timing {len(calls)} runners in {rounds} interleaved rounds", rounds)
    timings = interleaved(calls, rounds=rounds, budget_s=budget_s, advance=advance)
    baseline_ms = timings["plain onnxruntime"].median_ms if "plain onnxruntime" in timings else None
    out = []
    for row in rows:
        t = timings.get(row.backend)
        if t is not None:
            row = dataclasses.replace(row, median_ms=t.median_ms, p90_ms=t.p90_ms,
                                      speedup=None if baseline_ms is None else baseline_ms / t.median_ms)
        out.append(row)
    if baseline is not None:
        out.append(Candidate("plain onnxruntime", "onnxruntime", "fp32", "failed", f"baseline: {baseline}"))
    return out, baseline_ms


def _report(model: str, chosen: Candidate, rows: list[Candidate], shape: tuple[int, ...], threads: int,
            max_drop: float | None, min_agreement: float | None, images: DeployImages | None,
            baseline_ms: float | None) -> dict[str, Any]:
    from ..engines.openvino import version as openvino_version

    load = os.getloadavg() if hasattr(os, "getloadavg") else (None,)
    machine = {"cpu": cpu_name(), "machine": platform.machine(), "torch": torch.__version__,
               "openvino": openvino_version(), "load_average_1min": load[0]}
    try:
        import onnxruntime

        machine["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        machine["onnxruntime"] = None
    return {"format": "sepconv-deploy", "version": 1, "model": model[:1000], "backend": chosen.backend,
            "engine": chosen.engine, "precision": chosen.precision, "input_shape": list(shape), "threads": threads,
            "budget": {"max_drop": max_drop, "min_agreement": min_agreement},
            "data": None if images is None else images.description,
            "candidates": [row.to_dict() for row in rows], "baseline_ms": baseline_ms, "machine": machine}
