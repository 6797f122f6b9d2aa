"""The training step's speed settings, chosen for the machine it runs on: memory layout
(channels_last), precision (bf16/fp16 autocast) and torch.compile.

:func:`decide_speed` is a pure function of what the machine can do (:class:`Capabilities`, probed
by :func:`probe_capabilities`), what was asked (``"auto"``/``None`` or a value) and the run's length;
it returns a :class:`SpeedChoice` that names each setting and the reason for it. The rules:

- **precision** ``auto``: on CUDA, bf16 autocast where ``torch.cuda.is_bf16_supported()`` (fp32's
  exponent range, so no loss scaling), else fp16 autocast with a gradient scaler; on CPU, bf16
  autocast where ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` says oneDNN has native bf16
  (AVX512-BF16 or AMX) and a timed training step (:func:`measure_step_seconds`) is at least 10%
  faster in bf16 than in fp32 (at small sizes autocast's casts cost more than bf16 saves), else
  fp32 (emulated bf16 is slower still); and never where :func:`bf16_hazard` finds a layer whose
  bf16 weight gradient oneDNN gets wrong (there ``bf16`` asked for is refused too). fp16 is
  offered on CUDA only. A precision the machine cannot run is refused, naming what it can.
- **channels_last** ``auto``: on when the model has 2-D convolutions (NHWC is the layout oneDNN's
  and cuDNN's fast convolution kernels use; NCHW tensors are reordered around every conv).
- **compile** ``auto``: torch.compile pays once, up front, and saves a little on every step, so it
  is on only past the break-even ``remaining_steps x COMPILE_SAVING x step_seconds >
  compile_seconds``: ``step_seconds`` is the eager step measured on this machine with the chosen
  precision and layout (:func:`measure_step_seconds`), ``compile_seconds`` the documented estimate
  :func:`estimate_compile_seconds` and :data:`COMPILE_SAVING` the documented expected saving.

The timings are inputs (``step_seconds``: a number, or a function that measures), so tests give
them, and the capabilities, as they please. A run records its choice (``state.json``'s ``speed``,
``metrics.json``'s rows) and ``--resume`` reuses it whatever the machine says then, so a resumed
run continues with the settings it started with. Under DDP rank 0 decides and broadcasts (the
timed steps are the inputs that could differ between ranks).

Example::

    >>> caps = Capabilities(device="cpu", bf16=True, fp16=False, compile=True,
    ...                     bf16_check="torch.ops.mkldnn._is_mkldnn_bf16_supported() is True")
    >>> choice = decide_speed(caps, has_conv=True, remaining_steps=1000, step_seconds=0.05, compile_seconds=90)
    >>> choice.precision, choice.channels_last, choice.compile
    ('bf16', True, False)
    >>> decide_speed(caps, has_conv=True, remaining_steps=100_000, step_seconds=0.05, compile_seconds=90).compile
    True
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._util.checks import ArgumentError
from .._util.precision import DTYPES, PRECISIONS
from .._util.runtime import eval_mode

__all__ = ["BF16_MARGIN", "COMPILE_SAVING", "COMPILE_SECONDS", "PRECISIONS", "Capabilities", "SpeedChoice",
           "autocast_for", "bf16_hazard", "check_precision", "compile_support", "decide_speed",
           "estimate_compile_seconds", "legacy_choice", "measure_step_seconds", "probe_capabilities",
           "reduced_precision"]


# torch.compile's one-off cost for a training step (Dynamo traces forward and backward, Inductor
# generates and compiles kernels), estimated as a base plus a share per leaf module: seconds
# (base, per leaf module) by device type. CPU: C++ kernels built with the system compiler on 2
# cores (MobileNetV2, 176 leaf modules: ~108 s; measure it with `benchmarks/train_speed.py
# --compile-cost`); CUDA: Triton kernels, autotuning off.
COMPILE_SECONDS: dict[str, tuple[float, float]] = {"cpu": (20.0, 0.5), "cuda": (15.0, 0.15)}
# The expected fraction of an eager training step torch.compile saves (fused elementwise work:
# BatchNorm + activation + the autocast casts around each conv; the convolutions stay oneDNN's or
# cuDNN's): a documented estimate, measured by `benchmarks/train_speed.py --compile-cost`.
COMPILE_SAVING: dict[str, float] = {"cpu": 0.15, "cuda": 0.30}
# bf16 rounds: on a CPU, auto takes it only where a timed step is at least 10% faster than fp32's.
# (2 cores here, MobileNetV2 channels_last, forward + backward, batch 32: at 112 px 1.2x faster on
# 2 threads and 2.3x on 1; at 32-80 px 1.5-2.5x *slower*, where autocast's casts and the small ops'
# fixed costs outweigh the faster convolutions.)
BF16_MARGIN = 0.9


@dataclass(frozen=True)
class Capabilities:
    """What the machine can run: reduced precisions and torch.compile, with the checks that said so."""

    device: str  # "cpu" or "cuda"
    bf16: bool
    fp16: bool
    # None: not checked yet. Importing torch._dynamo to check takes seconds, so decide_speed asks
    # (compile_support) only when the answer matters: --compile, or past the break-even.
    compile: bool | None = None
    bf16_check: str = ""  # the check and its answer, for the reasons
    compile_check: str = ""  # why torch.compile is unavailable (empty when it is available or unchecked)

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(p for p in PRECISIONS if p == "fp32" or getattr(self, p))


@functools.cache
def compile_support(device: str) -> tuple[bool, str]:
    """Whether torch.compile can compile a training step on ``device`` ("cpu" or "cuda"), and if
    not, why (imports torch._dynamo: seconds, once per process)."""
    if not hasattr(torch, "compile"):
        return False, f"torch {torch.__version__} has no torch.compile"
    try:
        from torch import _dynamo
    except Exception as err:  # noqa: BLE001 - any import failure means no compile here
        return False, f"torch._dynamo failed to import ({type(err).__name__}: {err})"
    if not _dynamo.is_dynamo_supported():
        return False, "torch._dynamo does not support this Python"
    if device == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            return False, "Inductor needs Triton for CUDA kernels and it is not installed"
        return True, ""
    # Inductor's CPU kernels are C++ built by the compiler in $CXX, else g++/clang++ on PATH.
    cxx = os.environ.get("CXX")
    if not (cxx and shutil.which(cxx)) and not any(shutil.which(c) for c in ("g++", "clang++", "c++")):
        return False, "Inductor needs a C++ compiler for CPU kernels ($CXX, g++ or clang++) and none is on PATH"
    return True, ""


def probe_capabilities(device: torch.device | str, check_compile: bool = False) -> Capabilities:
    """The capabilities of ``device`` (a CPU or a CUDA GPU) in this process; torch.compile's only
    with ``check_compile`` (else left for :func:`decide_speed` to check where it matters)."""
    kind = torch.device(device).type
    if kind == "cuda":
        bf16 = bool(torch.cuda.is_bf16_supported())
        check = f"torch.cuda.is_bf16_supported() is {bf16}"
        fp16 = True
    else:
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        check = f"torch.ops.mkldnn._is_mkldnn_bf16_supported() is {bf16}"
        fp16 = False
    ok, why = compile_support(kind) if check_compile else (None, "")
    return Capabilities(device=kind, bf16=bf16, fp16=fp16, compile=ok, bf16_check=check, compile_check=why)


def reduced_precision(caps: Capabilities) -> str | None:
    """The reduced precision ``auto`` picks on ``caps`` (None: fp32 is the fastest there)."""
    if caps.device == "cuda":
        return "bf16" if caps.bf16 else "fp16"
    return "bf16" if caps.bf16 else None


@dataclass(frozen=True)
class SpeedChoice:
    """The settings of a run's training step, each with the reason it was chosen."""

    precision: str
    channels_last: bool
    compile: bool
    precision_reason: str = ""
    channels_last_reason: str = ""
    compile_reason: str = ""

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.precision]

    def lines(self, resumed: bool = False) -> list[str]:
        """One line per setting with its reason, for the first lines a run prints; ``resumed``: the
        choice was read back from the run's ``state.json``, not made now."""
        kept = "kept from the run's start (state.json); then: " if resumed else ""
        return [f"precision {self.precision} ({kept}{self.precision_reason})",
                f"channels_last {'on' if self.channels_last else 'off'} ({kept}{self.channels_last_reason})",
                f"torch.compile {'on' if self.compile else 'off'} ({kept}{self.compile_reason})"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Any, where: str = "speed") -> SpeedChoice:
        """A choice from its JSON form (a checkpoint's ``state.json``), checked; ValueError naming ``where``."""
        if not isinstance(doc, dict):
            raise ValueError(f"{where}: {doc!r} must be an object with {', '.join(cls.__dataclass_fields__)}")
        unknown = set(doc) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        if doc.get("precision") not in PRECISIONS:
            raise ValueError(f"{where}: precision={doc.get('precision')!r} must be one of {', '.join(PRECISIONS)}")
        for key in ("channels_last", "compile"):
            if not isinstance(doc.get(key), bool):
                raise ValueError(f"{where}: {key}={doc.get(key)!r} must be true or false")
        for key in ("precision_reason", "channels_last_reason", "compile_reason"):
            if not isinstance(doc.get(key, ""), str):
                raise ValueError(f"{where}: {key}={doc.get(key)!r} must be a string")
        return cls(**doc)


