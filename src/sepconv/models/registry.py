"""One registry for every model: ``create_model(name, **kwargs)`` and ``list_models()``.

Each family module registers its builders with :func:`register_model`, giving the paper, the
default input size and the papers' own figures (:class:`PaperFigures`, each with the table it is
printed in and the arguments that build that configuration), so that ``sepconv models`` can print
the paper's number beside ours.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import json
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._util.checks import ArgumentError, positive_int
from .._util.memory import check_fits
from .provenance import Provenance


@dataclass(frozen=True)
class PaperFigures:
    """What a paper prints for one configuration of a model, and where it prints it."""

    source: str  # the paper and table, e.g. "Howard et al. 2017, MobileNets, Table 6"
    params: float | None = None  # as printed (4.2e6 for "4.2M")
    macs: float | None = None  # multiply-accumulates (the papers' "mult-adds")
    kwargs: dict[str, Any] = field(default_factory=dict)  # the configuration; {} is the default one


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model name."""

    name: str
    fn: Callable[..., nn.Module]
    paper: str  # the architecture's paper and table
    input_size: int = 224
    figures: tuple[PaperFigures, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"  # one of TASKS: what the model's input and output mean
    sr_input: str | None = None  # super_resolution only, one of SR_INPUTS: what the model's input is


# classification: an image in, class logits out (num_classes, features_only, ...);
# super_resolution: an image in, the image upscaled by the model's ``scale`` argument out
# (see sepconv.models.superres), with ``in_chans`` channels in and out.
TASKS = ("classification", "super_resolution")
# A super-resolution model's input: the low-resolution image itself (its output is ``scale`` times
# larger), or that image already upscaled by bicubic interpolation to the output's size (SRCNN).
# ``input_size`` is the low-resolution image's side either way.
SR_INPUTS = ("low_resolution", "upsampled")
_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    paper: str,
    input_size: int = 224,
    figures: Sequence[PaperFigures] = (),
    task: str = "classification",
    sr_input: str | None = None,
    **defaults: Any,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``fn`` under ``name``; ``defaults`` are keyword arguments bound at creation.
    ``task`` (one of :data:`TASKS`) says what the model's input and output mean; a
    super-resolution model also states its input (``sr_input``, one of :data:`SR_INPUTS`)."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} must be one of {', '.join(TASKS)}")
    if task == "super_resolution" and sr_input not in SR_INPUTS:
        raise ValueError(f"sr_input={sr_input!r} must be one of {', '.join(SR_INPUTS)} for a super-resolution model")
    if task != "super_resolution" and sr_input is not None:
        raise ValueError(f"sr_input={sr_input!r} applies to super-resolution models only (task={task!r})")

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, fn, paper, input_size, tuple(figures), dict(defaults), task, sr_input)
        return fn

    return wrap


def list_models(task: str | None = None) -> list[str]:
    """Every registered model name, sorted; with ``task``, those of that task only."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task={task!r} must be one of {', '.join(TASKS)}")
    return sorted(name for name, entry in _REGISTRY.items() if task in (None, entry.task))


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(_REGISTRY))}"
        raise ValueError(f"model={name!r} is not a registered model{hint}")
    return _REGISTRY[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with ``kwargs`` (random initialisation, no file read);
    ``model.provenance`` records both (:class:`~sepconv.models.provenance.Provenance`).

    Loading weights (a sepconv checkpoint, torchvision/timm/Keras files) is the resolver's job:
    :func:`sepconv.create_model` (``sepconv.resolve.create_model``) accepts ``weights=``.

    Example::

        >>> create_model("mobilenet_v2", width_mult=0.5, num_classes=10)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 10])
    """
    entry = model_entry(name)
    args = {**entry.defaults, **kwargs}
    accepted = accepted_arguments(entry)
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        given = ", ".join(f"{k}={args[k]!r}" for k in unknown)
        raise ValueError(f"{name}: unknown argument(s) {given} ({name} has no such switch); "
                         f"accepted: {', '.join(accepted)}")
    if IMG_SIZE in args:
        check_img_size(args[IMG_SIZE], args.get("in_chans", 3))
        if IMG_SIZE not in builder_arguments(entry):  # the resolution multiplier: the input, not the network
            del args[IMG_SIZE]
    check_weights_fit(entry, args, kwargs)
    model = entry.fn(**args)
    model.provenance = Provenance(name, kwargs)
    return model


