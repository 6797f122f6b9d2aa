"""Apply a name mapping to a model: check every tensor first, then load all of them or none.

A mapping is a list of :class:`Entry` rows (sepconv key <- source name, with a layout change);
each source module writes one per model family, generated from the model's own modules so that
it follows the width, the number of classes and the optional heads. :func:`apply_entries` never
leaves a model half-loaded: it converts and checks everything, raises one ``ValueError`` naming
the missing, unexpected and mis-shaped tensors, and only then copies them in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers import Conv2d, ConvNormAct, MaxPool2d
from ..models._base import ACTIVATIONS

SHOWN = 5  # names listed per problem before "... and N more"


@dataclass(frozen=True)
class Entry:
    """One tensor: sepconv state-dict key ``dst`` <- the source's ``src``, through ``convert``."""

    dst: str
    src: str
    convert: str = "copy"


@dataclass
class LoadReport:
    """What :func:`apply_entries` did: how many tensors it loaded, and what it skipped (strict=False)."""

    loaded: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


class Misfit(Exception):
    """A source tensor whose rank cannot be converted to the sepconv layout."""


def _rank(t: torch.Tensor, n: int) -> torch.Tensor:
    if t.dim() != n:
        raise Misfit
    return t


def _one_by_one(t: torch.Tensor, first: bool) -> torch.Tensor:
    _rank(t, 4)
    if (tuple(t.shape[:2]) if first else tuple(t.shape[2:])) != (1, 1):
        raise Misfit
    return t.reshape(t.shape[2:]).T if first else t.reshape(t.shape[:2])


# Keras stores conv kernels (kh, kw, in, out), depthwise kernels (kh, kw, C, d), dense kernels
# (in, out); torch wants (out, in, kh, kw), (C*d, 1, kh, kw) with output c*d + j, and (out, in).
CONVERTERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "copy": lambda t: t,
    "keras_conv": lambda t: _rank(t, 4).permute(3, 2, 0, 1),
    "keras_depthwise": lambda t: _rank(t, 4).reshape(t.shape[0], t.shape[1], -1).permute(2, 0, 1).unsqueeze(1),
    "keras_dense": lambda t: _rank(t, 2).T,
    "keras_1x1_dense": lambda t: _one_by_one(t, first=True),  # a 1x1 conv on a pooled map is a dense layer
    "conv_1x1_linear": lambda t: _one_by_one(t, first=False),
}


def listing(label: str, items: list[str]) -> str:
    more = f" ... and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return f"{len(items)} {label}: {', '.join(items[:SHOWN])}{more}"


def shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def apply_entries(
    model: nn.Module,
    entries: Iterable[Entry],
    tensors: Mapping[str, torch.Tensor],
    *,
    strict: bool,
    where: str,
    hint: Callable[[], str] | None = None,
) -> LoadReport:
    """Load ``tensors`` into ``model`` through ``entries``; all of them or, on any error, none.

    Mis-shaped tensors are always an error; missing and unexpected ones only when ``strict``.
    Model keys no entry names (BatchNorm's ``num_batches_tracked`` for Keras) keep their values.
    ``hint`` is called only when there is an error, for a sentence on its likely cause.
    """
    own = model.state_dict()
    new: dict[str, torch.Tensor] = {}
    missing, misshaped, used = [], [], set()
    for e in entries:
        if e.dst not in own:
            raise ValueError(f"{where}: the mapping names {e.dst}, which this model does not have")
        if e.src not in tensors:
            missing.append(e.src)
            continue
        used.add(e.src)
        raw = tensors[e.src]
        try:
            t = CONVERTERS[e.convert](raw)
        except Misfit:
            t = None
        if t is None or shape(t) != shape(own[e.dst]):
            misshaped.append(f"{e.src} {shape(raw)} (for {e.dst} {shape(own[e.dst])})")
            continue
        new[e.dst] = t.to(dtype=own[e.dst].dtype).contiguous()
    unexpected = [k for k in tensors if k not in used]
    problems = [listing("mis-shaped", misshaped)] if misshaped else []
    if strict or not new:
        problems += [listing(label, items) for label, items in (("missing", missing), ("unexpected", unexpected))
                     if items]
    if problems:
        advice = hint() if hint is not None else ""
        raise ValueError(f"{where}: weights do not fit the model ({'; '.join(problems)}){advice}")
    _load_all_or_nothing(model, {**own, **new})
    return LoadReport(len(new), missing, unexpected)


def _load_all_or_nothing(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        model.load_state_dict(state, strict=True)
    except BaseException:
        model.load_state_dict(backup, strict=True)
        raise


def padding_modes(model: nn.Module) -> set[str]:
    """The padding rules the model's spatial convs and pools use ("same", "tf_same", "valid")."""
    modes = set()
    for m in model.modules():
        if isinstance(m, (Conv2d, MaxPool2d)):
            k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,)
            if max(k) == 1:
                continue  # 1x1: every rule pads nothing
            pad = m.padding if isinstance(m.padding, tuple) else (m.padding,)
            modes.add("tf_same" if m.tf_same else "valid" if set(pad) == {0} else "same")
    return modes - {"valid"}  # Xception's stem is valid in every framework


def config_problems(model: nn.Module, needs: Mapping[str, object]) -> list[str]:
    """How ``model`` differs from the settings ``needs`` (bn_eps, padding, act) a source requires."""
    problems = []
    eps = sorted({m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)})
    if any(not math.isclose(e, float(needs["bn_eps"])) for e in eps):
        problems.append(f"bn_eps={eps[0] if len(eps) == 1 else eps} (needs bn_eps={needs['bn_eps']})")
    modes = padding_modes(model)
    if modes - {needs["padding"]}:
        problems.append(f"padding={'/'.join(sorted(modes))} (needs padding={needs['padding']!r})")
    act = needs.get("act")
    stem = getattr(model, "stem", None)
    if act is not None and isinstance(stem, ConvNormAct) and type(stem.act) is not ACTIVATIONS[str(act)]:
        problems.append(f"act={type(stem.act).__name__} (needs act={act!r})")
    return problems