def check_precision(caps: Capabilities, precision: str) -> str:
    """``precision`` if the machine can run it; else ArgumentError naming it and what is available."""
    if precision not in caps.precisions:
        why = caps.bf16_check if precision == "bf16" else "fp16 autocast is offered on CUDA GPUs only"
        raise ArgumentError("precision", f"precision={precision!r} cannot run on this {caps.device} ({why}); "
                            f"available: {', '.join(caps.precisions)}")
    return precision


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f} ms"


def _precision(caps: Capabilities, asked: str, amp: bool, timed: Callable[[str], float] | None,
               hazard: str) -> tuple[str, str]:
    if hazard and caps.device == "cpu" and (asked == "bf16" or (asked == "auto" and reduced_precision(caps))):
        if asked == "bf16":
            raise ArgumentError("precision", f"precision='bf16' cannot train this model at this input size on this "
                                f"CPU: {hazard}; available: fp32 (or a larger image size)")
        return "fp32", f"{caps.bf16_check}, but {hazard}"
    if asked != "auto":
        return check_precision(caps, asked), "asked for"
    reduced = reduced_precision(caps)
    if amp:
        if caps.device == "cuda":  # what amp=True always meant on a GPU
            return "fp16", "amp=True (deprecated) means the GPU's fp16 autocast with a gradient scaler"
        if reduced is None:
            return "fp32", f"amp=True (deprecated) asked for reduced precision, but {caps.bf16_check}: no native bf16"
        return reduced, f"amp=True (deprecated) means the CPU's bf16 autocast ({caps.bf16_check})"
    if caps.device == "cuda":
        if reduced == "bf16":
            return "bf16", f"{caps.bf16_check}: bf16 autocast keeps fp32's range (no loss scaling)"
        return "fp16", f"{caps.bf16_check}: fp16 autocast with a gradient scaler"
    if reduced is None:
        return "fp32", f"{caps.bf16_check}: emulated bf16 would be slower than fp32"
    if timed is None:
        return "bf16", f"{caps.bf16_check}: oneDNN runs convolutions and matmuls in native bf16"
    fp32, bf16 = timed("fp32"), timed("bf16")
    if not (fp32 and bf16):  # the model could not run a step: its error will come when training starts
        return "bf16", f"{caps.bf16_check} (no step could be timed)"
    if bf16 < BF16_MARGIN * fp32:
        return "bf16", (f"{caps.bf16_check} and a timed step is faster in bf16 ({_ms(bf16)} against {_ms(fp32)} "
                        "in fp32)")
    return "fp32", (f"{caps.bf16_check}, but a timed step is not {1 - BF16_MARGIN:.0%} faster in bf16 ({_ms(bf16)} "
                    f"against {_ms(fp32)} in fp32): at this size autocast's casts outweigh the faster convolutions")