def check_weights_fit(entry: ModelEntry, args: dict[str, Any], given: dict[str, Any]) -> int:
    """Build the model on the ``meta`` device (shapes only, no memory) and refuse, in one line, one
    whose parameters and buffers cannot fit in the memory available
    (:func:`sepconv._util.memory.check_fits`) — ``num_classes=100000000000`` or ``width_mult=1e9``
    would otherwise die inside the allocator. Returns the bytes the weights need. A builder that
    cannot run on ``meta`` is not checked here (the real build still is by the allocator)."""
    numeric = {k: v for k, v in given.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    defaults = argument_defaults(entry)

    def growth(key: str) -> float:
        base = defaults.get(key)
        return abs(numeric[key]) / abs(base) if isinstance(base, (int, float)) and base else abs(numeric[key])

    argument = max(numeric, key=growth) if numeric else "model"
    shown = ",".join(f"{k}={v}" for k, v in given.items())
    what = f"{entry.name}{':' + shown if shown else ''}: its weights"
    try:
        with torch.device("meta"):
            probe = entry.fn(**args)
    except (NotImplementedError, RuntimeError) as err:
        if "overflow" in str(err).lower():  # a tensor too large even to describe
            raise ArgumentError(argument, f"{what} are too large to be stored ({' '.join(str(err).split())})") \
                from None
        return 0
    nbytes = sum(t.numel() * t.element_size() for t in itertools.chain(probe.parameters(), probe.buffers()))
    check_fits(nbytes, f"{what} ({sum(p.numel() for p in probe.parameters()):,} parameters)", argument=argument)
    return nbytes


# A classification model's default input side: MobileNets' resolution multiplier rho (Howard et al.
# 2017, Section 4.2: rho = img_size / 224) lives in the input, so every classification model accepts
# it, keeps it in its provenance and leaves its network as it is; the resolver's input shape (the one
# every command uses) reads it. A family whose network depends on it takes it itself: MobileFaceNet
# sizes its GDC kernel with it.
IMG_SIZE = "img_size"


# The widest map a zoo network keeps at its input's full size or half of it (a stem's 64 channels at
# stride 1, or 32 at stride 2): with the input, what one image at ``img_size`` needs at the least.
WIDEST_FULL_SIZE_MAP = 64


def check_img_size(img_size: Any, in_chans: Any = 3) -> int:
    """``img_size`` as a positive int whose input image and first feature map (fp32, batch 1) fit in
    memory: every command builds an input of that size (:func:`sepconv.resolve.default_input_shape`),
    so ``img_size=100000`` is refused here in one line rather than in the allocator."""
    positive_int(IMG_SIZE, img_size)
    channels = in_chans if isinstance(in_chans, int) and not isinstance(in_chans, bool) and in_chans > 0 else 3
    check_fits(4 * (channels + WIDEST_FULL_SIZE_MAP) * img_size**2,
               f"img_size={img_size}: one input image and its first feature map", argument=IMG_SIZE)
    return img_size


def takes_img_size(entry: ModelEntry) -> bool:
    """Whether ``img_size`` is one of the model's arguments: every classification model's (a
    super-resolution model's input side is its training patch's business)."""
    return entry.task == "classification"


def accepted_arguments(entry: ModelEntry) -> list[str]:
    """Keyword arguments a model accepts: the builder's own and, for a ``**kwargs`` builder, the
    keyword parameters of every class it may return (its return annotation, a class or a union);
    ``img_size`` last for a classification model whose builder does not take it (:data:`IMG_SIZE`)."""
    names = builder_arguments(entry)
    return names + [IMG_SIZE] if takes_img_size(entry) and IMG_SIZE not in names else names


def builder_arguments(entry: ModelEntry) -> list[str]:
    """The keyword arguments the builder itself takes (for a ``**kwargs`` builder, those of the
    classes it returns too)."""
    sig = inspect.signature(entry.fn)
    if inspect.Parameter.VAR_KEYWORD not in {p.kind for p in sig.parameters.values()}:
        return list(sig.parameters)
    return list(builder_defaults(entry))


def argument_defaults(entry: ModelEntry) -> dict[str, Any]:
    """The default of every keyword argument the model accepts, with the entry's bound defaults;
    a classification model's ``img_size`` defaults to its registry input size."""
    found = builder_defaults(entry)
    return {**found, IMG_SIZE: entry.input_size, **entry.defaults} if takes_img_size(entry) and IMG_SIZE not in found \
        else found


def builder_defaults(entry: ModelEntry) -> dict[str, Any]:
    """The defaults of the builder's own keyword arguments (and of the classes a ``**kwargs`` builder
    returns), with the entry's bound defaults: what the builder itself is called with."""
    signatures = [inspect.signature(entry.fn)]
    if inspect.Parameter.VAR_KEYWORD in {p.kind for p in signatures[0].parameters.values()}:
        returned = typing.get_type_hints(entry.fn)["return"]  # a class, or a union of them
        # the classes' arguments first (the model's own), then the builder's (features_only, ...)
        signatures = [inspect.signature(cls) for cls in typing.get_args(returned) or (returned,)] + signatures
    found: dict[str, Any] = {}
    for sig in signatures:
        for n, p in sig.parameters.items():
            if p.default is not inspect.Parameter.empty and n != "self" and n not in found:
                found[n] = p.default
    return {**found, **entry.defaults}


# Arguments that change neither the parameter count nor the MACs: a paper's figures still apply.
COUNT_NEUTRAL = frozenset({"drop_rate", "bn_eps"})


def paper_figures(name: str, kwargs: dict[str, Any]) -> PaperFigures | None:
    """The paper's figures for the configuration ``kwargs`` builds, if a paper prints them.

    Configurations are compared after filling in every default, so ``width_mult=0.50`` finds the
    figures registered for ``width_mult=0.5``, and ``width_mult=1.0`` those of the default model.
    """
    entry = model_entry(name)
    defaults = argument_defaults(entry)

    def config(overrides: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in {**defaults, **overrides}.items() if k not in COUNT_NEUTRAL}

    wanted = config(kwargs)
    return next((f for f in entry.figures if config(f.kwargs) == wanted), None)


PYTHON_LITERALS = {"True": True, "False": False, "None": None}


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"mobilenet_v1:width_mult=0.5,num_classes=10"`` -> (name, kwargs); values parsed as JSON
    where they parse (numbers, true/false, null, lists; Python's True/False/None too), else kept
    as strings (``conv=standard``; ``NaN`` and ``Infinity`` too, which no argument accepts)."""
    name, _, rest = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, _split_items(rest)):
        key, eq, value = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ValueError(f"model spec {spec!r}: {item!r} must be key=value")
        if value.strip() in PYTHON_LITERALS:
            kwargs[key.strip()] = PYTHON_LITERALS[value.strip()]
            continue
        try:
            kwargs[key.strip()] = json.loads(value, parse_constant=_no_constant, parse_float=_finite)
        except (json.JSONDecodeError, RecursionError):
            kwargs[key.strip()] = value
        except ValueError:  # int() refusing a number of thousands of digits
            raise ValueError(f"model spec {_short(spec)}: {key.strip()}={_short(value.strip())} is too long a "
                             "number") from None
    return name.strip(), kwargs


def _short(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit - 10] + "...") + f" ({len(text)} characters)"


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a finite number", name, 0)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        _no_constant(text)
    return value


def _split_items(text: str) -> list[str]:
    """Split ``k=v,k=v`` at the commas outside brackets, so that ``out_indices=[1,2]`` stays whole."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch in "[(") - (ch in "])")
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    return items + [text[start:]]
