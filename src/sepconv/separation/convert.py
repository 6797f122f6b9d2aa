"""One ``nn.Conv2d`` in, its separable replacement out: eligibility, valid ranges, module building.

Replacements are the operators of :mod:`sepconv.layers` (``SeparableConv2d``,
``SpatiallySeparableConv2d``, ``GroupedConv2d`` inside :class:`PermutedGroupedConv2d`), so the
cost model and the profiler classify them like any hand-written separable layer. Each keeps the
original's stride, dilation and padding (including TensorFlow "tf_same" and non-zero padding
modes): the depthwise conv gets all of them, the spatial pair splits them by dimension, and the
original bias goes to the last conv.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..cost import is_depthwise
from ..formats.plan import build
from .factor import depthwise_factors, depthwise_rank_limit, grouped_factors, spatial_factors, spatial_rank_limit

SETTING = {"depthwise": "depth_multiplier", "spatial": "rank", "grouped": "groups"}


def describe(conv: nn.Conv2d) -> str:
    """``"3x3 64->128 s2"``: the conv at a glance, for reports and error messages."""
    kh, kw = conv.kernel_size
    text = f"{kh}x{kw} {conv.in_channels}->{conv.out_channels}"
    if conv.stride != (1, 1):
        text += f" s{conv.stride[0]}" if conv.stride[0] == conv.stride[1] else f" s{conv.stride}"
    if conv.dilation != (1, 1):
        text += f" d{conv.dilation[0]}" if conv.dilation[0] == conv.dilation[1] else f" d{conv.dilation}"
    if conv.groups > 1:
        text += f" g{conv.groups}"
    return text


def skip_reason(conv: nn.Conv2d, to: str, groups: int | None = None) -> str | None:
    """Why ``conv`` cannot be turned into the ``to`` form, or ``None`` when it can."""
    kh, kw = conv.kernel_size
    if is_depthwise(conv):
        return f"already depthwise (groups = in_channels = {conv.groups})"
    if conv.groups > 1:
        return f"already grouped (groups={conv.groups}); only standard convs (groups=1) are separated"
    if to != "grouped" and (kh, kw) == (1, 1):
        return "1x1 (pointwise): no spatial extent to separate"
    if to == "spatial" and 1 in (kh, kw):
        return f"{kh}x{kw} is already one-dimensional"
    if to == "spatial" and (kh != kw or conv.stride[0] != conv.stride[1] or conv.dilation[0] != conv.dilation[1]):
        return (f"kernel {kh}x{kw}, stride {conv.stride}, dilation {conv.dilation}: the spatial form needs a "
                "square kernel with equal stride and dilation in both dimensions")
    if to == "grouped" and groups is not None and (conv.in_channels % groups or conv.out_channels % groups):
        return f"groups={groups} does not divide in_channels={conv.in_channels} and out_channels={conv.out_channels}"
    return None


def valid_range(conv: nn.Conv2d, to: str) -> tuple[int, str]:
    """The largest valid setting for ``conv`` and the rule that gives it (the smallest is 1)."""
    n, m, kh, kw = conv.weight.shape
    if to == "depthwise":
        return depthwise_rank_limit(conv.weight), f"min(out_channels={n}, kh*kw={kh * kw})"
    if to == "spatial":
        return spatial_rank_limit(conv.weight), f"min(in_channels*k={m * kh}, out_channels*k={n * kw})"
    raise ValueError(f"to={to!r} has no rank range")


def default_rank(conv: nn.Conv2d) -> int:
    """``rank=None`` for the spatial form: ``out_channels`` (Inception-v3's ``mid = out``), capped
    at the rank where the factorisation is already exact."""
    return min(conv.out_channels, valid_range(conv, "spatial")[0])


@dataclass(frozen=True)
class Conversion:
    """A replacement module with its weights and the kept fraction of the kernel."""

    module: nn.Module
    weight_error: float  # ||W - W_hat||_F / ||W||_F
    note: str = ""


# to -> (factorisation, (replacement conv, factor field) pairs; the last conv takes the bias)
_FACTORS = {
    "depthwise": (depthwise_factors, (("dw", "dw"), ("pw", "pw"))),
    "spatial": (spatial_factors, (("conv_kx1", "vertical"), ("conv_1xk", "horizontal"))),
}


def _is_identity(perm: torch.Tensor) -> bool:
    return torch.equal(perm, torch.arange(len(perm)))


@torch.no_grad()
def convert(conv: nn.Conv2d, to: str, setting: int) -> tuple[Conversion, dict[str, object]]:
    """Replace ``conv`` by its ``to`` form with ``setting`` (d, r or G); returns the conversion
    and the plan entry that rebuilds its structure (:func:`build` keyword arguments)."""
    w = conv.weight
    norm2 = float(w.detach().double().pow(2).sum()) or 1.0
    plan: dict[str, object] = {"to": to, "setting": setting}
    if to in _FACTORS:
        factor, pairs = _FACTORS[to]
        f = factor(w, setting)
        module = build(conv, to, setting)
        for attr, field in pairs:
            getattr(module, attr).weight.copy_(getattr(f, field))
        lost, note = f.tail_energy, ""
        last = getattr(module, pairs[-1][0])
    else:
        f = grouped_factors(w, setting)
        plan["permute_in"] = not _is_identity(f.in_perm)
        plan["permute_out"] = not _is_identity(f.out_perm)
        module = build(conv, to, setting, plan["permute_in"], plan["permute_out"])
        if plan["permute_in"]:
            module.perm_in.index.copy_(f.in_perm)
        if plan["permute_out"]:
            module.perm_out.index.copy_(torch.argsort(f.out_perm))
        module.grouped.conv.weight.copy_(f.weight)
        last = module.grouped.conv
        lost = f.total_energy - f.kept_energy
        note = f"kept {f.kept_energy / (f.total_energy or 1):.1%} of ||W||^2 (identity order: {f.identity_energy / (f.total_energy or 1):.1%})"
    if conv.bias is not None:
        bias = conv.bias if to != "grouped" else conv.bias[f.out_perm]
        last.bias.copy_(bias)
    for p in module.parameters():
        p.requires_grad_(w.requires_grad)
    return Conversion(module, (max(lost, 0.0) / norm2) ** 0.5, note), plan