def decide_speed(caps: Capabilities, *, precision: str = "auto", channels_last: bool | None = None,
                 compile: bool | None = None, amp: bool = False, has_conv: bool = True, remaining_steps: int = 0,
                 step_seconds: float | Callable[[str, bool], float] | None = None,
                 compile_seconds: float = 0.0, bf16_hazard: str = "") -> SpeedChoice:
    """The speed settings for a run on ``caps`` (module docstring: the rules).

    ``precision`` is ``"auto"`` or one of :data:`PRECISIONS`; ``channels_last`` and ``compile`` are
    None (auto) or a bool; ``amp`` is the deprecated switch (auto precision -> the device's reduced
    one). ``step_seconds`` is the eager step's time (for the compile break-even), or a function of
    (precision, channels_last) that measures it, called (once per setting) only where a rule needs it:
    auto precision on a CPU with native bf16 times fp32 against bf16, the break-even the chosen one.
    ``bf16_hazard`` (:func:`bf16_hazard`) names a layer whose bf16 training is wrong on a CPU: auto
    then keeps fp32 and an explicit bf16 is refused. Raises
    :class:`~sepconv._util.checks.ArgumentError` for a precision the machine cannot run and for
    ``compile=True`` where torch.compile is unavailable.
    """
    if channels_last is None:
        layout = bool(has_conv)
        layout_why = ("the model has 2-D convolutions: NHWC is the layout of oneDNN's and cuDNN's fast kernels"
                      if has_conv else "the model has no 2-D convolution")
    else:
        layout, layout_why = bool(channels_last), "asked for"
    times: dict[str, float] = {}

    def timed(precision: str) -> float | None:  # each setting measured once
        if precision not in times:
            times[precision] = step_seconds(precision, layout)
        return times[precision]

    chosen, why = _precision(caps, precision, amp, timed if callable(step_seconds) else None, bf16_hazard)

    def available() -> tuple[bool, str]:
        return compile_support(caps.device) if caps.compile is None else (caps.compile, caps.compile_check)

    if compile is True:
        ok, missing = available()
        if not ok:
            raise ArgumentError("compile", f"compile=True but torch.compile is unavailable here ({missing}); "
                                "train without it")
        return SpeedChoice(chosen, layout, True, why, layout_why, "asked for")
    if compile is False:
        return SpeedChoice(chosen, layout, False, why, layout_why, "asked off")
    if caps.compile is False:
        return SpeedChoice(chosen, layout, False, why, layout_why, f"unavailable: {caps.compile_check}")
    if remaining_steps <= 0:
        return SpeedChoice(chosen, layout, False, why, layout_why, "no steps left to train")
    seconds = timed(chosen) if callable(step_seconds) else step_seconds
    if seconds is None or not seconds > 0:
        return SpeedChoice(chosen, layout, False, why, layout_why, "no step time to weigh compiling against")
    fraction = COMPILE_SAVING[caps.device]
    saved = remaining_steps * fraction * seconds
    on = saved > compile_seconds
    rule = (f"{remaining_steps} steps x {fraction:.0%} of a {1000 * seconds:.0f} ms step = {saved:.0f} s saved "
            f"{'>' if on else '<='} ~{compile_seconds:.0f} s to compile (break-even at "
            f"{compile_seconds / (fraction * seconds):.0f} steps)")
    if on:
        ok, missing = available()
        if not ok:
            return SpeedChoice(chosen, layout, False, why, layout_why,
                               f"unavailable: {missing}; it would pay off: {rule}")
    return SpeedChoice(chosen, layout, on, why, layout_why, rule)


