"""``profile_model``: cost on paper, time per layer, time per backend, against the machine's roofline.

It puts together :func:`sepconv.cost.analyze` (params, MACs, bytes of every leaf-module call),
:func:`~sepconv.profile.layers.time_layers`
:func:`~sepconv.engines.runner.time_backends` (whole-model latency and throughput) and the
cached :class:`~sepconv.machine.Machine` ceilings; :mod:`sepconv.profile.report` turns the
result into the JSON document, the tables, the charts and the HTML page. With ``train=True`` it
adds the training half: :func:`sepconv.cost.analyze_training` (the MACs of each backward pass),
:func:`~sepconv.profile.training.time_training_layers` (each call's forward and backward) and
:func:`~sepconv.profile.step.time_steps` (the whole training step per backend and precision).

Example::

    >>> from sepconv.models import create_model
    >>> p = profile_model(create_model("mobilenet_v2", width_mult=0.35), (1, 3, 96, 96), repeats=3)
    >>> p.cost.macs == sum(row.macs for row in p.cost.layers), len(p.layers.layers) == len(p.cost.layers)
    (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from .._util.checks import ArgumentError, boolean, one_of, positive_int
from .._util.memory import check_fits
from .._util.runtime import cores, load_average, threads_set_to
from ..cost import CostReport, TrainingCostReport, analyze, analyze_training
from ..engines.im2col import IMPLS, use_impl
from ..engines.runner import BackendResult, canonical, time_backends
from ..engines.shapes import forward_memory_bytes
from ..machine import Machine, machine_profile
from .backends import BACKENDS, DEFAULT_BACKENDS
from .layers import MIN_REPEATS, LayerProfile, time_layers
from .step import StepResult, parse_precisions, time_steps, training_backends
from .training import TrainingLayers, check_batch, check_trainable, time_training_layers

if TYPE_CHECKING:
    from ..engines.ort_layers import EngineLayers

__all__ = ["LAYERS_ON", "OPENVINO_EXTRA", "Profile", "TrainingProfile", "check_budget", "check_layers_on",
           "check_profile_memory", "profile_model", "profile_memory_bytes"]

# The engines whose own profiler can give the per-layer rows (``--layers-on``); "openvino" is named
# so that asking for it says what is missing: OpenVINO is a whole-model engine, its per-layer view is not built yet.
LAYERS_ON = ("eager", "onnxruntime", "openvino")
OPENVINO_EXTRA = "pip install 'sepconv[openvino]'"
TRAIN_MEMORY_FACTOR = 3  # with --train: the activations kept for backward, their gradients, the step's own


@dataclass(frozen=True)
class TrainingProfile:
    """The training half of a profile: the MACs of every pass, each layer's forward and backward
    at the profile's input, and the whole step per backend and precision."""

    cost: TrainingCostReport
    layers: TrainingLayers
    steps: list[StepResult]


@dataclass(frozen=True)
class Profile:
    """Everything one ``sepconv profile`` run measured; see :func:`sepconv.profile.report.to_dict`."""

    model: str  # the MODEL argument as given
    description: str  # where the model came from
    input_shape: tuple[int, ...]
    batch: int
    threads: int
    impl: str  # the convolution implementation (sepconv.engines.im2col.IMPLS)
    repeats: int  # asked for; the rounds made are len(layers.model.samples_ms)
    warmup: int
    budget_s: float | None
    load_average: float | None  # 1-minute load average when the timing ended
    cores: int | None
    machine: Machine
    cost: CostReport
    layers: LayerProfile | None  # the eager per-layer profile (layers_on="eager"), else None
    backends: list[BackendResult]
    training: TrainingProfile | None = None  # with train=True
    layers_on: str = "eager"  # the engine whose rows give the per-layer times (LAYERS_ON)
    engine_layers: EngineLayers | None = None  # with layers_on="onnxruntime": ONNX Runtime's per-layer rows

    @property
    def rounds(self) -> int:
        """The timed rounds (runs) the per-layer rows were sampled over."""
        timed = self.layers.model if self.layers is not None else self.engine_layers.model
        return len(timed.samples_ms)


Step = Callable[[str, int], Callable[[], None]]  # (label, total) -> advance()


