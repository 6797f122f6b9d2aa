"""Caffe's convolution algorithm, reproduced: per image im2col, then one GEMM per group.

**A reproduction of a historical algorithm, to explain old reports — not a recommended path.**
PyTorch's own kernels (``native``: oneDNN / cuDNN, which have direct depthwise kernels) are what
to train and run with. This module exists so that a user can see, on their own machine, why
depthwise-separable networks trained so slowly in BVLC Caffe:

- shicai/MobileNet-Caffe#8 (2017): training Faster R-CNN with a MobileNet in Caffe on a GTX 1080
  took about 90 s per 20 iterations against 17 s with a ResNet;
- pytorch/pytorch#18631 ("Depthwise convolution is slow in GPU"): a comment there profiles
  MobileNet-V1/V2 in Caffe with nvprof and finds about 90% of the time in cuBLAS's GEMV kernels
  (~60% ``Gemv2T``, ~30% ``Gemv2N``).

Caffe's ``BaseConvolutionLayer`` (``forward_cpu_gemm``, ``weight_cpu_gemm``,
``backward_cpu_gemm``, ``forward_cpu_bias``, ``backward_cpu_bias``) loops over the images of a
batch. For each image it unrolls the input into columns (im2col: ``C*kh*kw`` rows, one column per
output pixel; skipped for a 1x1 stride-1 unpadded conv, whose input already is the column matrix)
and then calls one GEMM per group: the group's ``(O/g, C/g*kh*kw)`` weight times the group's
column block. The backward does the same per image and per group: a weight-gradient GEMM
accumulated over the batch (im2col recomputed), an input-gradient GEMM into columns folded back by
col2im, and the bias as GEMV/rank-1 GEMM calls. A depthwise conv has ``g = C`` groups of one
output each, so its forward makes ``N*C`` calls of shape ``(1, k^2) x (k^2, H'W')``: GEMV-shaped
work whose every call reads its operands once and does two FLOPs per element, and pays a call's
overhead for ``k^2 H'W'`` MACs. Here each call is a ``torch.mm`` (the per-call cost includes
Python's, which Caffe's C++ loop did not have; the *number* of calls is Caffe's).

:func:`use_impl` returns a copy of a model whose every ``nn.Conv2d`` runs the chosen
implementation (:data:`IMPLS`); :func:`count_calls` records the GEMM/GEMV calls the im2col convs
make, with their shapes. Eager mode only (the loops are Python loops over the batch).

Example::

    >>> conv = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)  # depthwise, 8 channels
    >>> caffe, x = use_impl(conv, "im2col"), torch.randn(2, 8, 16, 16)
    >>> with count_calls() as log:
    ...     y = caffe(x)
    >>> log.count("forward"), log.gemv_shaped("forward")  # N*C calls, each (1 x 9) @ (9 x 256)
    (16, 16)
    >>> torch.allclose(y, conv(x), atol=1e-5)
    True
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .._util.checks import ArgumentError
from ..layers.padding import tf_same_pad

__all__ = ["IMPLS", "BlasCall", "CallLog", "Im2colConv2d", "count_calls", "im2col_conv2d", "parse_impls",
           "use_impl"]

IMPLS: tuple[str, ...] = ("native", "im2col")
"""``native``: PyTorch's own convolution kernels. ``im2col``: Caffe's historical algorithm, reproduced."""


# --------------------------------------------------------------------------------------------- calls

@dataclass(frozen=True)
class BlasCall:
    """One matrix call ``C (m x n) = A (m x k) @ B (k x n)`` (a GEMV is a call with m or n equal to 1).

    ``phase`` is "forward" or "backward"; ``role`` what it computes: "conv" (a group's output),
    "bias" (Caffe's rank-1 bias GEMM), "weight_grad", "input_grad" or "bias_grad" (a GEMV).
    """

    phase: str
    role: str
    m: int
    n: int
    k: int

    @property
    def gemv_shaped(self) -> bool:
        """A matrix-vector product: memory-bound, two FLOPs per element of the matrix it reads."""
        return self.m == 1 or self.n == 1

    @property
    def rank1(self) -> bool:
        """An outer product (k = 1): writes ``m*n`` elements for ``m*n`` MACs."""
        return self.k == 1


@dataclass(eq=False)  # a log is one block's record: compared (and removed) by identity
class CallLog:
    """The calls recorded inside :func:`count_calls`, and their counts per phase."""

    calls: list[BlasCall] = field(default_factory=list)

    def _of(self, phase: str | None) -> list[BlasCall]:
        return [c for c in self.calls if phase is None or c.phase == phase]

    def count(self, phase: str | None = None) -> int:
        """How many calls (of ``phase``, or all)."""
        return len(self._of(phase))

    def gemv_shaped(self, phase: str | None = None) -> int:
        """How many of them are GEMV-shaped (m or n = 1)."""
        return sum(c.gemv_shaped for c in self._of(phase))

    def summary(self, phase: str | None = None) -> dict[str, Any]:
        """``calls``, ``gemv_shaped``, ``rank1`` and ``shapes`` (one entry per distinct role and shape
        with its ``count``), for JSON."""
        calls = self._of(phase)
        shapes = Counter((c.role, c.m, c.n, c.k) for c in calls)
        return {"calls": len(calls), "gemv_shaped": sum(c.gemv_shaped for c in calls),
                "rank1": sum(c.rank1 for c in calls),
                "shapes": [{"role": role, "m": m, "n": n, "k": k, "count": count}
                           for (role, m, n, k), count in shapes.items()]}


_ACTIVE: list[CallLog] = []  # the logs of the count_calls blocks now open (innermost last)


@contextmanager
def count_calls() -> Iterator[CallLog]:
    """Record every GEMM/GEMV call :func:`im2col_conv2d` makes inside the block (forward and backward).

    Blocks nest (each records what runs inside it); the record is process-wide, so calls made by
    other threads meanwhile are recorded too. Outside any block nothing is recorded.

    Example::

        >>> with count_calls() as log:
        ...     _ = im2col_conv2d(torch.randn(3, 4, 8, 8), torch.randn(6, 2, 3, 3), groups=2)
        >>> log.count(), log.calls[0]  # 3 images x 2 groups
        (6, BlasCall(phase='forward', role='conv', m=3, n=36, k=18))
    """
    log = CallLog()
    _ACTIVE.append(log)
    try:
        yield log
    finally:
        _ACTIVE.remove(log)


def _record(phase: str, role: str, m: int, n: int, k: int) -> None:
    if _ACTIVE:
        call = BlasCall(phase, role, m, n, k)
        for log in _ACTIVE:
            log.calls.append(call)


# ----------------------------------------------------------------------------------------- algorithm

@dataclass(frozen=True)
class _Geometry:
    """A conv's kernel, stride, symmetric zero padding, dilation and groups: im2col and col2im."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    @property
    def is_1x1(self) -> bool:
        """Caffe's ``is_1x1_``: the input itself is the column matrix, no im2col."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1  # type: ignore[return-value]
                     for n, k, s, p, d in zip((h, w), self.kernel, self.stride, self.padding, self.dilation))

    def im2col(self, image: torch.Tensor) -> torch.Tensor:
        """(C, H, W) -> (C*kh*kw, H'*W'), rows channel-major as the weight's (C/g, kh, kw) flatten."""
        if self.is_1x1:
            return image.reshape(image.shape[0], -1)
        return F.unfold(image[None], self.kernel, self.dilation, self.padding, self.stride)[0]

    def col2im(self, columns: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(C*kh*kw, H'*W') -> (C, H, W), overlapping patches summed: im2col's adjoint."""
        if self.is_1x1:
            return columns.reshape(-1, *size)
        return F.fold(columns[None], size, self.kernel, self.dilation, self.padding, self.stride)[0]


def _forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, geo: _Geometry) -> torch.Tensor:
    """Caffe's ``forward_cpu_gemm`` (+ ``forward_cpu_bias``) for every image of the batch."""
    n, _, h, w = x.shape
    o, g = weight.shape[0], geo.groups
    oh, ow = geo.out_size(h, w)
    weights = weight.reshape(g, o // g, -1)  # (g, O/g, C/g*kh*kw)
    out = x.new_empty(n, g, o // g, oh * ow)
    ones = None if bias is None else x.new_ones(1, oh * ow)
    for i in range(n):
        columns = geo.im2col(x[i]).reshape(g, -1, oh * ow)  # (g, C/g*kh*kw, H'W')
        for j in range(g):
            torch.mm(weights[j], columns[j], out=out[i, j])
            _record("forward", "conv", o // g, oh * ow, columns.shape[1])
        if bias is not None:  # Caffe adds the bias as a rank-1 GEMM: bias (O x 1) @ ones (1 x H'W')
            out[i].view(o, -1).addmm_(bias.view(o, 1), ones)
            _record("forward", "bias", o, oh * ow, 1)
    return out.view(n, o, oh, ow)


def _backward(x: torch.Tensor, weight: torch.Tensor, grad_out: torch.Tensor, geo: _Geometry,
              needs: tuple[bool, bool, bool]) -> tuple[torch.Tensor | None, ...]:
    """Caffe's ``backward_cpu_bias``, then per image ``weight_cpu_gemm`` and ``backward_cpu_gemm``."""
    n, _, h, w = x.shape
    o, g = weight.shape[0], geo.groups
    need_x, need_w, need_b = needs
    length = grad_out.shape[2] * grad_out.shape[3]
    grads = grad_out.contiguous().view(n, g, o // g, length)
    weights = weight.reshape(g, o // g, -1)
    k = weights.shape[2]
    grad_b = x.new_zeros(o) if need_b else None
    grad_w = x.new_zeros(g, o // g, k) if need_w else None
    grad_x = x.new_empty(x.shape) if need_x else None
    if grad_b is not None:
        ones = x.new_ones(length)
        for i in range(n):
            grad_b.addmv_(grads[i].view(o, length), ones)
            _record("backward", "bias_grad", o, 1, length)
    columns_grad = x.new_empty(g, k, length) if need_x else None
    for i in range(n):
        if grad_w is not None:  # Caffe recomputes the columns rather than keeping the batch's
            columns = geo.im2col(x[i]).reshape(g, k, length)
            for j in range(g):
                grad_w[j].addmm_(grads[i, j], columns[j].t())
                _record("backward", "weight_grad", o // g, k, length)
        if grad_x is not None:
            for j in range(g):
                torch.mm(weights[j].t(), grads[i, j], out=columns_grad[j])
                _record("backward", "input_grad", k, length, o // g)
            grad_x[i] = geo.col2im(columns_grad.view(g * k, length), (h, w))
    return grad_x, None if grad_w is None else grad_w.view_as(weight), grad_b


class _Im2colConv(torch.autograd.Function):
    """The forward and backward above as one autograd node (inputs: x, weight, bias, geometry)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                geo: _Geometry) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.geo, ctx.has_bias = geo, bias is not None
        return _forward(x, weight, bias, geo)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x, grad_w, grad_b = _backward(x, weight, grad_out, ctx.geo, (need_x, need_w, need_b and ctx.has_bias))
        return grad_x, grad_w, grad_b, None


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def im2col_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                  dilation: int | Sequence[int] = 1, groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` (symmetric zero padding given as ints) computed as Caffe computed it, with autograd.

    A reproduction of the historical algorithm (see the module docstring), not a fast path.

    Example::

        >>> x, w = torch.randn(2, 4, 9, 9), torch.randn(8, 2, 3, 3)
        >>> torch.allclose(im2col_conv2d(x, w, stride=2, padding=1, groups=2),
        ...                F.conv2d(x, w, stride=2, padding=1, groups=2), atol=1e-5)
        True
    """
    if x.dim() != 4:
        raise ValueError(f"im2col_conv2d: input must be 4-D (B, C, H, W), got shape {tuple(x.shape)}")
    if groups < 1 or x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ValueError(f"im2col_conv2d: weight {tuple(weight.shape)} with groups={groups} does not fit "
                         f"an input of {x.shape[1]} channels")
    geo = _Geometry(tuple(weight.shape[2:]), _pair(stride), _pair(padding), _pair(dilation), groups)
    return _Im2colConv.apply(x, weight, bias, geo)


# ------------------------------------------------------------------------------------------- modules

class Im2colConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` that runs :func:`im2col_conv2d`: Caffe's algorithm, reproduced (not a fast path).

    Built from an existing conv, it holds *the same* weight and bias Parameters (state-dict keys
    and cost-model kind unchanged: it is still an ``nn.Conv2d``) and computes what the conv
    computes: stride, dilation, groups, integer padding, torch's ``"same"``/``"valid"``,
    ``padding_mode``, and sepconv's ``"tf_same"`` (the conv's ``tf_same`` flag). Asymmetric or
    non-zero padding is applied with ``F.pad`` first; Caffe pads symmetrically with zeros only.

    Example::

        >>> conv = nn.Conv2d(4, 8, 3, padding="same", bias=True)
        >>> caffe = Im2colConv2d(conv)
        >>> caffe.weight is conv.weight, torch.allclose(caffe(x := torch.randn(2, 4, 7, 7)), conv(x), atol=1e-5)
        (True, True)
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv={type(conv).__name__} must be an nn.Conv2d")
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         conv.dilation, conv.groups, bias=conv.bias is not None, padding_mode=conv.padding_mode,
                         device="meta")  # no weights allocated: the conv's own Parameters replace them
        self.weight = conv.weight
        self.bias = conv.bias
        self.tf_same = bool(getattr(conv, "tf_same", False))
        self.train(conv.training)

    def _padded(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """``x`` with any padding Caffe's symmetric zero padding cannot express applied, and the rest."""
        if self.tf_same:
            return tf_same_pad(x, self.kernel_size, self.stride, self.dilation), (0, 0)
        if isinstance(self.padding, str) or self.padding_mode != "zeros":
            # nn.Conv2d's own (left, right, top, bottom) amounts for "same"/"valid" and non-zero modes
            left, right, top, bottom = self._reversed_padding_repeated_twice
            if self.padding_mode == "zeros" and left == right and top == bottom:
                return x, (top, left)
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            return F.pad(x, (left, right, top, bottom), mode=mode), (0, 0)
        return x, self.padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, padding = self._padded(x)  # (B, in, H, W)
        return im2col_conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", padding=tf_same" if self.tf_same else "") + ", impl=im2col"


def parse_impls(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"native,im2col"`` (or a sequence of names) -> ``("native", "im2col")``, duplicates dropped.

    An unknown name raises :class:`~sepconv._util.checks.ArgumentError` for ``impl``, naming the
    value and the available implementations.

    Example::

        >>> parse_impls("native, im2col"), parse_impls(["im2col"])
        (('native', 'im2col'), ('im2col',))
    """
    if not isinstance(value, (str, list, tuple)):
        raise ArgumentError("impl", f"impl={value!r} must be a comma-separated string or a list of names "
                                    f"from {', '.join(IMPLS)}")
    names = value.split(",") if isinstance(value, str) else list(value)
    impls = tuple(dict.fromkeys(str(name).strip() for name in names))
    unknown = [name for name in impls if name not in IMPLS]
    if unknown or not impls:
        raise ArgumentError("impl", f"impl={value!r} is not a list of convolution implementations "
                                    f"(unknown: {', '.join(map(repr, unknown)) or 'none given'}); "
                                    f"available: {', '.join(IMPLS)}")
    return impls


def use_impl(model: nn.Module, impl: str) -> nn.Module:
    """A deep copy of ``model`` whose every ``nn.Conv2d`` runs implementation ``impl`` (:data:`IMPLS`).

    ``"native"`` returns an unchanged copy; ``"im2col"`` replaces each conv with an
    :class:`Im2colConv2d` holding the copy's Parameters — Caffe's historical algorithm, reproduced
    to explain old reports, not a recommended path. Same outputs and gradients (to rounding);
    eager mode only.

    Example::

        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8))
        >>> [type(m).__name__ for m in use_impl(net, "im2col")]
        ['Im2colConv2d', 'ReLU', 'Im2colConv2d']
    """
    if not isinstance(impl, str) or impl not in IMPLS:
        raise ArgumentError("impl", f"impl={impl!r} must be one of {', '.join(IMPLS)}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model={type(model).__name__} must be an nn.Module")
    model = copy.deepcopy(model)
    if impl == "native":
        if any(isinstance(m, Im2colConv2d) for m in model.modules()):
            raise ArgumentError("model", "model already runs im2col convs; use_impl(..., 'native') needs "
                                         "the model as it was before use_impl(..., 'im2col')")
        return model
    if isinstance(model, nn.Conv2d):
        return model if isinstance(model, Im2colConv2d) else Im2colConv2d(model)
    replaced: dict[int, Im2colConv2d] = {}  # a conv shared by two parents stays shared
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d) and not isinstance(child, Im2colConv2d):
                if id(child) not in replaced:
                    replaced[id(child)] = Im2colConv2d(child)
                setattr(parent, name, replaced[id(child)])
    return model