def bf16_hazard(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> str:
    """The first convolution whose bf16 weight gradient oneDNN gets wrong at ``input_shape``, as a
    sentence (empty: none). A strided convolution over a 1-pixel-wide input (a 16 px image at
    stride 16, say) has kernel taps that see only padding; their gradient is 0, but oneDNN's bf16
    backward-weights kernel (torch 2.13, this CPU) returns uninitialised memory there, NaN at
    times, which the optimizer then writes into the weights (fp32 is right). One forward of a
    single zero image in eval mode finds such layers; the model is left as it was."""
    found: list[str] = []
    names = {m: n for n, m in model.named_modules()}

    def check(module: nn.Module, args: tuple) -> None:
        h, w = args[0].shape[-2:]
        sh, sw = module.stride
        if not found and ((h == 1 and sh > 1) or (w == 1 and sw > 1)):
            found.append(f"oneDNN's bf16 weight gradient of {names[module] or 'the model'} (stride {sh}x{sw} on a "
                         f"{h}x{w} input) comes back non-finite here")

    hooks = [m.register_forward_pre_hook(check) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with eval_mode(model), torch.no_grad(), torch.random.fork_rng(devices=[]):
            model(torch.zeros((1, *input_shape[1:]), device=device))
    finally:
        for h in hooks:
            h.remove()
    return found[0] if found else ""


def estimate_compile_seconds(model: nn.Module, device: str) -> float:
    """torch.compile's estimated one-off cost for ``model``'s training step (:data:`COMPILE_SECONDS`)."""
    base, per_leaf = COMPILE_SECONDS[device]
    leaves = sum(1 for m in model.modules() if next(m.children(), None) is None)
    return base + per_leaf * leaves


def autocast_for(device: torch.device | str, precision: str) -> Any:
    """The autocast context of ``precision`` on ``device`` (none for fp32). Autocast leaves
    BatchNorm, softmax and the losses in fp32, as torch does; parameters stay fp32."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[precision])


def l1_to_zero(output: torch.Tensor) -> torch.Tensor:
    """The L1 loss of ``output`` against zeros: a super-resolution step's loss for timing it."""
    return output.float().abs().mean()


def measure_step_seconds(model: nn.Module, input_shape: tuple[int, ...], precision: str, channels_last: bool,
                         device: torch.device, *, repeats: int = 2,
                         loss: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """The median time of an eager forward + backward of a copy of ``model`` on a zero batch of
    ``input_shape``, after one warm-up (which also fills oneDNN's and cuDNN's primitive caches the
    run then uses). The copy keeps ``model``'s BatchNorm statistics untouched and the global RNGs
    are forked, so measuring changes nothing the run would see. The loss is cross-entropy against
    class 0, or ``loss(output)`` (:func:`l1_to_zero` for a super-resolution model)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        twin = copy.deepcopy(model).train()
        if channels_last:
            twin = twin.to(memory_format=torch.channels_last)
        x = torch.zeros(input_shape, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.zeros(input_shape[0], dtype=torch.long, device=device)
        times = []
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            began = time.perf_counter()
            with autocast_for(device, precision):
                logits = twin(x)
            (F.cross_entropy(logits.float(), y) if loss is None else loss(logits)).backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:
                times.append(time.perf_counter() - began)
            twin.zero_grad(set_to_none=True)
    return statistics.median(times)


def legacy_choice(config: dict[str, Any], device: str) -> SpeedChoice:
    """The settings of a run an older sepconv started (its ``state.json`` has no ``speed``): fp32,
    or its ``amp`` (fp16 on CUDA, bf16 on CPU), its ``channels_last``, no torch.compile."""
    amp, layout = bool(config.get("amp")), bool(config.get("channels_last"))
    note = "a run started by sepconv before speed settings were recorded: its"
    precision = ("fp16" if device == "cuda" else "bf16") if amp else "fp32"
    return SpeedChoice(precision, layout, False, f"{note} amp={amp}", f"{note} channels_last={layout}",
                       f"{note} training never compiled")
