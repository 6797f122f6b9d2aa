"""Input shapes for deployment: checked, or a zoo model's own (:func:`sepconv.resolve.default_input_shape`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from typing import Any

import torch
from torch import nn

from .._util.checks import ArgumentError
from .._util.modules import tensors_in
from .._util.runtime import eval_mode
from ..cost import unit_hooks
from ..models.provenance import provenance_of
from ..resolve import default_input_shape


def check_shape(name: str, shape: Sequence[int]) -> tuple[int, ...]:
    """A (B, C, H, W) shape of positive ints, as a tuple."""
    ok = (isinstance(shape, (tuple, list, torch.Size)) and len(shape) == 4
          and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape))
    if not ok:
        raise ValueError(f"{name}={shape!r} must be 4 positive integers (B, C, H, W)")
    return tuple(int(v) for v in shape)


def example_input(model: nn.Module, spec: torch.Tensor | Sequence[int] | None) -> torch.Tensor:
    """A tensor to run ``model`` on: ``spec`` itself, random data of shape ``spec``, or, for a zoo
    model, of its default shape (a deployed graph is fixed to it, so other modules must say theirs).

    Example::

        >>> from sepconv.models import create_model
        >>> example_input(create_model("xception", num_classes=10), None).shape
        torch.Size([1, 3, 299, 299])
    """
    if isinstance(spec, torch.Tensor):
        return spec
    if spec is None and provenance_of(model) is None:
        raise ArgumentError("input_shape", f"input_shape=None: model={type(model).__name__} was not built by "
                                           "sepconv.create_model, so give its input shape (B, C, H, W)")
    shape = default_input_shape(model) if spec is None else check_shape("input_shape", spec)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def check_images(name: str, x: torch.Tensor, input_shape: Sequence[int]) -> None:
    """``x`` must be (N, C, H, W) with the model's C, H and W."""
    want = tuple(input_shape[1:])
    if x.dim() != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; the model takes (N, {', '.join(map(str, want))})")



def check_forward(model: nn.Module, x: torch.Tensor, needs: str, *, many: bool = False) -> Any:
    """Run ``model(x)`` once (eval mode, no gradients) and return its output, refusing in one
    ``ValueError`` a forward that recurses without end or returns anything but one tensor (with
    ``many``, also a list or tuple of tensors: a backbone's feature maps) — what a user's own
    ``package.module:callable`` may do — naming what it returned and what ``needs`` it."""
    name = type(model).__name__
    try:
        with eval_mode(model), torch.no_grad():
            out = model(x)
    except RecursionError:
        raise ArgumentError("model", f"model: {name}'s forward recursed without end on an input of shape "
                                     f"{tuple(x.shape)}; {needs} needs a forward that returns") from None
    if many and isinstance(out, (list, tuple)) and out and all(isinstance(t, torch.Tensor) for t in out):
        return out
    if not isinstance(out, torch.Tensor):
        raise ArgumentError("model", f"model: {name} returns a {type(out).__name__}, not a tensor; {needs} needs a "
                                     "model whose forward returns one tensor (wrap it to return the output you want)")
    return out


def weight_bytes(model: nn.Module) -> int:
    """The bytes of ``model``'s parameters and buffers (each tensor once, shared ones too)."""
    state = dict(chain(model.named_parameters(), model.named_buffers()))
    return sum(t.numel() * t.element_size() for t in state.values())


def forward_memory_bytes(model: nn.Module, input_shape: Sequence[int], batch: int | None = None,
                         factor: float = 1) -> int:
    """An estimate, made without allocating, of the bytes running ``model`` at ``input_shape`` needs
    at its largest batch (``input_shape[0]`` or ``batch``): the weights, plus ``factor`` times the
    input and every unit call's output (all counted live at once, as a per-layer replay keeps them;
    ``factor`` > 1 for the gradients of training).

    The forward runs once at batch 1 on the ``meta`` device (shapes only: no data, no time), with
    the model's parameters swapped for meta tensors (``torch.func.functional_call``, the model is
    untouched), and its activations are scaled by the batch. A model that cannot run on meta
    tensors (data-dependent Python) is estimated by its input alone.

    Example::

        >>> mb = forward_memory_bytes(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 32, 32)) / 1e6
        >>> round(mb, 3)  # fp32: the 3 x 32 x 32 input, 8 x 32 x 32 outputs and 224 weights
        0.046
    """
    shape = tuple(int(n) for n in input_shape)
    largest = max(shape[0], batch or shape[0])
    state = dict(chain(model.named_parameters(), model.named_buffers()))
    weights = weight_bytes(model)
    per_sample = math.prod(shape[1:]) * torch.get_default_dtype().itemsize  # the input itself
    outputs: list[int] = []

    def record(name: str, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        outputs.append(sum(t.numel() * t.element_size() for t in tensors_in(output)))

    try:
        meta = {name: torch.empty_like(t, device="meta") for name, t in state.items()}
        x = torch.empty((1, *shape[1:]), device="meta")
        with eval_mode(model), torch.no_grad(), unit_hooks(model, record):
            torch.func.functional_call(model, meta, (x,))
        per_sample += sum(outputs)
    except Exception:  # noqa: BLE001 - an estimate: a model meta tensors cannot run is counted by its input
        pass
    return int(weights + largest * per_sample * factor)
