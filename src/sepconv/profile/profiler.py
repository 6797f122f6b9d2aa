"""``profile_model``: cost on paper, time per layer, time per backend, against the machine's roofline.

It puts together :func:`sepconv.cost.analyze` (params, MACs, bytes of every leaf-module call),
:func:`~sepconv.profile.layers.time_layers` (each call's measured time),
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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .._util.checks import boolean, one_of, positive_int
from .._util.runtime import cores, load_average, threads_set_to
from ..cost import CostReport, TrainingCostReport, analyze, analyze_training
from ..engines.im2col import IMPLS, use_impl
from ..engines.runner import BackendResult, canonical, time_backends
from ..machine import Machine, machine_profile
from .backends import BACKENDS, DEFAULT_BACKENDS
from .layers import MIN_REPEATS, LayerProfile, time_layers
from .step import StepResult, parse_precisions, time_steps, training_backends
from .training import TrainingLayers, check_batch, check_trainable, time_training_layers

__all__ = ["Profile", "TrainingProfile", "profile_model"]


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
    layers: LayerProfile
    backends: list[BackendResult]
    training: TrainingProfile | None = None  # with train=True


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
    """
    shape = tuple(input_shape)
    threads = torch.get_num_threads() if threads is None else positive_int("threads", threads)
    batch = shape[0] if batch is None else positive_int("batch", batch)
    positive_int("repeats", repeats)
    backends = [one_of("backends", canonical(name), BACKENDS) for name in backends]
    one_of("impl", impl, IMPLS)
    if boolean("train", train):
        check_trainable(model, spec)
        check_batch(shape)
        precisions = parse_precisions(precisions if isinstance(precisions, str) else ",".join(precisions))
    step = step or (lambda label, total: lambda: None)
    if impl != "native":
        model = use_impl(model, impl)
    with threads_set_to(threads):
        cost = analyze(model, shape)  # first: a model that cannot run on the shape fails at once
        if machine is None:
            done = step(f"the machine's peak GFLOP/s and GB/s ({threads} threads)", None)
            machine = machine_profile(threads, remeasure=remeasure)
            done()
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        part = None if budget_s is None else budget_s / (6 if train else 2)
        layers = time_layers(model, x, [row.name for row in cost.layers], repeats, warmup, part,
                             advance=step("timing each layer", warmup + repeats))
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
        training=training,
    )


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
