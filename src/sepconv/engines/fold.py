"""Fold every BatchNorm into the convolution (or linear layer) that feeds it.

In eval mode a BatchNorm is a per-channel affine map ``y = s * x + t`` with
``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s``; applied to a conv's output it is the
same conv with weights ``W * s`` (per output channel) and bias ``b * s + t`` (Ioffe & Szegedy 2015,
*Batch Normalization*, Section 3.2: "at inference ... the normalization is simply a linear
transform ... composed with the linear transform of the layer"; Jacob et al. 2018, *Quantization
and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference*, Section 3.2).

Which BN follows which conv is read from the data flow of one forward pass, not from module
names: a ``TorchFunctionMode`` records every torch call, and a BN is folded only when its input is
the output of exactly one conv call whose result nothing else reads (an ``x.flatten(1)`` of a
``(B, C, 1, 1)`` map in between is allowed: MobileFaceNet's embedding). So any network built from
sepconv's operators, or from plain ``torch.nn``, folds without a table of module pairs. The
recorder, rather than a ``torch.fx`` graph, is what makes that hold for *any* module: sepconv's own
models trace symbolically, but a user's ``package.module:callable`` may branch on its input in
Python, which symbolic tracing refuses, while one recorded forward pass always works.
A BN that does not qualify is left in place, so the result is always exact; see
:func:`remaining_norms`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .._util.modules import tensors_in
from .shapes import example_input as make_example

# What folds: BatchNorm alone (its eval-mode affine map is fixed; cost.py's norms include the
# GroupNorm/LayerNorm/InstanceNorm kinds, which normalize with statistics of the input itself).
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_PRODUCERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
# Tensor calls that read only metadata: they do not consume a conv's output.
_METADATA = {"size", "dim", "shape", "ndim", "dtype", "device", "numel", "is_contiguous", "__len__",
             "is_floating_point", "layout", "requires_grad", "is_cuda", "stride"}
# Calls allowed between a producer and its BN when they only drop trailing 1-sized dims.
_PASSTHROUGH = {"flatten", "view", "reshape", "squeeze"}


@dataclass(frozen=True)
class FoldedPair:
    """One fold: the producer module's name and the BN module's name (``model.named_modules``)."""

    producer: str
    norm: str


def _func_name(func: object) -> str:
    if getattr(func, "__name__", None) == "__get__":  # a property such as Tensor.shape
        return getattr(getattr(func, "__self__", None), "__name__", "")
    return getattr(func, "__name__", "")


class _Recorder(TorchFunctionMode):
    """Records, for every torch call, its name, tensor inputs and tensor outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[torch.Tensor], list[torch.Tensor]]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = _func_name(func)
        if name not in _METADATA:
            self.calls.append((name, list(tensors_in((args, kwargs))), list(tensors_in(out))))
        return out


def find_foldable(model: nn.Module, example: torch.Tensor) -> list[FoldedPair]:
    """The (producer, BN) pairs of ``model`` (in eval mode) that can be folded exactly."""
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    weight_owner = {id(m.weight): m for m in model.modules() if isinstance(m, _PRODUCERS)
                    and not getattr(m, "transposed", False)}
    stat_owner = {id(m.running_mean): m for m in model.modules()
                  if isinstance(m, _BATCH_NORMS) and m.running_mean is not None and not m.training}
    rec = _Recorder()
    with torch.no_grad(), rec:
        result = model(example)
    uses: dict[int, int] = {}
    for _, inputs, _ in rec.calls:
        for t in {id(t): t for t in inputs}.values():
            uses[id(t)] = uses.get(id(t), 0) + 1
    for t in tensors_in(result):
        uses[id(t)] = uses.get(id(t), 0) + 1
    calls_of: dict[int, int] = {}
    made_by: dict[int, nn.Module] = {}  # id(output tensor) -> producer module
    pairs: list[tuple[nn.Module, nn.Module]] = []
    for name, inputs, outputs in rec.calls:
        owners = [weight_owner[id(t)] for t in inputs if id(t) in weight_owner]
        norms = [stat_owner[id(t)] for t in inputs if id(t) in stat_owner]
        for m in owners + norms:
            calls_of[id(m)] = calls_of.get(id(m), 0) + 1
        if len(owners) == 1 and len(outputs) == 1 and not norms:
            made_by[id(outputs[0])] = owners[0]
        elif name in _PASSTHROUGH and inputs and len(outputs) == 1 and id(inputs[0]) in made_by:
            src, dst = inputs[0], outputs[0]
            if src.shape[:2] == dst.shape[:2] and src.numel() == dst.numel() == src.shape[0] * src.shape[1] \
                    and uses.get(id(src)) == 1:
                made_by[id(dst)] = made_by[id(src)]
        elif len(norms) == 1 and inputs and id(inputs[0]) in made_by and uses.get(id(inputs[0])) == 1:
            producer = made_by[id(inputs[0])]
            if producer.weight.shape[0] == norms[0].num_features:
                pairs.append((producer, norms[0]))
    # A module called more than once (weight sharing) cannot be folded for one of its calls only.
    return [FoldedPair(names[id(p)], names[id(n)]) for p, n in pairs
            if calls_of.get(id(p)) == 1 and calls_of.get(id(n)) == 1]


@torch.no_grad()
def _fold_into(producer: nn.Module, norm: nn.Module) -> None:
    var = norm.running_var.double()
    scale = torch.rsqrt(var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.double()
    shift = -norm.running_mean.double() * scale
    if norm.bias is not None:
        shift = shift + norm.bias.double()
    w = producer.weight
    shape = (-1,) + (1,) * (w.dim() - 1)
    w.copy_((w.double() * scale.view(shape)).to(w.dtype))
    bias = producer.bias.double() * scale + shift if producer.bias is not None else shift
    producer.bias = nn.Parameter(bias.to(w.dtype), requires_grad=w.requires_grad)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


def fold_bn(model: nn.Module, example_input: torch.Tensor | Sequence[int] | None = None,
            inplace: bool = False) -> nn.Module:
    """Return ``model`` in eval mode with every foldable BatchNorm folded into its conv/linear.

    ``example_input`` (a tensor or an input shape; default: the registry's input size for zoo
    models) drives the one forward pass that finds the pairs. Folded BNs become ``nn.Identity``;
    the producer gains a bias. Exact up to float rounding (computed in float64).

    Example::

        >>> from sepconv.layers import ConvNormAct
        >>> folded = fold_bn(ConvNormAct(3, 8, 3), (1, 3, 16, 16))
        >>> folded.norm, folded(torch.zeros(1, 3, 16, 16)).shape
        (Identity(), torch.Size([1, 8, 16, 16]))
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model={type(model).__name__} must be a torch.nn.Module")
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    x = make_example(model, example_input)
    for pair in find_foldable(model, x):
        _fold_into(model.get_submodule(pair.producer), model.get_submodule(pair.norm))
        _replace(model, pair.norm, nn.Identity())
    return model


def remaining_norms(model: nn.Module) -> list[str]:
    """Names of the BatchNorm modules still in ``model`` (after :func:`fold_bn`: those it could not fold)."""
    return [name for name, m in model.named_modules() if isinstance(m, _BATCH_NORMS)]
