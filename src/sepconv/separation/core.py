"""``separate(model, to=...)``: every eligible ``nn.Conv2d`` of a model replaced in closed form.

Walks any ``nn.Module`` (convs inside ``nn.Sequential``, ``nn.ModuleList`` or as attributes, a
conv shared by several parents replaced everywhere), computes each replacement's weights from the
original's (:mod:`sepconv.separation.factor`), and measures what changed on a calibration batch:
the input of every conv is captured by a forward hook on the original model, and each replacement
is run on exactly that input, so a layer's output error is its own, not the sum of those before it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import fnmatch
from collections.abc import Callable, Sequence
from typing import Any, Union

import torch
from torch import nn

from .._util.checks import one_of, positive_int
from .._util.modules import replace_module
from .._util.runtime import eval_mode
from .._util.timing import time_module
from ..cost import analyze
from ..formats.plan import TARGETS
from ..models.provenance import provenance_of
from .convert import SETTING, Conversion, convert, default_rank, describe, skip_reason, valid_range
from .recalibrate import recalibrate_bn as recalibrate
from .report import LayerReport, SeparationReport

LayerSelector = Union[Sequence[str], Callable[[str, nn.Conv2d], bool], None]


def separate(
    model: nn.Module,
    to: str = "depthwise",
    *,
    depth_multiplier: int = 1,
    rank: int | None = None,
    groups: int | None = None,
    layers: LayerSelector = None,
    min_macs: float = 0,
    calibration: torch.Tensor | None = None,
    input_shape: Sequence[int] | None = None,
    measure_time: bool = False,
    recalibrate_bn: bool = False,
    inplace: bool = False,
) -> tuple[nn.Module, SeparationReport]:
    """Replace each eligible standard conv of ``model`` by a separable one computed from its weights.

    ``to``:

    * ``"depthwise"``: depthwise ``k x k`` with ``depth_multiplier`` d, then pointwise 1x1 (bias
      there). Per input channel, the best rank-d approximation of its (N, k*k) kernel slice
      (truncated SVD); exact for d = min(N, k*k). Howard et al. 2017, *MobileNets*, Section 3.1.
    * ``"spatial"``: ``k x 1`` (M -> r) then ``1 x k`` (r -> N), rank ``rank`` (default:
      min(out_channels, exact rank)). Jaderberg et al. 2014, scheme 2, by SVD of the
      (M*k, N*k) reshaped kernel; exact for r = min(M*k, N*k).
    * ``"grouped"``: ``groups`` groups; keeps the block-diagonal part under the input/output
      channel permutations that keep most of ``||W||^2`` (see
      :func:`sepconv.separation.factor.grouped_factors`).

    ``layers`` selects convs by module name (a list, checked; ``*``, ``?`` and ``[...]`` match as
    shell patterns, ``"blocks.*"``) or a predicate ``(name, conv) -> bool``; ``min_macs`` skips convs with fewer MACs per image (needs ``calibration`` or
    ``input_shape``). 1x1 convs (except for ``"grouped"``), depthwise and grouped convs are
    listed as skipped with the reason. A ``depth_multiplier``/``rank`` out of a layer's range is a
    ValueError naming the layer and the range.

    ``calibration`` (a batch) or ``input_shape`` (a random normal batch, seed 0) gives the output
    errors and MACs; ``measure_time`` times each layer before and after on its captured input
    (its first image: batch-1 latency). ``recalibrate_bn`` then re-estimates every BatchNorm's
    statistics on ``calibration``, which must be real images
    (:func:`sepconv.separation.recalibrate.recalibrate_bn`). The caller's model is deep-copied
    unless ``inplace``. Returns ``(new_model, report)``.

    Example::

        >>> net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1))
        >>> new, report = separate(net, "depthwise", depth_multiplier=2, input_shape=(1, 3, 32, 32))
        >>> type(new[2]).__name__, new(torch.zeros(1, 3, 32, 32)).shape
        ('SeparableConv2d', torch.Size([1, 32, 32, 32]))
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    one_of("to", to, TARGETS)
    positive_int("depth_multiplier", depth_multiplier)
    if rank is not None:
        positive_int("rank", rank)
    if to == "grouped":
        if groups is None:
            raise ValueError("groups is required for to='grouped' (an integer >= 2)")
        if positive_int("groups", groups) < 2:
            raise ValueError(f"groups={groups} must be >= 2 (groups=1 is the original conv)")
    if isinstance(min_macs, bool) or not isinstance(min_macs, (int, float)) or min_macs < 0:
        raise ValueError(f"min_macs={min_macs!r} must be a non-negative number")
    if recalibrate_bn and calibration is None:
        raise ValueError("recalibrate_bn=True needs real images in calibration= (random inputs would corrupt the "
                         "BatchNorm statistics)")
    x = _calibration_batch(model, calibration, input_shape)
    if min_macs and x is None:
        raise ValueError(f"min_macs={min_macs} needs calibration= or input_shape= to count MACs")

    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    selected = _select(convs, layers)
    cost = analyze(model, x[:1]) if x is not None else None
    macs = {} if cost is None else {row.name: row.macs for row in cost.layers}  # first call of each conv

    def setting_for(conv: nn.Conv2d) -> int:
        if to == "depthwise":
            return depth_multiplier
        if to == "spatial":
            return default_rank(conv) if rank is None else rank
        return groups

    rows: dict[str, LayerReport] = {}
    for name, conv in convs:
        row = LayerReport(name, describe(conv), "skipped", params_before=_params(conv), params_after=_params(conv))
        row.macs_before = row.macs_after = macs.get(name)
        reason = skip_reason(conv, to, groups) if name in selected else "not selected by layers="
        if reason is None and min_macs and row.macs_before is None:
            reason = "not called on the calibration batch, so its MACs are unknown"
        elif reason is None and min_macs and row.macs_before < min_macs:
            reason = f"{row.macs_before:,} MACs < min_macs={min_macs:,}"
        if reason is None:
            row.status, row.setting = "separated", setting_for(conv)
        row.reason = reason or ""
        rows[name] = row
    todo = {name: conv for name, conv in convs if rows[name].status == "separated"}
    _check_ranges(todo, to, depth_multiplier if to == "depthwise" else rank)

    done: dict[str, Conversion] = {}
    plan: dict[str, dict[str, Any]] = {}
    for name, conv in todo.items():
        done[name], plan[name] = convert(conv, to, rows[name].setting)
        rows[name].weight_error, rows[name].params_after = done[name].weight_error, _params(done[name].module)
        rows[name].reason = done[name].note
    model_out = _calibrate(model, x, todo, done, rows, measure_time) if x is not None else None

    new = model if inplace else copy.deepcopy(model)
    report = SeparationReport(to, SETTING[to], list(rows.values()), _params(model), 0, plan=plan,
                              input_shape=None if x is None else tuple(x.shape),
                              threads=torch.get_num_threads() if measure_time else None)
    if cost is not None:
        report.macs_before = cost.macs
    if measure_time and x is not None:
        report.time_before_ms = time_module(model, x[:1]).median_ms
    modules = dict(new.named_modules())
    for name in todo:
        replace_module(new, modules[name], done[name].module)
    report.params_after = _params(new)
    provenance = provenance_of(new)
    if provenance is not None:  # so that save_model records it and load_model rebuilds it
        weights = provenance.weights
        if weights is not None and "loaded" in weights:  # the import's tensor counts describe the layers replaced
            weights = {"separated_from": weights}
        stages = [*(provenance.separation or []), {"to": to, "layers": plan}]
        new.provenance = dataclasses.replace(provenance, weights=weights, separation=stages)
    if recalibrate_bn:
        report.bn_recalibrated = recalibrate(new, x)
    if x is not None:
        report.macs_after = analyze(new, x[:1]).macs
        report.output_error = _relative_error(_run(new, x), model_out)
    if measure_time and x is not None:
        report.time_after_ms = time_module(new, x[:1]).median_ms
    return new, report


