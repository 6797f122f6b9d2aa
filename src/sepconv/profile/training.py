"""Per-layer training time: each leaf call's forward and backward, replayed through autograd alone.

``caffe time`` for sepconv: in training mode, every leaf-module call of one forward is recorded
with its inputs (:func:`~sepconv.profile.layers.record_calls` with ``grad=True``), then replayed on
its own, in interleaved rounds with the whole model's forward and backward (as
:func:`~sepconv.profile.layers.time_layers` does for inference, so both are sampled under the same
load). Per call and round:

- **forward**: the module called with gradients enabled (it builds its piece of the graph and
  saves what its backward needs, as in training);
- **backward**: ``torch.autograd.grad`` of its outputs, against a fixed random output gradient,
  with respect to its input (when the input needs a gradient: not in a first layer, whose input is
  the images) and its trainable parameters;
- for a convolution, the backward **split** in its two passes, each run alone with
  ``torch.ops.aten.convolution_backward`` and an output mask: the input gradient
  (``[True, False, False]``) and the weight gradient (``[False, True, bias]``), on the exact
  arguments the module gave ``aten.convolution`` (read by a dispatch mode, so padding a module
  does itself is included).

The whole model's forward and backward (with respect to every trainable parameter) are timed in
each round too. The activation memory a call keeps for backward is measured, not estimated: the
bytes of the tensors autograd saves during its forward (``torch.autograd.graph.saved_tensors_hooks``),
each storage once, its parameters left out; for the whole model likewise over one forward (a tensor
that two layers keep is counted once there, but in both layers' rows).

The model is never changed: a deep copy runs, in training mode (BatchNorm normalizes over the batch
and updates the copy's running statistics), with in-place activations made out of place (an
in-place op would overwrite the recorded input it is replayed on). The copy runs fp32, NCHW, eager,
on the threads torch has.

Example::

    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3))
    >>> t = time_training_layers(model, torch.randn(2, 3, 16, 16), ["0", "1", "2", "3"], repeats=5)
    >>> [(row.name, row.needs_input_grad, row.input_grad is not None) for row in t.layers]
    [('0', False, False), ('1', True, False), ('2', True, False), ('3', True, True)]
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from .._util.checks import ArgumentError, non_negative_int, positive_int
from .._util.modules import tensors_in
from .._util.timing import Timing
from .layers import MIN_REPEATS, record_calls

__all__ = ["LayerTraining", "TrainingLayers", "check_batch", "check_trainable", "saved_bytes", "time_training_layers",
           "training_copy"]


@dataclass(frozen=True)
class LayerTraining:
    """The measured training passes of one leaf-module call, named as in :class:`sepconv.cost.LayerCost`.

    ``backward`` is None when the call has nothing to differentiate (its input needs no gradient
    and it has no trainable parameter); ``input_grad`` and ``weight_grad`` are timed for
    convolutions only, each None when the conv has no such pass.
    """

    name: str
    needs_input_grad: bool
    saved_bytes: int
    forward: Timing
    backward: Timing | None
    input_grad: Timing | None
    weight_grad: Timing | None


@dataclass(frozen=True)
class TrainingLayers:
    """Per-layer training timings and the whole model's, sampled in the same rounds; ``model`` is
    forward + backward per round, ``saved_bytes`` what the whole forward keeps for backward."""

    layers: list[LayerTraining]
    forward: Timing
    backward: Timing
    model: Timing
    saved_bytes: int

    @property
    def layers_ms(self) -> float:
        """Sum of the per-layer forward and backward medians."""
        return sum(row.forward.median_ms + (row.backward.median_ms if row.backward else 0.0) for row in self.layers)


def check_trainable(model: nn.Module, spec: str | None = None) -> None:
    """An :class:`ArgumentError` (argument ``train``) when no parameter of ``model`` needs a gradient."""
    params = list(model.parameters())
    if not any(p.requires_grad for p in params):
        what = repr(spec) if spec else type(model).__name__
        raise ArgumentError("train", f"train=True needs a model with trainable parameters, and model={what} has "
                                     f"none ({len(params)} parameter tensors, none requiring a gradient)")


def check_batch(input_shape: Sequence[int]) -> None:
    """An :class:`ArgumentError` (argument ``input_shape``) for a training batch under 2."""
    shape = tuple(input_shape)
    if shape[0] < 2:
        suggestion = "x".join(map(str, (8, *shape[1:])))
        raise ArgumentError("input_shape", f"input_shape={'x'.join(map(str, shape))}: a training profile needs a "
                                           "batch of at least 2 (BatchNorm in training mode normalizes over the "
                                           f"batch), e.g. {suggestion}")


def training_copy(model: nn.Module, inplace: bool = True) -> nn.Module:
    """A deep copy of ``model`` in training mode; ``inplace=False`` makes its in-place modules
    (``nn.ReLU(inplace=True)`` ...) out of place."""
    work = copy.deepcopy(model).train()
    if not inplace:
        for module in work.modules():
            if getattr(module, "inplace", False) is True:
                module.inplace = False
    return work


def saved_bytes(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> tuple[int, Any]:
    """``(bytes, fn())``: the bytes of every tensor autograd saves for backward while ``fn`` runs,
    each storage once, those of ``exclude`` (the parameters) left out.

    Example::

        >>> conv = nn.Conv2d(3, 8, 3)
        >>> saved_bytes(lambda: conv(torch.randn(2, 3, 8, 8, requires_grad=True)), conv.parameters())[0]
        1536
    """
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):  # an opaque (mkldnn) tensor has no storage to count
            return tensor
        if storage.data_ptr() not in excluded:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = fn()
    return sum(seen.values()), out


class _ConvArguments(TorchDispatchMode):
    """Records the arguments of every ``aten.convolution`` called in the block."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[tuple[Any, ...], torch.Tensor]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.convolution.default:
            self.calls.append((args, out))
        return out


