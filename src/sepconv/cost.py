"""The exact cost of a model: parameters, multiply-accumulates and bytes moved, layer by layer.

Howard et al. 2017, *MobileNets*, Section 3.1: a standard ``k x k`` conv from M to N channels on
an ``H x W`` output costs ``k^2 M N H W`` MACs, the depthwise-separable pair ``k^2 M H W + M N H W``.
:func:`analyze` gets those numbers by running the model once and reading each unit's input and
output shapes, so it needs no per-architecture formula and agrees with
``torch.utils.flop_counter.FlopCounterMode`` (which counts ``2 x MACs``) to the unit. A row's unit is
defined once, for the cost model and the profile alike (:func:`is_unit`, :func:`leaf_modules`,
:func:`unit_hooks`): a module without children, or a conv, linear, norm, activation or pool module
even with children (timm's ``BatchNormAct2d`` is one norm row, its activation inside). Its kind
comes from its type (:func:`layer_kind`), else from the aten ops it ran (:func:`kind_from_ops`;
such rows are :attr:`CostReport.fallback`). Bytes (weights
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ._util.checks import int_pair, positive_int
from ._util.modules import tensors_in
from ._util.runtime import eval_mode

__all__ = ["KINDS", "KIND_SOURCES", "OP_KINDS", "CostReport", "KindCost", "LayerCost", "LayerTrainingCost",
           "TrainingCostReport", "analyze", "analyze_training", "conv_kind", "conv_macs", "conv_output_size",
           "conv_params", "gradient_macs", "is_depthwise", "is_unit", "kind_from_ops", "layer_kind", "leaf_modules",
           "op_kind", "op_macs", "unit_hooks"]

KINDS = ("standard", "depthwise", "pointwise", "spatial", "grouped", "linear", "norm", "activation", "pool", "other")
# How a row's kind was decided: "type" (the module is an instance of a torch or sepconv class that says
# what it computes), "ops" (a module of any other class, by the aten ops it ran: aten.gelu -> activation),
# "none" (neither told: "other"). Rows not decided by "type" are the report's fallback rows.
KIND_SOURCES = ("type", "ops", "none")
# What an aten op does, for a functional op in a parent's forward and for a module of unknown type:
# the cost model's kinds where an op is one ("conv" stands for the conv kinds), then "view" (aliases its
# input, moves no data), "copy" (moves data: cat, clone, pad), "reduce" (mean, sum, amax), "elementwise"
# (add, mul, any other pointwise op) and "other".
OP_KINDS = ("conv", "linear", "norm", "activation", "pool", "view", "copy", "reduce", "elementwise", "other")

# A norm with children (timm's BatchNormAct2d: a BatchNorm2d that applies its ``act`` child in its own
# forward) is one unit, a norm: _NormBase covers BatchNorm*, SyncBatchNorm and InstanceNorm*.
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm, nn.CrossMapLRN2d,
          nn.RMSNorm)
# Every class of torch.nn.modules.activation but MultiheadAttention (linear projections and a matmul).
_ACTIVATIONS = tuple(cls for cls in (getattr(nn.modules.activation, name) for name in nn.modules.activation.__all__)
                     if isinstance(cls, type) and issubclass(cls, nn.Module) and cls is not nn.MultiheadAttention)
_POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
          nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._LPPoolNd, nn.FractionalMaxPool2d,
          nn.FractionalMaxPool3d)
# Instances of these are one row each even when they have children (a conv with a weight
# parametrization, a norm with its activation inside): their own forward computes.
_COMPUTE = (nn.modules.conv._ConvNd, nn.Linear, *_NORMS, *_ACTIVATIONS, *_POOLS)
# Classes from here say what they do; a class from elsewhere must subclass one to be known by type.
_KNOWN_PACKAGES = ("torch.", "sepconv.")


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
    """One call of one unit: a module without children, or a conv, linear, norm, activation or pool
    module with children (:func:`is_unit`).

    ``params`` counts the parameters this call is the first to use (so the rows of a report add up
    to its total, shared and re-used weights once); ``weight_bytes`` counts every parameter the call
    reads, at the report's element size. ``macs`` is 0 for everything that is not a convolution or
    a linear layer: norms, activations, pools and element-wise ops do no multiply-accumulates in
    the papers' sense (nor in FlopCounterMode), though they still move bytes.

    ``kind_source`` says how ``kind`` was decided (:data:`KIND_SOURCES`): "type", "ops" (``ops``
    then lists the aten ops the module ran, the evidence) or "none". ``inner`` names the types of
    the submodules a unit with children ran inside its call (a norm's fused activation: timm's
    ``BatchNormAct2d`` gives ``("SiLU",)``); their MACs and activation bytes are in the row.
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
    kind_source: str = "type"
    ops: tuple[str, ...] = ()
    inner: tuple[str, ...] = ()

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

    @property
    def fallback(self) -> bool:
        """True when the kind was not decided by the module's type (see :attr:`CostReport.fallback`)."""
        return self.kind_source != "type"

    def to_dict(self, classification: bool = False) -> dict[str, Any]:
        """The row as JSON; with ``classification``, also ``kind_source``, ``ops`` and ``inner``
        (the profile document's layer objects have the keys without them: ``SCHEMA["layers"]``)."""
        row = {
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
        if classification:
            row.update(kind_source=self.kind_source, ops=list(self.ops), inner=list(self.inner))
        return row

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerCost:
        """The row from :meth:`to_dict`'s output, with or without the classification keys."""
        values = {f.name: data.get(f.name, f.default) if f.name in ("kind_source", "ops", "inner") else data[f.name]
                  for f in fields(cls)}
        for key in ("input_shape", "output_shape", "ops", "inner"):
            values[key] = tuple(values[key])
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

    @property
    def fallback(self) -> list[LayerCost]:
        """The rows whose kind the module's type did not decide (``kind_source`` "ops" or "none"):
        a module of a class from outside torch and sepconv that subclasses no known one, such as
        timm's own ``GELU`` (by its ops: an activation) or a custom block with no children."""
        return [row for row in self.layers if row.fallback]

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
            "fallback": [layer.name for layer in self.fallback],
            "layers": [layer.to_dict(classification=True) for layer in self.layers],
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
        caption = "MACs = multiply-accumulates; FLOPs = 2 x MACs; intensity = FLOPs / byte"
        if self.fallback:
            caption += ("; * kind by fallback (the module's type does not say): by the ops it ran, else other")
        table = Table(title=f"cost of one forward pass, input {tuple(self.input_shape)}, {self.dtype}",
                      caption=caption)
        for header in ("layer", "type", "kind", "output", "params", "MACs", "bytes", "FLOPs/B"):
            table.add_column(header, justify="left" if header in ("layer", "type", "kind", "output") else "right")
        for row in self.layers:
            table.add_row(row.name, row.type, row.kind + ("*" if row.fallback else ""),
                          "x".join(map(str, row.output_shape)), f"{row.params:,}",
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
    """The kind a module's type gives it (see :func:`analyze`): a conv kind, "linear", "norm" (any
    norm class or subclass: BatchNorm, InstanceNorm, GroupNorm, LayerNorm and a LayerNorm over
    channels such as ConvNeXt's ``LayerNorm2d``, LocalResponseNorm, RMSNorm), "activation" (every
    class of ``torch.nn.modules.activation`` but MultiheadAttention, and subclasses), "pool", else
    "other". :func:`analyze` reads a module of unknown type by its ops (:func:`kind_from_ops`).

    Example::

        >>> layer_kind(nn.Conv2d(8, 8, 3, groups=8)), layer_kind(nn.GELU()), layer_kind(nn.Dropout())
        ('depthwise', 'activation', 'other')
    """
    return _type_kind(module) or "other"


def _type_kind(module: nn.Module) -> str | None:
    """The kind the type says, or None for a class from outside torch and sepconv that subclasses
    none of theirs (its kind must come from what it computes)."""
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
    known = any(cls.__module__.startswith(_KNOWN_PACKAGES) for cls in type(module).__mro__
                if cls not in (nn.Module, object))
    return "other" if known else None


def is_unit(module: nn.Module) -> bool:
    """Whether ``module`` is one row of the cost model and the profile: a module without children,
    or a conv, linear, norm, activation or pool module even with children (its own forward computes:
    timm's ``BatchNormAct2d`` normalizes, then runs its ``act`` child; a conv with a weight
    parametrization). ``nn.Identity`` placeholders are never a row.

    Example::

        >>> is_unit(nn.ReLU()), is_unit(nn.Sequential(nn.ReLU())), is_unit(nn.Identity())
        (True, False, False)
    """
    if isinstance(module, nn.Identity):
        return False
    return isinstance(module, _COMPUTE) or next(module.children(), None) is None


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every unit of ``model`` (:func:`is_unit`) outside another unit, in
    ``named_modules`` order: the rows of :func:`analyze` and of the profile. Names are qualified
    module names, ``"(model)"`` for a model that is itself a unit; a module reachable by two paths
    has its first name.

    Example::

        >>> [name for name, _ in leaf_modules(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(nn.ReLU())))]
        ['0', '1.0']
    """
    units: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()

    def walk(prefix: str, module: nn.Module) -> None:
        if id(module) in seen:
            return
        seen.add(id(module))
        if is_unit(module):
            units.append((prefix or "(model)", module))
            return
        for name, child in module.named_children():
            walk(f"{prefix}.{name}" if prefix else name, child)

    walk("", model)
    return units


UnitRecord = Callable[[str, nn.Module, tuple[Any, ...], dict[str, Any], Any], None]


@contextmanager
def unit_hooks(model: nn.Module, record: UnitRecord, *, before: bool = False,
               start: Callable[[str, nn.Module], None] | None = None) -> Iterator[None]:
    """Call ``record(name, module, args, kwargs, output)`` for every call of a unit
    (:func:`leaf_modules`) in the block: after it returns, or with ``before`` as it starts (output
    None). Names are :func:`leaf_modules`' with ``name#2``, ``name#3`` ... for a unit called again;
    a unit called while another runs is part of that one, not a row. ``start(name, module)`` is
    called as each recorded call begins. :func:`analyze` and :func:`sepconv.profile.layers.record_calls`
    both name their rows here, so the names agree.
    """
    names = {module: name for name, module in leaf_modules(model)}
    calls: Counter[nn.Module] = Counter()
    running: list[str | None] = []  # the names of the unit calls in progress; None: nested in another

    def pre(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if running:
            running.append(None)
            return
        calls[module] += 1
        name = names[module] + (f"#{calls[module]}" if calls[module] > 1 else "")
        running.append(name)
        if start is not None:
            start(name, module)
        if before:
            record(name, module, args, kwargs, None)

    def post(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        name = running.pop() if running else None
        if name is not None and not before:
            record(name, module, args, kwargs, output)

    handles = []
    try:
        for module in names:
            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(module.register_forward_hook(post, with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def is_depthwise(module: nn.Module) -> bool:
    """A convolution with one group per input channel and more than one channel (MobileNets §3.1);
    with a depth multiplier the groups still equal the input channels. The one definition that the
    cost model, the optimizer's weight-decay groups, the health report and separation share."""
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups == module.in_channels > 1


def conv_kind(conv: nn.modules.conv._ConvNd) -> str:
    """The kind the cost model gives a convolution: "depthwise", "grouped", "pointwise",
    "spatial" (k x 1 or 1 x k) or "standard"."""
    return _conv_kind(tuple(conv.kernel_size), conv.groups, conv.in_channels)


def _conv_kind(kernel: tuple[int, ...], groups: int, in_channels: int) -> str:
    if groups == in_channels > 1:  # is_depthwise
        return "depthwise"
    if groups > 1:
        return "grouped"
    if all(k == 1 for k in kernel):
        return "pointwise"
    if len(kernel) == 2 and min(kernel) == 1:
        return "spatial"
    return "standard"


# Aten ops by what they compute (names without the in-place "_"), both as a dispatch mode sees them
# under torch.no_grad (composites decomposed: convolution, addmm, native_layer_norm) and under
# torch.inference_mode (composites whole: conv2d, linear, layer_norm).
_OPS_BY_KIND = {
    "conv": {"convolution", "_convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
             "conv_transpose3d", "mkldnn_convolution"},
    "linear": {"linear", "mm", "addmm", "bmm", "baddbmm", "matmul", "mv", "addmv", "dot", "einsum", "bilinear",
               "_addmm_activation", "scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
               "_scaled_dot_product_attention_math"},
    "norm": {"batch_norm", "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
             "_batch_norm_impl_index", "_batch_norm_with_update", "_batch_norm_no_update", "layer_norm",
             "native_layer_norm", "group_norm", "native_group_norm", "instance_norm", "rms_norm", "_fused_rms_norm",
             "local_response_norm"},
    "pool": {"max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
             "max_pool3d_with_indices", "mkldnn_max_pool2d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
             "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "_adaptive_avg_pool2d",
             "_adaptive_avg_pool3d", "mkldnn_adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
             "adaptive_max_pool3d", "fractional_max_pool2d", "fractional_max_pool3d", "lp_pool2d"},
    "activation": {"relu", "relu6", "gelu", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "elu", "celu",
                   "selu", "leaky_relu", "prelu", "_prelu_kernel", "rrelu", "rrelu_with_noise", "mish", "softplus",
                   "hardtanh", "clamp", "clamp_min", "clamp_max", "threshold", "log_sigmoid", "log_sigmoid_forward",
                   "softmax", "_softmax", "log_softmax", "_log_softmax", "glu", "hardshrink", "softshrink",
                   "tanhshrink", "softsign", "logsigmoid"},
    "view": {"_unsafe_view", "alias", "detach", "lift_fresh"},  # alias their input without a view schema
    "copy": {"cat", "stack", "clone", "_to_copy", "copy", "constant_pad_nd", "pad", "reflection_pad1d",
             "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d", "replication_pad3d",
             "index_select", "gather", "flip", "roll", "repeat", "tile", "pixel_shuffle", "pixel_unshuffle",
             "channel_shuffle", "native_channel_shuffle", "upsample_nearest1d", "upsample_nearest2d",
             "upsample_nearest3d", "upsample_bilinear2d", "upsample_bicubic2d", "upsample_linear1d",
             "upsample_trilinear3d", "_upsample_nearest_exact2d", "interpolate", "index", "_unsafe_index",
             "masked_select", "contiguous", "reshape", "flatten", "unflatten"},
    "reduce": {"mean", "sum", "amax", "amin", "max", "min", "var", "std", "var_mean", "std_mean", "norm",
               "linalg_vector_norm", "prod", "logsumexp", "argmax", "argmin", "any", "all"},
}


def op_kind(func: Any, args: Sequence[Any] = (), output: Any = None) -> str:
    """What the aten op ``func`` (an ``OpOverload``, as a ``TorchDispatchMode`` sees it) computes,
    one of :data:`OP_KINDS`. An op that may alias or copy (``reshape``, ``contiguous``,
    ``flatten``) is "view" when its ``output`` shares storage with a tensor of ``args``, else "copy".

    Example::

        >>> aten = torch.ops.aten
        >>> op_kind(aten.gelu.default), op_kind(aten.add.Tensor), op_kind(aten.cat.default)
        ('activation', 'elementwise', 'copy')
    """
    name = _op_name(func)
    for kind in ("conv", "linear", "norm", "pool", "activation"):
        if name in _OPS_BY_KIND[kind]:
            return kind
    if getattr(func, "is_view", False) or name in _OPS_BY_KIND["view"] or name in ("contiguous", "reshape",
                                                                                   "flatten", "unflatten"):
        if output is None or _aliases(args, output):
            return "view"
        return "copy"
    tags = getattr(func, "tags", ())
    if torch.Tag.inplace_view in tags:
        return "view"
    if name in _OPS_BY_KIND["reduce"] or torch.Tag.reduction in tags:
        return "reduce"
    if torch.Tag.pointwise in tags:
        return "elementwise"
    if name in _OPS_BY_KIND["copy"]:
        return "copy"
    return "other"


def _op_name(func: Any) -> str:
    """``aten.relu_.default`` -> ``"relu"``: the op's name without an in-place ``_`` suffix."""
    packet = getattr(func, "overloadpacket", func)
    name = getattr(packet, "__name__", str(packet))
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def _aliases(args: Sequence[Any], output: Any) -> bool:
    """Whether every tensor of ``output`` shares storage with a tensor of ``args``."""
    def storage(t: torch.Tensor) -> int | None:
        try:
            return t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):  # an opaque tensor: no storage to compare
            return None

    inputs = {storage(t) for t in tensors_in(list(args))} - {None}
    outputs = [storage(t) for t in tensors_in(output)]
    return bool(outputs) and all(ptr is not None and ptr in inputs for ptr in outputs)