def profile_model(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    spec: str | None = None,
    description: str | None = None,
    backends: Sequence[str] = DEFAULT_BACKENDS,
    batch: int | None = None,
    threads: int | None = None,
    repeats: int = 20,
    warmup: int = 2,
    budget_s: float | None = 20.0,
    machine: Machine | None = None,
    remeasure: bool = False,
    step: Step | None = None,
    train: bool = False,
    precisions: str | Sequence[str] = "all",
    impl: str = "native",
    layers_on: str = "eager",
) -> Profile:
    """Profile ``model`` on a random input of ``input_shape`` (per layer at that shape) and each
    backend at batch 1, ``input_shape[0]`` and ``batch``, on ``threads`` threads (default: torch's).

    ``budget_s`` caps the seconds spent timing (half for the layers, half for the backends; each
    still makes at least 5 timed calls); None makes exactly ``repeats``. ``machine`` defaults to the
    cached ceilings for those threads (measured on first use, or again when ``remeasure``).
    ``step(label, total)`` is called before each measuring stage and returns the callable that
    advances it by one (a progress bar; ``total=None``: a stage without steps, ended by one call);
    it may be None.

    ``train=True`` adds the training half (:class:`TrainingProfile`): each layer's forward and
    backward at ``input_shape`` (its batch must be at least 2: BatchNorm normalizes over it) and
    the whole training step on each backend that can train (``eager`` always; ONNX Runtime cannot)
    at each of ``precisions`` (``"all"``, or names among fp32, bf16, fp16; with ``"all"`` those
    this machine cannot run are skipped rows, named ones are an error), at ``input_shape[0]`` and
    ``batch``. The budget is then shared: a sixth each for the inference layers and backends, a
    third each for the training layers and steps.

    ``impl="im2col"`` profiles a copy whose every ``nn.Conv2d`` runs Caffe's historical algorithm
    (:func:`sepconv.engines.im2col.use_impl`; eager only, and its convs are not split into their two
    backward passes, which it computes in its own autograd function).

    ``layers_on`` (:data:`LAYERS_ON`) picks the engine whose rows give the per-layer times: "eager"
    (:func:`~sepconv.profile.layers.time_layers`: each call replayed alone and timed in place, the
    parents' functional ops too; ``Profile.layers``) or "onnxruntime"
    (:func:`~sepconv.engines.ort_layers.ort_layer_times` on the BN-folded export, ONNX Runtime's own
    per-node times mapped back to the layers; ``Profile.engine_layers``). The whole-model timing per
    backend is the same either way. "openvino" is refused, naming the extra: OpenVINO per-layer
    times need the OpenVINO engine, which sepconv does not have yet.

    Before anything is allocated, :func:`check_profile_memory` refuses an input or batch whose
    tensors cannot fit in the memory available.
    """
    shape = tuple(input_shape)
    threads = torch.get_num_threads() if threads is None else positive_int("threads", threads)
    batch = shape[0] if batch is None else positive_int("batch", batch)
    positive_int("repeats", repeats)
    check_budget(budget_s)
    check_layers_on(layers_on)
    backends = [one_of("backends", canonical(name), BACKENDS) for name in backends]
    one_of("impl", impl, IMPLS)
    if boolean("train", train):
        check_trainable(model, spec)
        check_batch(shape)
        precisions = parse_precisions(precisions if isinstance(precisions, str) else ",".join(precisions))
    check_profile_memory(model, shape, batch, train)
    step = step or (lambda label, total: lambda: None)
    if impl != "native":
        model = use_impl(model, impl)
    with threads_set_to(threads):
        cost = analyze(model, shape)  # first: a model that cannot run on the shape fails at once
        if machine is None:
            done = step(f"the machine's ceilings: memory levels and precision peaks ({threads} threads)", None)
            machine = machine_profile(threads, remeasure=remeasure)
            done()
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        part = None if budget_s is None else budget_s / (6 if train else 2)
        names = [row.name for row in cost.layers]
        layers = engine_layers = None
        if layers_on == "eager":
            layers = time_layers(model, x, names, repeats, warmup, part,
                                 advance=step("timing each layer", warmup + repeats))
        else:
            from ..engines.ort_layers import ort_layer_times

            engine_layers = ort_layer_times(model, shape, names, threads=threads, repeats=repeats, warmup=warmup,
                                            budget_s=None if part is None else max(part, 1e-9),
                                            advance=step("timing each layer on ONNX Runtime", repeats))
        batches = sorted({1, shape[0], batch})  # the issue: latency at batch 1 and at --batch, always
        # the model as given, as the per-layer profile runs it (onnxruntime's export folds BN: its rows say so)
        rows = time_backends(model, shape, backends, batches, repeats, warmup, threads, part, fold=False,
                             min_repeats=MIN_REPEATS,
                             advance=step("timing the whole model", len(backends) * len(batches)))
        training = _profile_training(model, x, shape, backends, precisions, batch, threads, repeats, warmup,
                                     None if part is None else 2 * part, step) if train else None
    return Profile(
        model=spec or type(model).__name__, description=description or type(model).__name__, input_shape=shape,
        batch=batch, threads=threads, impl=impl, repeats=repeats, warmup=warmup, budget_s=budget_s,
        load_average=load_average(), cores=cores(), machine=machine, cost=cost, layers=layers, backends=rows,
        training=training, layers_on=layers_on, engine_layers=engine_layers,
    )