@dataclass
class _Samples:
    forward: list[float] = field(default_factory=list)
    backward: list[float] = field(default_factory=list)
    input_grad: list[float] = field(default_factory=list)
    weight_grad: list[float] = field(default_factory=list)


def _ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1e3, out


def _random_like(tensors: Iterable[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    return [torch.randn(t.shape, generator=generator, dtype=t.dtype) for t in tensors]


class _Replay:
    """One recorded call, replayed: forward, backward and (for a conv) its two backward passes."""

    def __init__(self, call: Any, generator: torch.Generator) -> None:
        self.call, self.module = call, call.module
        inputs = [t for t in tensors_in((call.args, call.kwargs)) if t.requires_grad]
        self.needs_input_grad = bool(inputs)
        params = [p for p in self.module.parameters() if p.requires_grad]
        self.wrt = inputs + params
        self.saved_bytes, out = saved_bytes(self._forward, self.module.parameters())
        self.outputs = [t for t in tensors_in(out) if t.requires_grad]
        self.grads = _random_like(self.outputs, generator)
        self.conv = self._conv_passes(generator) if isinstance(self.module, nn.modules.conv._ConvNd) else []
        self.samples = _Samples()

    def _forward(self) -> Any:
        return self.module(*self.call.args, **self.call.kwargs)

    def _conv_passes(self, generator: torch.Generator) -> list[tuple[str, Callable[[], Any]]]:
        """The conv's input-gradient and weight-gradient passes, each a callable (only those it has)."""
        capture = _ConvArguments()
        with torch.no_grad(), capture:
            self._forward()
        if len(capture.calls) != 1:  # a leaf doing several convolutions is not split
            return []
        (x, weight, bias, stride, padding, dilation, transposed, output_padding, groups), out = capture.calls[0]
        grad = torch.randn(out.shape, generator=generator, dtype=out.dtype)
        x, weight = x.detach(), weight.detach()
        bias_sizes = None if bias is None else list(bias.shape)

        def run(mask: list[bool]) -> Callable[[], Any]:
            def backward() -> Any:
                with torch.no_grad():
                    return torch.ops.aten.convolution_backward(grad, x, weight, bias_sizes, stride, padding, dilation,
                                                               transposed, output_padding, groups, mask)
            return backward

        passes = []
        if self.needs_input_grad:
            passes.append(("input_grad", run([True, False, False])))
        if self.module.weight.requires_grad:
            passes.append(("weight_grad", run([False, True, bias is not None and bias.requires_grad])))
        return passes

    def round(self, timed: bool) -> None:
        ms, out = _ms(self._forward)
        samples = [(self.samples.forward, ms)]
        outputs = [t for t in tensors_in(out) if t.requires_grad]
        if self.wrt and outputs:
            ms, _ = _ms(lambda: torch.autograd.grad(outputs, self.wrt, self.grads, allow_unused=True))
            samples.append((self.samples.backward, ms))
        for name, run in self.conv:
            ms, _ = _ms(run)
            samples.append((getattr(self.samples, name), ms))
        if timed:
            for where, ms in samples:
                where.append(ms)

    def result(self) -> LayerTraining:
        def timing(samples: list[float]) -> Timing | None:
            return Timing.from_samples(samples) if samples else None

        s = self.samples
        return LayerTraining(self.call.name, self.needs_input_grad, self.saved_bytes, Timing.from_samples(s.forward),
                             timing(s.backward), timing(s.input_grad), timing(s.weight_grad))


def time_training_layers(
    model: nn.Module,
    x: torch.Tensor,
    names: Sequence[str],
    repeats: int = 20,
    warmup: int = 2,
    budget_s: float | None = None,
    advance: Callable[[], None] | None = None,
) -> TrainingLayers:
    """Time the training passes of each leaf call named in ``names`` (the rows of a cost report,
    in order) and the whole model's forward and backward, in ``warmup`` untimed then ``repeats``
    timed interleaved rounds (see the module docstring), on a training copy of ``model``. With
    ``budget_s``, timed rounds stop once that many seconds have passed and at least
    :data:`~sepconv.profile.layers.MIN_REPEATS` rounds are done. ``advance`` is called once per round.

    Raises ``ValueError`` for a batch under 2, a model without trainable parameters, or a name that
    is not a leaf-module call of ``model(x)``.
    """
    positive_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    check_batch(x.shape)
    check_trainable(model)
    with torch.enable_grad():
        x = x.detach()
        work = training_copy(model, inplace=False)
        generator = torch.Generator().manual_seed(0)
        by_name = {call.name: call for call in record_calls(work, x, grad=True)}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise ValueError(f"names: {', '.join(missing[:5])} are not leaf-module calls of the model")
        replays = [_Replay(by_name[name], generator) for name in names]
        params = [p for p in work.parameters() if p.requires_grad]
        model_saved, out = saved_bytes(lambda: work(x), params)
        grads = _random_like([t for t in tensors_in(out) if t.requires_grad], generator)
        del out

        def whole() -> tuple[float, float]:
            forward_ms, out = _ms(lambda: work(x))
            outputs = [t for t in tensors_in(out) if t.requires_grad]
            backward_ms, _ = _ms(lambda: torch.autograd.grad(outputs, params, grads, allow_unused=True))
            return forward_ms, backward_ms

        forward: list[float] = []
        backward: list[float] = []
        start = time.perf_counter()
        for round_ in range(warmup + repeats):
            timed = round_ >= warmup
            if timed and len(forward) >= MIN_REPEATS and budget_s is not None \
                    and time.perf_counter() - start > budget_s:
                break
            f, b = whole()
            if timed:
                forward.append(f)
                backward.append(b)
            for replay in replays:
                replay.round(timed)
            if advance is not None:
                advance()
    return TrainingLayers(
        layers=[replay.result() for replay in replays],
        forward=Timing.from_samples(forward),
        backward=Timing.from_samples(backward),
        model=Timing.from_samples([f + b for f, b in zip(forward, backward)]),
        saved_bytes=model_saved,
    )
