"""One convolution layer in all its forms: what each costs on paper, what each costs on this machine.

A ``K x K`` conv from M to N channels on a ``D x D`` map (stride s, output ``H' x W'``) and the
factorisations the papers replace it with:

============================  ==========================================  ==================================
form                          module                                      MACs / standard MACs (closed form)
============================  ==========================================  ==================================
standard                      ``Conv2d(M, N, K)``                         1
grouped (G groups)            ``GroupedConv2d(M, N, K, G)``               1/G  (AlexNet; ResNeXt; ShuffleNet)
depthwise-separable (d)       ``SeparableConv2d(M, N, K, d)``             d/N + d/K^2  (MobileNets, Sec. 3.1)
spatially separable           ``SpatiallySeparableConv2d(M, N, K)``       (M W1 + N W') / (M K W')  (Szegedy 2016)
segmented (S segments)        ``SegmentedSeparableConv2d(M, N, K, S)``    D^2 / (K^2 H'W') + N / (M S)  (Xception)
============================  ==========================================  ==================================

W1 is the width of the spatial form's first (``K x 1``) conv's output, which only the second conv
strides: with stride 1 and "same" padding the spatial ratio is ``1/K + N/(M K)`` and the segmented one
``1/K^2 + N/(M S)``. ``padding="valid"`` (no padding) shrinks every output: the seed's worked example,
a 3x3 kernel on a 5x5 single-channel map, costs 9 x 9 = 81 multiplications against 3x5 x 3 = 45 for the
3x1 conv and 3x3 x 3 = 27 for the 1x3 one, 72 in all (``sepconv compare --padding valid --in-channels 1
--out-channels 1 --size 5``); with "same" padding both convs keep the 5x5 map (225 against 150).
The measured ratio comes from :func:`sepconv.cost.analyze` on the real module, the theory from :func:`sepconv.cost.conv_macs` on the formula's terms; they agree exactly (a test
checks it), and the latency column shows how far the clock follows them.

``sepconv compare --json`` prints :meth:`CompareResult.to_dict`: ``config`` (the arguments, with
the group and segment counts used), ``threads``, and ``forms``, one object per form with ``form``,
``label``, ``module``, ``applicable``, ``reason`` (why a form does not apply, else null),
``params``, ``macs``, ``flops``, ``macs_ratio`` (measured by the cost model),
``theory_macs_ratio`` (float), ``theory_exact`` (the fraction, e.g. "13/36"), ``theory_formula``,
``latency_ms`` (``median_ms``, ``p90_ms``, ``samples_ms``; null when ``repeats`` is 0) and
``speedup`` (standard median / this median).

``impl`` adds an implementation dimension (:mod:`.impls`): every form is timed under each of
``native`` (PyTorch's kernels) and ``im2col`` (Caffe's historical per-image, per-group im2col + GEMM
algorithm, reproduced to explain old reports — not a recommended path), all interleaved; ``train``
times forward + backward instead of forward. Only then does the JSON gain keys: ``config.impl``
(the list) and ``config.train`` (when true), and per form ``by_impl``, one object per implementation
with ``impl``, ``latency_ms``, ``speedup`` (the standard form's median under the same implementation
/ this median) and ``calls`` (im2col only: per phase ``calls``, ``gemv_shaped``, ``rank1``,
``shapes``); the form's own ``latency_ms`` and ``speedup`` are its first implementation's.

Example::

    >>> result = compare_layer(repeats=0)  # the seeds' example: 3 -> 4 channels, 3x3, 64x64
    >>> [(f.form, f.params, f.macs) for f in result.forms if f.applicable][:2]
    [('standard', 108, 442368), ('depthwise_separable', 39, 159744)]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from typing import Any

import torch
from rich import box
from rich.table import Table
from rich.text import Text
from torch import nn

from .._util.checks import ArgumentError, boolean, non_negative_int, one_of, positive_int
from .._util.memory import check_fits, format_bytes
from .._util.runtime import threads_set_to
from .._util.timing import Timing
from ..cost import analyze, conv_macs, conv_output_size
from ..engines.im2col import parse_impls
from ..layers import Conv2d, GroupedConv2d, SegmentedSeparableConv2d, SeparableConv2d, SpatiallySeparableConv2d
from ..layers.padding import resolve_padding
from .impls import ImplResult, run_impls

__all__ = ["CompareConfig", "CompareResult", "FormResult", "check_memory", "compare_layer", "memory_needed"]

DEFAULT_DIVISORS = (8, 4, 2)  # tried, largest first, when --groups / --segments are not given
PADDINGS = ("same", "valid")  # symmetric "same" (sepconv.layers.padding), or none


@dataclass(frozen=True)
class FormResult:
    """One form of the layer; ``reason`` says why it does not apply (then the numbers are None)."""

    form: str
    label: str
    module: str
    reason: str | None = None
    params: int | None = None
    macs: int | None = None
    macs_ratio: Fraction | None = None
    theory: Fraction | None = None
    theory_formula: str | None = None
    timing: Timing | None = None
    speedup: float | None = None
    by_impl: tuple[ImplResult, ...] = ()

    @property
    def applicable(self) -> bool:
        return self.reason is None

    def to_dict(self, impls: bool = False) -> dict[str, Any]:
        """The JSON row; ``impls`` adds ``by_impl`` (one object per implementation)."""
        return {
            "form": self.form,
            "label": self.label,
            "module": self.module,
            "applicable": self.applicable,
            "reason": self.reason,
            "params": self.params,
            "macs": self.macs,
            "flops": None if self.macs is None else 2 * self.macs,
            "macs_ratio": None if self.macs_ratio is None else float(self.macs_ratio),
            "theory_macs_ratio": None if self.theory is None else float(self.theory),
            "theory_exact": None if self.theory is None else str(self.theory),
            "theory_formula": self.theory_formula,
            "latency_ms": None if self.timing is None else self.timing.to_dict(),
            "speedup": self.speedup,
            **({"by_impl": [run.to_dict() for run in self.by_impl]} if impls else {}),
        }


@dataclass(frozen=True)
class CompareConfig:
    """The layer being compared and how it is timed (``groups``/``segments`` as used, or None)."""

    in_channels: int
    out_channels: int
    kernel: int
    size: int
    stride: int
    groups: int | None
    depth_multiplier: int
    segments: int | None
    batch: int
    repeats: int
    warmup: int
    impl: tuple[str, ...] = ("native",)
    train: bool = False
    padding: str = "same"

    @property
    def shows_impls(self) -> bool:
        """Whether anything but ``native`` alone was asked for (then rows are per implementation)."""
        return self.impl != ("native",)


@dataclass(frozen=True)
class CompareResult:
    """What :func:`compare_layer` returns: the configuration, the threads used, one row per form."""

    config: CompareConfig
    threads: int
    forms: list[FormResult]

    def form(self, name: str) -> FormResult:
        """The row of form ``name`` ("standard", "grouped", "depthwise_separable", ...)."""
        for row in self.forms:
            if row.form == name:
                return row
        raise ValueError(f"form={name!r} must be one of {', '.join(r.form for r in self.forms)}")

    def to_dict(self) -> dict[str, Any]:
        config = {**asdict(self.config), "impl": list(self.config.impl)}
        if not self.config.shows_impls:  # the document of a plain ``sepconv compare`` is as it was
            del config["impl"]
        if not self.config.train:
            del config["train"]
        if self.config.padding == "same":  # as it was before padding was an option
            del config["padding"]
        return {"config": config, "threads": self.threads,
                "forms": [row.to_dict(self.config.shows_impls) for row in self.forms]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> Table:
        """The rich table: one row per form, or with several implementations one per form and
        implementation (speed-ups within an implementation, im2col's matrix calls beside them)."""
        c = self.config
        timed = f"median of {c.repeats} runs after {c.warmup} warm-up" if c.repeats else "not timed (repeats 0)"
        if c.train:
            timed += ", forward + backward (input and weight gradients)"
        caption = (f"batch {c.batch}, {self.threads} torch threads, {timed}. MACs = multiply-accumulates; "
                   "ratio = MACs / standard MACs by the cost model, theory = the formula under each form")
        if c.shows_impls:
            caption += (". speed-up = the standard conv's time / this form's, under the same implementation; "
                        "timings interleaved. im2col = Caffe's historical per-image, per-group im2col + GEMM "
                        "algorithm, reproduced to explain old reports (not a recommended path); its matrix calls "
                        "per batch, with how many are GEMV-shaped (m or n = 1)")
        table = Table(
            box=box.SIMPLE_HEAD,
            title=f"{c.kernel}x{c.kernel} conv, {c.in_channels} -> {c.out_channels} channels, "
                  f"{c.size}x{c.size} input, stride {c.stride}" + ("" if c.padding == "same" else ", no padding"),
            caption=caption,
        )
        table.add_column("form", max_width=24)
        headers = ("impl", "params", "MACs", "ratio", "theory", "ms", "speed-up", "matrix calls") \
            if c.shows_impls else ("params", "MACs", "ratio", "theory", "ms", "speed-up")
        for header in headers:
            table.add_column(header, justify="left" if header in ("impl", "matrix calls") else "right")
        for row in self.forms:
            note = f"n/a: {row.reason}" if not row.applicable else row.theory_formula
            label = Text(row.label)
            label.append(f"\n{note}", style="dim")
            if not row.applicable:
                table.add_row(label, *["-"] * len(headers), end_section=c.shows_impls)
                continue
            cost = [f"{row.params:,}", f"{row.macs:,}", f"{float(row.macs_ratio):.4f}", f"{float(row.theory):.4f}"]
            if not c.shows_impls:
                table.add_row(label, *cost, _ms(row.timing), _times(row.speedup))
                continue
            # the label on the first implementation's line, its formula on the second's
            names = [label] if len(row.by_impl) == 1 else [Text(row.label), Text(note, style="dim")]
            for i, run in enumerate(row.by_impl):
                first = i == 0
                table.add_row(names[i] if i < len(names) else "", run.impl, *(cost if first else [""] * len(cost)),
                              _ms(run.timing), _times(run.speedup), _calls(run.calls),
                              end_section=i == len(row.by_impl) - 1)
        return table


def _ms(timing: Timing | None) -> str:
    return "-" if timing is None else f"{timing.median_ms:.3f}"


def _times(speedup: float | None) -> str:
    return "-" if speedup is None else f"{speedup:.2f}x"


def _calls(calls: dict[str, Any] | None) -> str:
    """``fwd 33 (32 GEMV)`` (and ``bwd 66 (32 GEMV, 32 rank-1)``) for im2col; a dash for native, whose
    kernels decide their own calls."""
    if calls is None:
        return "-"
    lines = []
    for phase, c in calls.items():
        rank1 = f", {c['rank1']:,} rank-1" if c["rank1"] else ""
        lines.append(f"{'fwd' if phase == 'forward' else 'bwd'} {c['calls']:,} ({c['gemv_shaped']:,} GEMV{rank1})")
    return "\n".join(lines)


def compare_layer(
    in_channels: int = 3,
    out_channels: int = 4,
    kernel: int = 3,
    size: int = 64,
    stride: int = 1,
    groups: int | None = None,
    depth_multiplier: int = 1,
    segments: int | None = None,
    batch: int = 1,
    threads: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    impl: str | Sequence[str] = "native",
    train: bool = False,
    padding: str = "same",
) -> CompareResult:
    """Build every form of one conv layer, count it with the cost model, and time it.

    ``groups`` / ``segments`` given explicitly must divide the channels (else ``ValueError``);
    left as None, the largest of 8, 4, 2 that fits is used, and when none fits the form is listed
    with the reason. ``threads`` sets ``torch.set_num_threads`` for the timing (restored
    afterwards); ``repeats=0`` skips timing. ``padding`` is "same" (as the layers by default: stride 1
    keeps the map's size) or "valid" (none: each output is ``size - kernel + 1`` at stride 1, and
    ``size`` must be at least ``kernel``).
    Every form is timed interleaved with the others (one call of each per round), under each
    implementation in ``impl`` ("native", "im2col" or "native,im2col"; im2col is Caffe's historical
    algorithm, reproduced to explain old reports, not a recommended path: see
    :mod:`sepconv.engines.im2col`); ``train=True`` times forward + backward instead of forward.

    Example::

        >>> result = compare_layer(16, 32, size=8, impl="native,im2col", repeats=0)
        >>> [(run.impl, run.calls and run.calls["forward"]["gemv_shaped"])
        ...  for run in result.form("depthwise_separable").by_impl]  # 16 depthwise GEMVs, 1 pointwise GEMM
        [('native', None), ('im2col', 16)]
    """
    impls = parse_impls(impl)
    boolean("train", train)
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("kernel", kernel),
                        ("size", size), ("stride", stride), ("depth_multiplier", depth_multiplier),
                        ("batch", batch)):
        positive_int(name, value)
    non_negative_int("repeats", repeats)
    non_negative_int("warmup", warmup)
    one_of("padding", padding, PADDINGS)
    if padding == "valid" and size < kernel:
        raise ArgumentError("size", f"size={size} is smaller than kernel={kernel}: padding='valid' needs "
                            "size >= kernel (an unpadded conv has no output position otherwise)")
    if threads is not None:
        positive_int("threads", threads)
    if groups is not None:
        positive_int("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
    if segments is not None:
        positive_int("segments", segments)
        if out_channels % segments:
            raise ValueError(f"segments={segments} must divide out_channels={out_channels}")
    if groups is None:
        groups = next((g for g in DEFAULT_DIVISORS if in_channels % g == 0 and out_channels % g == 0), None)
    if segments is None:
        segments = next((s for s in DEFAULT_DIVISORS if out_channels % s == 0 and s < out_channels), None)
    config = CompareConfig(in_channels, out_channels, kernel, size, stride, groups, depth_multiplier, segments,
                           batch, repeats, warmup, impls, train, padding)
    check_memory(config)

    forms = _forms(config)
    x = torch.randn(batch, in_channels, size, size, generator=torch.Generator().manual_seed(0))
    modules = {form.form: form.build() for form in forms if not isinstance(form.build, str)}
    with threads_set_to(threads) if threads is not None else nullcontext():
        used_threads = torch.get_num_threads()
        rows = [form.cost(modules.get(form.form), x) for form in forms]
        runs = run_impls(modules, x, impls, train=train, repeats=repeats, warmup=warmup)
    rows = [replace(row, by_impl=runs[row.form]) if row.applicable else row for row in rows]
    return CompareResult(config, used_threads, [_relative(row, rows[0]) for row in rows])


def memory_needed(config: CompareConfig) -> dict[str, int]:
    """An upper estimate of the bytes one comparison allocates, without allocating (fp32): every
    form's weights (the standard conv's ``N*M*k*k`` twice over bounds them all, plus the depthwise
    and pointwise parts of the separable forms), and the activations of the widest form: its input,
    its intermediate map (``M*d`` channels) and its output, tripled for ``train`` (their gradients
    too), plus im2col's column buffer (``M*k*k`` rows of one image's output positions)."""
    m, n, k, d, b = config.in_channels, config.out_channels, config.kernel, config.depth_multiplier, config.batch
    out = -(-config.size // config.stride)  # "same" padding
    weights = 2 * n * m * k * k + m * d * k * k + m * d * n
    activations = b * m * config.size**2 + b * (m * d + n) * config.size**2 + b * n * out**2
    if config.train:
        activations *= 3
    columns = m * k * k * config.size**2 if "im2col" in config.impl else 0
    return {"weights": 4 * weights, "activations": 4 * (activations + columns)}


def check_memory(config: CompareConfig) -> None:
    """Refuse a comparison whose :func:`memory_needed` exceeds the memory available, in one line
    naming the values (:func:`sepconv._util.memory.check_fits`), before anything is allocated."""
    need = memory_needed(config)
    # the argument to name: the one furthest above an everyday value in the larger of the two terms
    growth = {"in_channels": config.in_channels / 64, "out_channels": config.out_channels / 64,
              "depth_multiplier": config.depth_multiplier}
    growth.update({"kernel": config.kernel**2 / 9} if need["weights"] >= need["activations"] else
                  {"batch": config.batch, "size": config.size**2 / 64**2})
    argument = max(growth, key=growth.get)
    what = (f"in_channels={config.in_channels}, out_channels={config.out_channels}, kernel={config.kernel}, "
            f"size={config.size}, depth_multiplier={config.depth_multiplier}, batch={config.batch}: the layer's "
            f"weights ({format_bytes(need['weights'])}) and activations ({format_bytes(need['activations'])})")
    check_fits(sum(need.values()), what, argument=argument)


@dataclass(frozen=True)
class _Form:
    """How to build one form (or, as a string, why it does not apply) and its closed-form ratio."""

    form: str
    label: str
    build: Callable[[], nn.Module] | str
    theory: Fraction | None = None
    theory_formula: str | None = None

    def cost(self, module: nn.Module | None, x: torch.Tensor) -> FormResult:
        """The row with the cost model's counts for ``module`` (None: the form does not apply)."""
        if isinstance(self.build, str) or module is None:
            return FormResult(self.form, self.label, module="", reason=str(self.build))
        cost = analyze(module, x)
        return FormResult(self.form, self.label, type(module).__name__, params=cost.params, macs=cost.macs,
                          theory=self.theory, theory_formula=self.theory_formula)


def _forms(c: CompareConfig) -> list[_Form]:
    """Every form of the layer ``c`` describes, with its closed-form MACs ratio (batch 1)."""
    m, n, k, size, stride, pad = c.in_channels, c.out_channels, c.kernel, c.size, c.stride, c.padding
    d, g, s = c.depth_multiplier, c.groups, c.segments
    oh, ow = _output((size, size), (k, k), (stride, stride), pad)
    h1, w1 = _output((size, size), (k, 1), (stride, 1), pad)
    standard = conv_macs(m, n, k, (oh, ow))
    divisors = ", ".join(map(str, DEFAULT_DIVISORS))
    simple = stride == 1 and pad == "same"  # the closed forms' short spelling holds
    forms = [_Form("standard", f"standard {k}x{k}", lambda: Conv2d(m, n, k, stride, pad, bias=False), Fraction(1),
                   "1")]
    if g:
        forms.append(_Form("grouped", f"grouped G={g}",
                           lambda: GroupedConv2d(m, n, k, g, stride=stride, padding=pad),
                           Fraction(conv_macs(m, n, k, (oh, ow), g), standard), "1/G"))
    else:
        forms.append(_Form("grouped", "grouped", f"none of {divisors} divides {m} and {n}; give groups"))
    forms.append(_Form(
        "depthwise_separable", f"dw-separable d={d}",
        lambda: SeparableConv2d(m, n, k, stride, padding=pad, depth_multiplier=d),
        Fraction(conv_macs(m, m * d, k, (oh, ow), m) + conv_macs(m * d, n, 1, (oh, ow)), standard),
        "1/N + 1/K²" if d == 1 else "d/N + d/K²"))
    if k > 1:
        forms.append(_Form(
            "spatially_separable", f"spatial {k}x1+1x{k}",
            lambda: SpatiallySeparableConv2d(m, n, k, stride=stride, padding=pad),
            Fraction(conv_macs(m, n, (k, 1), (h1, w1)) + conv_macs(n, n, (1, k), (oh, ow)), standard),
            "1/K + N/(MK)" if simple else "(M·W₁ + N·W')/(M·K·W')"))
    else:
        forms.append(_Form("spatially_separable", "spatial", "a 1x1 kernel has nothing to separate"))
    if s:
        forms.append(_Form(
            "segmented", f"segmented S={s}",
            lambda: SegmentedSeparableConv2d(m, n, k, s, stride=stride, padding=pad),
            Fraction(conv_macs(m, n, 1, (size, size)) + conv_macs(n, n, k, (oh, ow), s), standard),
            "1/K² + N/(MS)" if simple else "D²/(K²·H'W') + N/(M·S)"))
    else:
        forms.append(_Form("segmented", "segmented",
                           f"none of {divisors} below {n} divides it; give segments"))
    return forms


def _relative(row: FormResult, standard: FormResult) -> FormResult:
    """``row`` with its MACs ratio and, per implementation, its speed-up over the standard form under
    the same implementation filled in; the row's own timing and speed-up are its first implementation's."""
    if not row.applicable:
        return row
    runs = tuple(replace(run, speedup=_speedup(base.timing, run.timing))
                 for run, base in zip(row.by_impl, standard.by_impl))
    return replace(row, macs_ratio=Fraction(row.macs, standard.macs), by_impl=runs,
                   timing=runs[0].timing if runs else None, speedup=runs[0].speedup if runs else None)


def _speedup(standard: Timing | None, timing: Timing | None) -> float | None:
    if standard is None or timing is None or timing.median_ms <= 0:
        return None
    return standard.median_ms / timing.median_ms


def _output(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
            padding: str = "same") -> tuple[int, int]:
    """Output (H, W) of a conv with sepconv's ``padding`` ("same" or "valid", see
    :mod:`sepconv.layers.padding`)."""
    padding, _ = resolve_padding(padding, kernel, stride, (1, 1))
    if padding == "same":
        return size
    oh, ow = (conv_output_size(n, k, st, p) for n, k, st, p in zip(size, kernel, stride, padding))
    return oh, ow
