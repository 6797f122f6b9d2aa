"""``sepconv inspect``: the health of a trained model's depthwise layers.

MobileNetV1 trained with weight decay on its depthwise kernels, or with ReLU6 pushing channels
into the flat part, ends with many depthwise kernels at (near) zero: "dead" channels that carry
nothing after the batch-norm, waste their MACs and wreck per-tensor int8 quantisation (Sheng et
al. 2018, *A Quantization-Friendly Separable Convolution for MobileNets*; Howard et al. 2017,
Section 3.2, advise "very little or no weight decay" on depthwise filters). For every
depthwise conv (``groups == in_channels > 1``) this reports:

- ``dead``: kernels whose L2 norm is below ``tol`` (absolute; the zoo's initialisation gives
  3x3 depthwise kernels norms around 0.6);
- the following BatchNorm's scale ``|gamma|``: min, median, max, and how many are below ``tol``;
- ``inactive``: channels whose ReLU/ReLU6 after that BatchNorm is almost never positive, read from
  the BN parameters alone: the normalised pre-activation is ``gamma * z + beta`` with ``z`` of unit
  variance, so ``beta + 3 |gamma| <= 0`` means it is below zero for all but the tail of ``z``.

Example::

    >>> layers = inspect_model(create_model("mobilenet_v1", width_mult=0.25, num_classes=10))
    >>> layers[0].name, layers[0].channels, layers[0].dead
    ('blocks.0.dw.conv', 8, 0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._util.checks import ArgumentError
from ..cost import is_depthwise

__all__ = ["DepthwiseHealth", "health_table", "inspect_checkpoint", "inspect_model"]

RELUS = (nn.ReLU, nn.ReLU6)


@dataclass(frozen=True)
class DepthwiseHealth:
    """One depthwise conv: kernel norms, the BatchNorm after it, and its dead/inactive channels."""

    name: str
    channels: int
    kernel: str  # "3x3"
    stride: int
    dead: int  # kernels with L2 norm < tol
    norm_min: float
    norm_median: float
    norm_max: float
    bn: str | None = None
    gamma_min: float | None = None
    gamma_median: float | None = None
    gamma_max: float | None = None
    small_gamma: int | None = None  # |gamma| < tol
    act: str | None = None
    inactive: int | None = None  # ReLU after the BN almost never positive (beta + 3|gamma| <= 0)

    @property
    def dead_fraction(self) -> float:
        return self.dead / self.channels

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "dead_fraction": self.dead_fraction}


def inspect_model(model: nn.Module, tol: float = 1e-3) -> list[DepthwiseHealth]:
    """:class:`DepthwiseHealth` of every depthwise conv of ``model``, in module order. The BN is
    the first ``BatchNorm2d`` after the conv (in registration order) with its channel count
    before any other conv; the activation, the first module after that BN before any other conv."""
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or tol <= 0:
        raise ValueError(f"tol={tol!r} must be a positive number")
    modules = list(model.named_modules())
    rows = []
    for i, (name, conv) in enumerate(modules):
        if not is_depthwise(conv):
            continue
        bn, act = _following(modules[i + 1:], conv.out_channels)
        with torch.no_grad():
            norms = conv.weight.detach().float().flatten(1).norm(dim=1)
            fields: dict[str, Any] = {}
            if bn is not None:
                gamma = bn[1].weight.detach().float().abs()
                fields = {"bn": bn[0], "gamma_min": gamma.min().item(), "gamma_median": gamma.median().item(),
                          "gamma_max": gamma.max().item(), "small_gamma": int((gamma < tol).sum())}
                if act is not None:
                    fields["act"] = type(act[1]).__name__
                    if isinstance(act[1], RELUS):
                        fields["inactive"] = int((bn[1].bias.detach().float() + 3 * gamma <= 0).sum())
        kh, kw = conv.kernel_size
        rows.append(DepthwiseHealth(
            name=name, channels=conv.out_channels, kernel=f"{kh}x{kw}", stride=conv.stride[0],
            dead=int((norms < tol).sum()), norm_min=norms.min().item(), norm_median=norms.median().item(),
            norm_max=norms.max().item(), **fields))
    return rows


def _following(rest: list[tuple[str, nn.Module]], channels: int
               ) -> tuple[tuple[str, nn.BatchNorm2d] | None, tuple[str, nn.Module] | None]:
    bn = None
    for name, m in rest:
        if isinstance(m, nn.Conv2d):
            break
        if bn is None and isinstance(m, nn.BatchNorm2d) and m.num_features == channels and m.affine:
            bn = (name, m)
        elif bn is not None and next(m.children(), None) is None and not isinstance(m, nn.Identity):
            return bn, (name, m)
    return bn, None


def inspect_checkpoint(path: str | Path, tol: float = 1e-3, ema: bool = False) -> dict[str, Any]:
    """The JSON document of ``sepconv inspect``: the checkpoint, totals and one row per layer."""
    from ..resolve import resolve_model

    resolved = resolve_model(path, ema=ema)  # a .safetensors file or a run directory
    if resolved.sidecar is None:
        raise ArgumentError("path", f"path={str(path)!r} must be a sepconv checkpoint (.safetensors) or a run directory")
    provenance = resolved.sidecar.provenance
    rows = inspect_model(resolved.model, tol)
    channels = sum(r.channels for r in rows)
    dead = sum(r.dead for r in rows)
    inactive = sum(r.inactive or 0 for r in rows)
    return {"checkpoint": str(resolved.checkpoint), "model": provenance.model, "kwargs": provenance.kwargs, "tol": tol,
            "depthwise_layers": len(rows), "depthwise_channels": channels, "dead": dead,
            "dead_fraction": dead / channels if channels else 0.0, "inactive": inactive,
            "layers": [r.to_dict() for r in rows]}


def health_table(doc: dict[str, Any]) -> Any:
    """A rich table of :func:`inspect_checkpoint`'s document."""
    from rich.table import Table

    table = Table(title=f"{doc['model']} depthwise layers ({doc['checkpoint']}; dead: kernel L2 norm < {doc['tol']:g})")
    for col in ("layer", "ch", "k", "s", "dead", "dead %", "norm min/med/max", "BN |gamma| min/med/max",
                "|gamma|<tol", "inactive"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in doc["layers"]:
        gamma = "-" if r["bn"] is None else f"{r['gamma_min']:.3g} / {r['gamma_median']:.3g} / {r['gamma_max']:.3g}"
        table.add_row(r["name"], str(r["channels"]), r["kernel"], str(r["stride"]), str(r["dead"]),
                      f"{100 * r['dead_fraction']:.1f}",
                      f"{r['norm_min']:.3g} / {r['norm_median']:.3g} / {r['norm_max']:.3g}", gamma,
                      "-" if r["small_gamma"] is None else str(r["small_gamma"]),
                      "-" if r["inactive"] is None else str(r["inactive"]))
    total = doc["depthwise_channels"]
    table.caption = (f"{doc['dead']} of {total} depthwise kernels dead ({100 * doc['dead_fraction']:.1f}%); "
                     f"{doc['inactive']} channels inactive after ReLU (beta + 3|gamma| <= 0)")
    return table