def op_macs(func: Any, args: Sequence[Any], output: Any) -> int:
    """The multiply-accumulates of one aten op: a convolution's ``output x in/groups x kh x kw``
    (a transposed one's ``input x out/groups x kh x kw``), a matrix product's ``output x K`` (the
    contracted size: ``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``matmul``, ``linear``); 0 for any
    other op. Used for a module of unknown type that convolves or multiplies by itself.

    Example::

        >>> a, b = torch.ones(2, 3), torch.ones(3, 4)
        >>> op_macs(torch.ops.aten.mm.default, (a, b), a @ b)
        24
    """
    name = _op_name(func)
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    out = next(iter(tensors_in(output)), None)
    if out is None or not tensors:
        return 0
    if name in _OPS_BY_KIND["conv"] and len(tensors) >= 2:
        x, weight = tensors[0], tensors[1]
        transposed, _ = _conv_op(name, args)
        return (x if transposed else out).numel() * weight.shape[1] * math.prod(weight.shape[2:])
    if name in ("mm", "bmm", "matmul", "linear", "mv", "dot"):
        return out.numel() * tensors[0].shape[-1]
    if name in ("addmm", "baddbmm", "_addmm_activation") and len(tensors) >= 2:
        return out.numel() * tensors[1].shape[-1]
    return 0


