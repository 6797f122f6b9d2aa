"""The exact cost of a model: parameters, multiply-accumulates and bytes moved, layer by layer.

Howard et al. 2017, *MobileNets*, Section 3.1: a standard ``k x k`` conv from M to N channels on
an ``H x W`` output costs ``k^2 M N H W`` MACs, the depthwise-separable pair ``k^2 M H W + M N H W``.
:func:`analyze` gets those numbers by running the model once and reading each leaf module's input
and output shapes, so it needs no per-architecture formula and agrees with
``torch.utils.flop_counter.FlopCounterMode`` (which counts ``2 x MACs``) to the unit. Bytes (weights
read, activations read and written) give each layer's arithmetic intensity, the x-axis of a
roofline: why a depthwise conv with 9x fewer MACs is not 9x faster. :func:`analyze_training`
adds the backward passes of a training step: input gradient = weight gradient = forward MACs, for
any ``groups`` (:func:`gradient_macs`; ``FlopCounterMode``'s weight-gradient count ignores
``groups``, so it is not the reference there).

Units: MACs are multiply-accumulates (the papers' "mult-adds"); FLOPs are ``2 x MACs``; bytes are
bytes; intensity is FLOPs per byte.

Example::

    >>> report = analyze(SeparableConv2d(3, 4, 3), (1, 3, 64, 64))
    >>> report.params, report.macs, [row.kind for row in report.layers]
    (39, 159744, ['depthwise', 'pointwise'])
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from ._util.checks import int_pair, positive_int
from ._util.modules import tensors_in
from ._util.runtime import eval_mode

__all__ = ["CostReport", "KindCost", "LayerCost", "LayerTrainingCost", "TrainingCostReport", "analyze",
           "analyze_training", "conv_kind", "conv_macs", "conv_output_size", "conv_params", "gradient_macs",
           "is_depthwise", "layer_kind"]

KINDS = ("standard", "depthwise", "pointwise", "spatial", "grouped", "linear", "norm", "activation", "pool", "other")

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)  # _NormBase: BatchNorm*, InstanceNorm*
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.PReLU, nn.SiLU, nn.GELU, nn.Sigmoid,
                nn.Tanh, nn.LeakyReLU, nn.ELU)
_POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
          nn.modules.pooling._AdaptiveAvgPoolNd)


def conv_params(in_ch: int, out_ch: int, kernel: int | tuple[int, int], groups: int = 1, bias: bool = False) -> int:
    """Parameters of a 2-D conv: ``out_ch * (in_ch / groups) * kh * kw`` (+ ``out_ch`` with a bias).

    Example::

        >>> conv_params(3, 4, 3), conv_params(3, 3, 3, groups=3) + conv_params(3, 4, 1)
        (108, 39)
    """
    kh, kw = int_pair("kernel", kernel)
    _check_groups(in_ch, out_ch, groups)
    return out_ch * (in_ch // groups) * kh * kw + (out_ch if bias else 0)


def conv_macs(
    in_ch: int, out_ch: int, kernel: int | tuple[int, int], out_hw: int | tuple[int, int], groups: int = 1,
    batch: int = 1,
) -> int:
    """MACs of a 2-D conv in closed form: ``batch * out_ch * H' * W' * (in_ch / groups) * kh * kw``.

    ``out_hw`` is the *output* size, so stride, dilation and padding enter through it (see
    :func:`conv_output_size`); the bias add is not a multiply-accumulate and is not counted
    (as in FlopCounterMode). :func:`analyze` uses this for every convolution it meets.

    Example::

        >>> conv_macs(1, 1, 3, 3), conv_macs(1, 1, (3, 1), (3, 5)) + conv_macs(1, 1, (1, 3), 3)
        (81, 72)
    """
    kh, kw = int_pair("kernel", kernel)
    oh, ow = int_pair("out_hw", out_hw, minimum=0)
    _check_groups(in_ch, out_ch, groups)
    positive_int("batch", batch)
    return batch * out_ch * oh * ow * (in_ch // groups) * kh * kw


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int | tuple[int, int] = 0,
                     dilation: int = 1) -> int:
    """Output length of a conv along one dimension: ``floor((size + pad - d(k - 1) - 1) / s) + 1``.

    ``padding`` is the amount on each side (an int) or ``(before, after)``, as torch and
    TensorFlow's SAME rule pad (see :mod:`sepconv.layers.padding`).

    Example::

        >>> conv_output_size(224, 3, stride=2, padding=1), conv_output_size(5, 3)
        (112, 3)
    """
    before, after = (padding, padding) if isinstance(padding, int) else padding
    positive_int("size", size)
    positive_int("kernel", kernel)
    positive_int("stride", stride)
    positive_int("dilation", dilation)
    span = size + before + after - dilation * (kernel - 1)
    if span < 1:
        raise ValueError(f"size={size}: with padding={padding!r} it is smaller than the dilated kernel "
                         f"{dilation * (kernel - 1) + 1}")
    return (span - 1) // stride + 1


def _check_groups(in_ch: int, out_ch: int, groups: int) -> None:
    positive_int("in_ch", in_ch)
    positive_int("out_ch", out_ch)
    positive_int("groups", groups)
    if in_ch % groups or out_ch % groups:
        raise ValueError(f"groups={groups} must divide in_ch={in_ch} and out_ch={out_ch}")


@dataclass(frozen=True)
class LayerCost:
    """One call of one leaf module.

    ``params`` counts the parameters this call is the first to use (so the rows of a report add up
    to its total, shared and re-used weights once); ``weight_bytes`` counts every parameter the call
    reads, at the report's element size. ``macs`` is 0 for everything that is not a convolution or
    a linear layer: norms, activations, pools and element-wise ops do no multiply-accumulates in
    the papers' sense (nor in FlopCounterMode), though they still move bytes.
    """

    name: str
    type: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int
    weight_bytes: int
    act_bytes_read: int
    act_bytes_written: int

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def bytes(self) -> int:
        """Weights read + activations read + activations written."""
        return self.weight_bytes + self.act_bytes_read + self.act_bytes_written

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOPs per byte (0.0 for a layer that moves nothing)."""
        return _intensity(self.macs, self.bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "weight_bytes": self.weight_bytes,
            "act_bytes_read": self.act_bytes_read,
            "act_bytes_written": self.act_bytes_written,
            "bytes": self.bytes,
            "intensity_flops_per_byte": self.intensity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerCost:
        values = {f.name: data[f.name] for f in fields(cls)}
        values["input_shape"] = tuple(values["input_shape"])
        values["output_shape"] = tuple(values["output_shape"])
        return cls(**values)


@dataclass(frozen=True)
class KindCost:
    """The layers of one kind added up; ``macs_share`` is their fraction of the model's MACs."""

    layers: int
    params: int
    macs: int
    bytes: int
    macs_share: float


@dataclass(frozen=True)
class CostReport:
    """What :func:`analyze` returns: totals, and one :class:`LayerCost` per leaf-module call.

    ``params`` is every parameter of the model counted once (including any held by non-leaf
    modules or never used in the forward pass); ``macs`` is the sum of the layers' MACs.
    """

    input_shape: tuple[int, ...]
    params: int
    macs: int
    dtype: str
    element_bytes: int
    layers: list[LayerCost] = field(default_factory=list)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def bytes(self) -> int:
        return sum(layer.bytes for layer in self.layers)

    @property
    def intensity(self) -> float:
        return _intensity(self.macs, self.bytes)

    def by_kind(self) -> dict[str, KindCost]:
        """Kind -> :class:`KindCost`, in the order the kinds are first met."""
        groups: dict[str, list[LayerCost]] = {}
        for layer in self.layers:
            groups.setdefault(layer.kind, []).append(layer)
        return {
            kind: KindCost(
                layers=len(rows),
                params=sum(r.params for r in rows),
                macs=sum(r.macs for r in rows),
                bytes=sum(r.bytes for r in rows),
                macs_share=sum(r.macs for r in rows) / self.macs if self.macs else 0.0,
            )
            for kind, rows in groups.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; keys are stable, units are in the names where they could be unclear."""
        return {
            "input_shape": list(self.input_shape),
            "dtype": self.dtype,
            "element_bytes": self.element_bytes,
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "bytes": self.bytes,
            "intensity_flops_per_byte": self.intensity,
            "by_kind": {kind: vars(cost) for kind, cost in self.by_kind().items()},
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostReport:
        """Rebuild a report from :meth:`to_dict`'s output (derived keys are recomputed, not read)."""
        return cls(
            input_shape=tuple(data["input_shape"]),
            params=data["params"],
            macs=data["macs"],
            dtype=data["dtype"],
            element_bytes=data["element_bytes"],
            layers=[LayerCost.from_dict(row) for row in data["layers"]],
        )

    @classmethod
    def from_json(cls, text: str) -> CostReport:
        return cls.from_dict(json.loads(text))

    def table(self) -> Table:
        """A rich table: one row per layer call, then the totals."""
        table = Table(title=f"cost of one forward pass, input {tuple(self.input_shape)}, {self.dtype}",
                      caption="MACs = multiply-accumulates; FLOPs = 2 x MACs; intensity = FLOPs / byte")
        for header in ("layer", "type", "kind", "output", "params", "MACs", "bytes", "FLOPs/B"):
            table.add_column(header, justify="left" if header in ("layer", "type", "kind", "output") else "right")
        for row in self.layers:
            table.add_row(row.name, row.type, row.kind, "x".join(map(str, row.output_shape)), f"{row.params:,}",
                          f"{row.macs:,}", f"{row.bytes:,}", f"{row.intensity:.2f}")
        table.add_section()
        table.add_row("total", "", "", "", f"{self.params:,}", f"{self.macs:,}", f"{self.bytes:,}",
                      f"{self.intensity:.2f}")
        return table

    def __str__(self) -> str:
        console = Console(record=True, width=160, file=io.StringIO())
        console.print(self.table())
        return console.export_text()


def _intensity(macs: int, nbytes: int) -> float:
    return 2 * macs / nbytes if nbytes else 0.0


def layer_kind(module: nn.Module) -> str:
    """The kind of a leaf module (see :func:`analyze`)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return conv_kind(module)
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _NORMS):
        return "norm"
    if isinstance(module, _ACTIVATIONS):
        return "activation"
    if isinstance(module, _POOLS):
        return "pool"
    return "other"


def is_depthwise(module: nn.Module) -> bool:
    """A convolution with one group per input channel and more than one channel (MobileNets §3.1);
    with a depth multiplier the groups still equal the input channels. The one definition that the
    cost model, the optimizer's weight-decay groups, the health report and separation share."""
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups == module.in_channels > 1


def conv_kind(conv: nn.modules.conv._ConvNd) -> str:
    """The kind the cost model gives a convolution: "depthwise", "grouped", "pointwise",
    "spatial" (k x 1 or 1 x k) or "standard"."""
    kernel, groups = tuple(conv.kernel_size), conv.groups
    if is_depthwise(conv):
        return "depthwise"
    if groups > 1:
        return "grouped"
    if all(k == 1 for k in kernel):
        return "pointwise"
    if len(kernel) == 2 and min(kernel) == 1:
        return "spatial"
    return "standard"


def _layer_macs(module: nn.Module, inputs: list[torch.Tensor], output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d) and output.dim() >= 3:
        return conv_macs(module.in_channels, module.out_channels, module.kernel_size, tuple(output.shape[-2:]),
                         module.groups, batch=math.prod(output.shape[:-3]))
    if isinstance(module, nn.modules.conv._ConvNd):  # Conv1d/Conv3d and transposed convs
        # A conv gathers one kernel's worth of inputs per *output* element, a transposed conv
        # scatters every *input* element through the kernel: FlopCounterMode's rule for each.
        per_element = (module.out_channels if module.transposed else module.in_channels) // module.groups
        return (inputs[0] if module.transposed else output).numel() * per_element * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def _moves_nothing(module: nn.Module, inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> bool:
    """True for a layer that hands back its input or a view of it (eval Dropout, Flatten)."""
    if getattr(module, "inplace", False) or len(inputs) != 1 or len(outputs) != 1:
        return False
    storage = inputs[0].untyped_storage().data_ptr()
    return outputs[0].untyped_storage().data_ptr() == storage


def analyze(model: nn.Module, input_shape: tuple[int, ...] | torch.Tensor, *,
            dtype: torch.dtype = torch.float32) -> CostReport:
    """Run ``model`` once on an input of ``input_shape`` and return its exact :class:`CostReport`.

    Works on any ``nn.Module``: forward hooks on the leaf modules (those without children) record
    each call's shapes, in eval mode under ``torch.no_grad`` on a seeded random input (each
    module's training flag is restored afterwards). A module called twice gives two rows, ``name``
    and ``name#2``; ``nn.Identity`` placeholders (an absent norm or activation) get none.
    ``input_shape`` is a tuple such as ``(1, 3, 224, 224)`` or a tensor to run on.

    Per row: ``kind`` is "depthwise" (``groups == in_channels > 1``), "grouped" (other
    ``groups > 1``), "pointwise" (1x1), "spatial" (``k x 1`` or ``1 x k``), "standard" (any other
    conv), "linear", "norm", "activation", "pool" or "other". ``macs`` is
    ``output.numel() * in_channels / groups * kh * kw`` for a conv (:func:`conv_macs`: batch,
    stride, dilation and padding enter through the output shape), ``output.numel() * in_features``
    for a linear layer, and 0 for every other layer. Bytes are counted at ``dtype``'s element size
    (the model itself runs in its own dtype): weights ``params x size``, activations read
    ``input.numel() x size``, written ``output.numel() x size``; a layer that returns its input or
    a view of it (``nn.Dropout`` in eval, ``nn.Flatten``) moves no activations.

    The MAC total equals ``FlopCounterMode``'s count / 2 for models whose multiplications all
    happen in conv and linear modules (every model in :mod:`sepconv.models`); a matmul written
    in a ``forward`` outside such a module (attention) is not a leaf module's and is not counted.

    Example::

        >>> report = analyze(nn.Conv2d(3, 4, 3, padding=1, bias=False), (1, 3, 64, 64))
        >>> report.params, report.macs, report.flops, report.layers[0].output_shape
        (108, 442368, 884736, (1, 4, 64, 64))
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model={type(model).__name__} must be a torch.nn.Module")
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype={dtype!r} must be a torch.dtype such as torch.float32")
    x = _make_input(model, input_shape)
    element_bytes = torch.empty((), dtype=dtype).element_size()
    seen_params: set[int] = set()
    rows: list[LayerCost] = []

    def record(name: str, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        inputs, outputs = list(tensors_in(args)), list(tensors_in(output))
        params = list(module.parameters())
        new_params = [p for p in params if id(p) not in seen_params]
        seen_params.update(id(p) for p in new_params)
        moved = not _moves_nothing(module, inputs, outputs)
        rows.append(LayerCost(
            name=name,
            type=type(module).__name__,
            kind=layer_kind(module),
            input_shape=tuple(inputs[0].shape) if inputs else (),
            output_shape=tuple(outputs[0].shape) if outputs else (),
            params=sum(p.numel() for p in new_params),
            macs=_layer_macs(module, inputs, outputs[0]) if outputs else 0,
            weight_bytes=sum(p.numel() for p in params) * element_bytes,
            act_bytes_read=sum(t.numel() for t in inputs) * element_bytes * moved,
            act_bytes_written=sum(t.numel() for t in outputs) * element_bytes * moved,
        ))

    with eval_mode(model), torch.no_grad():
        _run_leaf_calls(model, x, record)
    return CostReport(
        input_shape=tuple(x.shape),
        params=sum(p.numel() for p in model.parameters()),
        macs=sum(row.macs for row in rows),
        dtype=str(dtype).removeprefix("torch."),
        element_bytes=element_bytes,
        layers=rows,
    )


_Record = Callable[[str, nn.Module, tuple[Any, ...], Any], None]  # (name, module, args, output)


@contextmanager
def _leaf_hooks(model: nn.Module, record: _Record) -> Iterator[None]:
    """Call ``record(name, module, args, output)`` after every leaf-module call in the block; names
    are the qualified module names, ``"(model)"`` for a model that is itself a leaf, ``name#2`` ...
    for a module called again. ``nn.Identity`` placeholders are left out."""
    names = {module: name or "(model)" for name, module in model.named_modules()}
    calls: Counter[nn.Module] = Counter()

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        calls[module] += 1
        record(names[module] + (f"#{calls[module]}" if calls[module] > 1 else ""), module, args, output)

    leaves = [m for m in names if next(m.children(), None) is None and not isinstance(m, nn.Identity)]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _run_leaf_calls(model: nn.Module, x: torch.Tensor, record: _Record) -> None:
    """``model(x)`` once with :func:`_leaf_hooks`; a model that cannot run on ``x`` is a ValueError."""
    try:
        with _leaf_hooks(model, record):
            model(x)
    except RuntimeError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"input_shape={tuple(x.shape)}: {type(model).__name__} cannot run on it: "
                         f"{first_line}") from err


# ---------------------------------------------------------------------------------------------
# Training: the MACs of the backward pass


def gradient_macs(forward_macs: int, *, input_grad: bool, weight_grad: bool) -> tuple[int, int]:
    """The MACs of a conv's (or linear layer's) two backward passes, ``(input_grad, weight_grad)``.

    Both equal the forward MACs, for any ``groups``: the input gradient is the transposed
    convolution of the output gradient with the same weights (each weight meets each output
    position once, as in the forward), and the weight gradient correlates the input with the
    output gradient, one multiply-accumulate per weight per output position (``out_ch x
    in_ch/groups x kh x kw x batch x H' x W'``, the forward's count). A pass that is not needed
    costs nothing: a first layer, whose input (the images) needs no gradient, has no input-gradient
    pass, and a frozen weight no weight-gradient pass. So a training step costs 3x the forward
    MACs, 2x in a first layer.

    ``torch.utils.flop_counter`` is not the reference here: its weight-gradient formula ignores
    ``groups`` (measured with torch 2.13: its backward count is 33x the forward for a depthwise
    3x3 conv with 32 groups, against 2x for a dense one).

    Example::

        >>> gradient_macs(81, input_grad=True, weight_grad=True), gradient_macs(81, input_grad=False, weight_grad=True)
        ((81, 81), (0, 81))
    """
    if isinstance(forward_macs, bool) or not isinstance(forward_macs, int) or forward_macs < 0:
        raise ValueError(f"forward_macs={forward_macs!r} must be a non-negative integer")
    return (forward_macs if input_grad else 0), (forward_macs if weight_grad else 0)


@dataclass(frozen=True)
class LayerTrainingCost:
    """One leaf-module call in a training step: whether its input needs a gradient (something
    before it trains), whether its own weight does, and the MACs of its forward, input-gradient
    and weight-gradient passes (:func:`gradient_macs`)."""

    name: str
    needs_input_grad: bool
    trains_weight: bool
    forward_macs: int
    input_grad_macs: int
    weight_grad_macs: int

    @property
    def backward_macs(self) -> int:
        return self.input_grad_macs + self.weight_grad_macs

    @property
    def macs(self) -> int:
        """Forward + backward: the MACs this call costs in one training step."""
        return self.forward_macs + self.backward_macs


@dataclass(frozen=True)
class TrainingCostReport:
    """What :func:`analyze_training` returns: the forward :class:`CostReport` and, row for row,
    each call's :class:`LayerTrainingCost`."""

    cost: CostReport
    layers: list[LayerTrainingCost]

    @property
    def forward_macs(self) -> int:
        return sum(row.forward_macs for row in self.layers)

    @property
    def input_grad_macs(self) -> int:
        return sum(row.input_grad_macs for row in self.layers)

    @property
    def weight_grad_macs(self) -> int:
        return sum(row.weight_grad_macs for row in self.layers)

    @property
    def backward_macs(self) -> int:
        return self.input_grad_macs + self.weight_grad_macs

    @property
    def macs(self) -> int:
        """Forward + backward MACs of one training step."""
        return self.forward_macs + self.backward_macs


def analyze_training(model: nn.Module, input_shape: tuple[int, ...] | torch.Tensor, *,
                     dtype: torch.dtype = torch.float32) -> TrainingCostReport:
    """The MACs of one training step of ``model``, layer by layer: :func:`analyze`'s forward rows,
    and for each the backward passes :func:`gradient_macs` counts.

    Which passes a call has is read from autograd, in one forward with gradients enabled on an
    input that needs none (eval mode, training flags restored): the input-gradient pass when the
    call's input requires a gradient, the weight-gradient pass when its ``weight`` does. Only
    convolutions and linear layers have MACs, so only they add backward MACs.

    Example::

        >>> step = analyze_training(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3)), (2, 3, 8, 8))
        >>> [(r.forward_macs, r.backward_macs) for r in step.layers]
        [(15552, 15552), (0, 0), (18432, 36864)]
    """
    cost = analyze(model, input_shape, dtype=dtype)
    x = _make_input(model, input_shape).detach()
    passes: list[tuple[bool, bool]] = []

    def record(name: str, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        first = next(iter(tensors_in(args)), None)
        weight = getattr(module, "weight", None)
        passes.append((first is not None and first.requires_grad,
                       isinstance(weight, torch.Tensor) and weight.requires_grad))

    with eval_mode(model), torch.enable_grad():
        _run_leaf_calls(model, x, record)
    layers = []
    for row, (needs_input_grad, trains_weight) in zip(cost.layers, passes, strict=True):
        input_grad, weight_grad = gradient_macs(row.macs, input_grad=needs_input_grad, weight_grad=trains_weight)
        layers.append(LayerTrainingCost(row.name, needs_input_grad, trains_weight, row.macs, input_grad, weight_grad))
    return TrainingCostReport(cost, layers)


def _make_input(model: nn.Module, input_shape: tuple[int, ...] | torch.Tensor) -> torch.Tensor:
    if isinstance(input_shape, torch.Tensor):
        return input_shape
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else None
    if not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ValueError(f"input_shape={input_shape!r} must be a tensor or a non-empty tuple of positive ints, "
                         "e.g. (1, 3, 224, 224)")
    reference = next((t for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()), None)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator, dtype=reference.dtype if reference is not None else torch.float32)
    return x.to(reference.device) if reference is not None else x