def check_budget(budget_s: float | None) -> float | None:
    """``budget_s``: None (no cap) or a finite number of seconds >= 0; returns it."""
    if budget_s is None:
        return None
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not math.isfinite(budget_s) \
            or budget_s < 0:
        raise ArgumentError("budget_s", f"budget_s={budget_s!r} must be a finite number of seconds >= 0 "
                                        "(None: no cap)")
    return budget_s


def check_layers_on(layers_on: str) -> str:
    """``layers_on``: one of :data:`LAYERS_ON` whose engine is here; returns it.

    "onnxruntime" without onnx/onnxruntime installed raises the ``ValueError`` of
    :func:`sepconv.engines.ort_node_map.require_onnxruntime` (naming the extra); "openvino" is
    always refused, naming the extra and saying why.
    """
    one_of("layers_on", layers_on, LAYERS_ON)
    if layers_on == "onnxruntime":
        from ..engines.ort_node_map import require_onnxruntime

        require_onnxruntime()
    elif layers_on == "openvino":
        try:
            import openvino  # noqa: F401
        except ImportError:
            raise ArgumentError("layers_on", f"layers_on='openvino': OpenVINO is not installed ({OPENVINO_EXTRA}), "
                                             "and its per-layer times need sepconv's OpenVINO engine, which is not "
                                             "available yet; use onnxruntime or eager") from None
        raise ArgumentError("layers_on", "layers_on='openvino': OpenVINO runs in sepconv as a whole-model engine "
                                         "(sepconv optimize, bench --backends openvino), but its per-layer view is "
                                         "not available yet; use onnxruntime or eager")
    return layers_on


def profile_memory_bytes(model: nn.Module, input_shape: Sequence[int], batch: int | None = None,
                         train: bool = False) -> int:
    """The bytes a profile of ``model`` at ``input_shape`` needs at its largest batch, estimated
    without allocating (:func:`sepconv.engines.shapes.forward_memory_bytes`: the per-layer replay keeps
    every call's input, so the whole forward's activations are live at once), times
    :data:`TRAIN_MEMORY_FACTOR` with ``train`` (activations kept for backward and their gradients)."""
    return forward_memory_bytes(model, input_shape, batch, TRAIN_MEMORY_FACTOR if train else 1)


def check_profile_memory(model: nn.Module, input_shape: Sequence[int], batch: int | None = None,
                         train: bool = False) -> int:
    """Refuse, before any allocation, a profile whose tensors cannot fit in the memory this process
    may still allocate (:func:`sepconv._util.memory.check_fits` with :func:`profile_memory_bytes`):
    the error names ``input_shape`` when the input's own batch does not fit, else ``batch`` when
    the larger ``batch`` does not. Returns the estimate at the largest batch."""
    shape = tuple(int(n) for n in input_shape)
    what = f"input_shape={'x'.join(map(str, shape))}: the profile's tensors"
    check_fits(profile_memory_bytes(model, shape, None, train),
               what + (" (training: the activations and their gradients)" if train else ""), argument="input_shape")
    needed = profile_memory_bytes(model, shape, batch, train)
    if batch is not None and batch > shape[0]:
        check_fits(needed, f"batch={batch}: the whole model's tensors at that batch", argument="batch")
    return needed


def _profile_training(model: nn.Module, x: torch.Tensor, shape: tuple[int, ...], backends: Sequence[str],
                      precisions: Sequence[str], batch: int, threads: int, repeats: int, warmup: int,
                      budget_s: float | None, step: Step) -> TrainingProfile:
    """The training half: MACs per pass, per-layer forward and backward, the whole step per backend."""
    cost = analyze_training(model, shape)
    layers = time_training_layers(model, x, [row.name for row in cost.cost.layers], repeats, warmup, budget_s,
                                  advance=step("timing each layer's forward and backward", warmup + repeats))
    batches = sorted({shape[0], batch})
    trainers = training_backends(backends)
    steps = time_steps(model, shape, trainers, precisions, batches, repeats, warmup, threads, budget_s,
                       min_repeats=MIN_REPEATS,
                       advance=step("timing the training step", len(trainers) * len(precisions) * len(batches)))
    return TrainingProfile(cost, layers, steps)