def _conv_op(name: str, args: Sequence[Any]) -> tuple[bool, int]:
    """``(transposed, groups)`` of a convolution op's positional arguments (torch's defaults where
    they are left out): ``convolution(x, w, b, stride, padding, dilation, transposed, output_padding,
    groups)``, ``convNd(x, w, b, stride, padding, dilation, groups)``, ``conv_transposeNd(x, w, b,
    stride, padding, output_padding, groups, dilation)``."""
    def arg(i: int, default: Any) -> Any:
        return args[i] if len(args) > i else default

    if name in ("convolution", "_convolution"):
        return bool(arg(6, False)), int(arg(8, 1))
    if name.startswith("conv_transpose"):
        return True, int(arg(6, 1))
    return False, int(arg(6, 1))


def kind_from_ops(ops: Sequence[tuple[Any, Sequence[Any], Any]], input_shape: tuple[int, ...] = (),
                  output_shape: tuple[int, ...] = ()) -> tuple[str, str]:
    """``(kind, kind_source)`` of a module of unknown type from the aten ops it ran, each
    ``(func, args, output)``, in this order: a convolution gives the kind of its largest one (by
    MACs), a matrix product "linear", a norm op "norm", a pool "pool", an activation op
    "activation"; a reduction divided through with the output the input's shape (``(x - mean) /
    sqrt(var)`` written out) "norm". Source "ops" for those; "other" with source "none" when the
    ops say none of them (data movement, arithmetic, nothing at all).

    Example::

        >>> x = torch.randn(4)
        >>> kind_from_ops([(torch.ops.aten.gelu.default, (x,), x)])
        ('activation', 'ops')
    """
    kinds = [op_kind(func, args, out) for func, args, out in ops]
    convs = [(op_macs(func, args, out), func, args) for (func, args, out), kind in zip(ops, kinds) if kind == "conv"]
    if convs:
        _, func, args = max(convs, key=lambda c: c[0])
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        transposed, groups = _conv_op(_op_name(func), args)
        weight = tensors[1] if len(tensors) > 1 else None
        if weight is None or weight.dim() < 3:
            return "standard", "ops"
        in_channels = weight.shape[0] if transposed else weight.shape[1] * groups
        return _conv_kind(tuple(weight.shape[2:]), groups, in_channels), "ops"
    for kind in ("linear", "norm", "pool", "activation"):
        if kind in kinds:
            return kind, "ops"
    names = {_op_name(func) for func, _, _ in ops}
    if "reduce" in kinds and names & {"sqrt", "rsqrt", "div", "reciprocal"} and input_shape \
            and tuple(input_shape) == tuple(output_shape):
        return "norm", "ops"
    return "other", "none"


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

    Works on any ``nn.Module``: forward hooks on its units record each call's shapes, in eval mode
    under ``torch.no_grad`` on a seeded random input (each module's training flag is restored
    afterwards). A unit (:func:`is_unit`) is a module without children, or a conv, linear, norm,
    activation or pool module with children: timm's ``BatchNormAct2d`` (a BatchNorm2d running its
    ``act`` child in its own forward) is one "norm" row whose MACs and bytes include what its
    children do (``inner`` names them). A unit called twice gives two rows, ``name`` and
    ``name#2``; ``nn.Identity`` placeholders (an absent norm or activation) get none.
    ``input_shape`` is a tuple such as ``(1, 3, 224, 224)`` or a tensor to run on.

    Per row: ``kind`` is "depthwise" (``groups == in_channels > 1``), "grouped" (other
    ``groups > 1``), "pointwise" (1x1), "spatial" (``k x 1`` or ``1 x k``), "standard" (any other
    conv), "linear", "norm", "activation", "pool" or "other", from the module's type
    (:func:`layer_kind`); a module whose class neither torch nor sepconv defines nor subclasses
    (timm's own ``GELU``) is read by the aten ops it ran (:func:`kind_from_ops`, recorded by a
    ``TorchDispatchMode`` only when such a module exists), and ``kind_source`` says which
    (:attr:`CostReport.fallback` lists those rows). ``macs`` is ``output.numel() * in_channels /
    groups * kh * kw`` for a conv (:func:`conv_macs`: batch, stride, dilation and padding enter
    through the output shape), ``output.numel() * in_features`` for a linear layer, the
    convolutions' and matrix products' for a module of unknown type (:func:`op_macs`), and 0 for
    every other layer. Bytes are counted at ``dtype``'s element size (the model itself runs in its
    own dtype): weights ``params x size``, activations read ``input.numel() x size``, written
    ``output.numel() x size``; a layer that returns its input or a view of it (``nn.Dropout`` in
    eval, ``nn.Flatten``) moves no activations.

    The MAC total equals ``FlopCounterMode``'s count / 2 for models whose multiplications all
    happen in units (every model in :mod:`sepconv.models`); a matmul written in a parent's
    ``forward`` (attention) is no unit's and is not counted here (the profile times it as a
    functional op, :mod:`sepconv.profile.functional`).

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
    units = leaf_modules(model)
    unknown = {module for _, module in units if _type_kind(module) is None}
    ops = _OpLog() if unknown else None
    inner: list[tuple[nn.Module, list[torch.Tensor], list[torch.Tensor]]] = []  # leaf calls inside a unit

    def start(name: str, module: nn.Module) -> None:
        inner.clear()
        if ops is not None:
            ops.log = [] if module in unknown else None

    def record_inner(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        inner.append((module, list(tensors_in(args)), list(tensors_in(output))))

    def record(name: str, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        inputs, outputs = list(tensors_in((args, kwargs))), list(tensors_in(output))
        params = list(module.parameters())
        new_params = [p for p in params if id(p) not in seen_params]
        seen_params.update(id(p) for p in new_params)
        moved = not _moves_nothing(module, inputs, outputs)
        input_shape = tuple(inputs[0].shape) if inputs else ()
        output_shape = tuple(outputs[0].shape) if outputs else ()
        kind, source, evidence = _type_kind(module), "type", ()
        macs = _layer_macs(module, inputs, outputs[0]) if outputs and kind is not None else 0
        if kind is None:
            ran = ops.log if ops is not None and ops.log is not None else []
            kind, source = kind_from_ops(ran, input_shape, output_shape)
            macs = sum(op_macs(func, op_args, out) for func, op_args, out in ran)
            evidence = tuple(dict.fromkeys(_op_name(func) for func, _, _ in ran))
            ops.log = None
        read = sum(t.numel() for t in inputs) * moved
        written = sum(t.numel() for t in outputs) * moved
        for sub, sub_in, sub_out in inner:  # what a unit's children do inside it: a norm's fused activation
            macs += _layer_macs(sub, sub_in, sub_out[0]) if sub_out else 0
            if not _moves_nothing(sub, sub_in, sub_out):
                read += sum(t.numel() for t in sub_in)
                written += sum(t.numel() for t in sub_out)
        rows.append(LayerCost(
            name=name,
            type=type(module).__name__,
            kind=kind,
            input_shape=input_shape,
            output_shape=output_shape,
            params=sum(p.numel() for p in new_params),
            macs=macs,
            weight_bytes=sum(p.numel() for p in params) * element_bytes,
            act_bytes_read=read * element_bytes,
            act_bytes_written=written * element_bytes,
            kind_source=source,
            ops=evidence,
            inner=tuple(dict.fromkeys(type(sub).__name__ for sub, _, _ in inner)),
        ))
        inner.clear()

    children = [sub for _, unit in units for sub in unit.modules()
                if sub is not unit and next(sub.children(), None) is None and not isinstance(sub, nn.Identity)]
    with eval_mode(model), torch.no_grad(), ExitStack() as stack:
        for sub in children:
            stack.callback(sub.register_forward_hook(record_inner).remove)
        if ops is not None:
            stack.enter_context(ops)
        _run_units(model, x, record, start)
    return CostReport(
        input_shape=tuple(x.shape),
        params=sum(p.numel() for p in model.parameters()),
        macs=sum(row.macs for row in rows),
        dtype=str(dtype).removeprefix("torch."),
        element_bytes=element_bytes,
        layers=rows,
    )


class _OpLog(TorchDispatchMode):
    """Appends ``(func, args, output)`` of every aten op to ``log`` while it is a list."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[Any, tuple[Any, ...], Any]] | None = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        if self.log is not None:
            self.log.append((func, tuple(args), out))
        return out


def _run_units(model: nn.Module, x: torch.Tensor, record: UnitRecord,
               start: Callable[[str, nn.Module], None] | None = None) -> None:
    """``model(x)`` once with :func:`unit_hooks`; a model that cannot run on ``x`` is a ValueError."""
    try:
        with unit_hooks(model, record, start=start):
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

    def record(name: str, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        first = next(iter(tensors_in((args, kwargs))), None)
        weight = getattr(module, "weight", None)
        passes.append((first is not None and first.requires_grad,
                       isinstance(weight, torch.Tensor) and weight.requires_grad))

    with eval_mode(model), torch.enable_grad():
        _run_units(model, x, record)
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