def _calibration_batch(model: nn.Module, calibration: torch.Tensor | None,
                       input_shape: Sequence[int] | None) -> torch.Tensor | None:
    if calibration is not None and input_shape is not None:
        raise ValueError("give calibration= or input_shape=, not both")
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) != 4 or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"input_shape={input_shape!r} must be four positive ints (B, C, H, W)")
        calibration = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if calibration is None:
        return None
    if not isinstance(calibration, torch.Tensor) or calibration.dim() != 4:
        raise ValueError(f"calibration must be a 4-D (B, C, H, W) tensor, got {getattr(calibration, 'shape', calibration)!r}")
    p = next(model.parameters(), None)
    return calibration if p is None else calibration.to(device=p.device, dtype=p.dtype)


def _select(convs: list[tuple[str, nn.Conv2d]], layers: LayerSelector) -> set[str]:
    names = [n for n, _ in convs]
    if layers is None:
        return set(names)
    if callable(layers):
        return {n for n, m in convs if layers(n, m)}
    if isinstance(layers, str) or not all(isinstance(n, str) for n in layers):
        raise ValueError(f"layers={layers!r} must be a list of module names or a predicate (name, conv) -> bool")
    chosen = {n: fnmatch.filter(names, n) if any(c in n for c in "*?[") else [n] * (n in names) for n in layers}
    unknown = [n for n, found in chosen.items() if not found]
    if unknown:
        hints = {n: difflib.get_close_matches(n, names, n=1) for n in unknown}
        listed = " or ".join(f"{n!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for n, h in hints.items())
        raise ValueError(f"layers: no Conv2d named {listed}; the model's convs: {', '.join(names[:12])}"
                         + (" ..." if len(names) > 12 else ""))
    return {n for found in chosen.values() for n in found}


def _check_ranges(todo: dict[str, nn.Conv2d], to: str, value: int | None) -> None:
    """One ValueError naming the selected layers whose range excludes ``value`` (d or r)."""
    if to == "grouped" or value is None:
        return
    bad = []
    for name, conv in todo.items():
        limit, rule = valid_range(conv, to)
        if value > limit:
            bad.append(f"layer {name!r} ({describe(conv)}): valid range 1..{limit} = {rule}")
    if bad:
        more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise ValueError(f"{SETTING[to]}={value} is out of range for {len(bad)} layer(s): " + "; ".join(bad[:3])
                         + more + " (exclude them with layers= or lower the value)")


def _run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with eval_mode(model), torch.no_grad():
        return model(x)


def _calibrate(model: nn.Module, x: torch.Tensor, todo: dict[str, nn.Conv2d], done: dict[str, Conversion],
               rows: dict[str, LayerReport], measure_time: bool) -> torch.Tensor:
    """Run the original model on ``x``; at each converted conv's first call, run its replacement on
    the same input and fill in output error, MACs and (optionally) times. Returns the model output.

    Measuring inside the hook keeps one layer's activations alive at a time, not the whole model's.
    """
    def hook(name: str):
        def measure(conv: nn.Module, args: tuple, out: torch.Tensor) -> None:
            row, module, inp = rows[name], done[name].module, args[0]
            if row.output_error is not None:  # a shared conv: its first call only
                return
            row.output_error = _relative_error(_run(module, inp), out)
            row.macs_after = analyze(module, inp[:1]).macs
            if measure_time:  # side by side, same input, same threads
                row.time_before_ms = time_module(conv, inp[:1]).median_ms
                row.time_after_ms = time_module(module, inp[:1]).median_ms
        return measure

    handles = [conv.register_forward_hook(hook(name)) for name, conv in todo.items()]
    try:
        return _run(model, x)
    finally:
        for h in handles:
            h.remove()


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return float((approx - exact).double().norm() / (exact.double().norm() or 1.0))
