"""The papers' design choices as experiments on the bundled digits (issue 17): one table per claim.

The papers give reasons as well as tables; each claim below is trained, counted and timed here, with
everything else held fixed, and ends in a verdict in words. The bundled digits (1,797 8x8 greyscale
images upscaled to ``--img-size``, stratified 80/20: 1,438 training, 359 validation) are easy: where the
settings' accuracies lie within each other's seed-to-seed spread the verdict says that the data cannot
separate them, rather than reading a winner into noise.

Claims (the stated grid; ``--tiny`` shrinks every axis to run end to end in seconds):

1. ``linear_bottleneck`` - MobileNetV2's projection is linear (Sandler et al. 2018, Section 3.2 and
   Fig. 6(a)): ``mobilenet_v2:project_act=None`` against ``project_act=relu6``.
2. ``expansion`` - the expansion factor t (MobileNetV2, Sections 3.3 and 6.1): ``expand_ratio`` 1, 2, 6.
3. ``relu6_int8`` - ReLU6 "because of its robustness when used with low-precision computation"
   (MobileNets, Howard et al. 2017, Section 3.1; MobileNetV2, Section 3.1): MobileNetV1 trained with ReLU
   and with ReLU6, each quantized to int8 (:func:`sepconv.engines.quantize.quantize`: ONNX Runtime, QDQ,
   per-channel weights, min/max calibration on training images) and compared with its fp32 self on the
   validation images: top-1 agreement, accuracy drop (points), logit SQNR (dB).
4. ``grouping`` - filter groups as structured sparsity (Ioannou et al. 2017, *Deep Roots*, arXiv
   1605.06489; AlexNet's two groups): Conv MobileNet (``mobilenet_v1:conv=standard``) against its root
   modules at the same width (``groups=4``: 3x3 conv in 4 groups, then a 1x1).
5. ``deeper_separable`` - at the parameters of a standard-conv network a separable one can be deeper
   (MobileNets, Section 3.1 and Table 4): Conv MobileNet against MobileNetV1's separable layers, each of
   Table 1's rows repeated until the parameter count is the standard network's (the repeats added at
   stride 1; a model of this script, registered as ``design_choices_deep_separable``).
6. ``dead_kernels`` - dead depthwise kernels in MobileNetV1 (reported by users; the motivation for V2's
   changes): learning rate x1 and x10, depthwise weight decay 0 and 4e-5 (TensorFlow slim's MobileNet
   L2 value), ReLU and ReLU6, width 0.25 and 1.0, two seeds; SGD with Nesterov momentum (coupled L2, as
   the TensorFlow recipes, not AdamW's decoupled decay). A kernel is dead when its L2 norm is below
   ``sepconv inspect``'s threshold (:func:`sepconv.train.health.inspect_model`'s ``tol``, 1e-3); the
   table also gives the channels ``inspect`` calls inactive (the ReLU after the BN almost never
   positive: beta + 3|gamma| <= 0), the precursor of a dead kernel.

Recipe (every claim but 6): AdamW, lr 0.005, batch 64, 10 epochs, 32 px, label smoothing 0.1, one epoch
of warm-up then cosine; fp32 and no torch.compile and NCHW, pinned (not the machine's automatic
choices), one thread; width 0.25 for MobileNetV1 and Conv MobileNet, 0.5 for MobileNetV2; 3 seeds.
Accuracy is the last epoch's validation top-1, mean +- sample standard deviation over the seeds (n in
brackets).
Parameters and MACs (Conv2d + Linear multiply-accumulates, :func:`sepconv.cost.analyze`) are those of
the trained model at its input, ``(1, 1, 32, 32)``. Latency: eval mode, batch 1, fp32 eager, median of
``--repeats`` calls after warm-up, the claim's models interleaved call by call, on ``--threads`` (1).

Runs go seed by seed across all claims (every setting's first seed, then every second seed, ...), so
a ``--budget-minutes`` cut leaves every setting with fewer seeds rather than whole claims missing; runs
past the budget are reported as not run. The default grid is 59 runs (claims share the runs they have in
common); from single runs timed here, about 35 minutes on one thread of an idle core, within the default
budget of 50 minutes (the issue's ceiling is 60 on 2 cores). One thread by default: these small models
gain little from a second, and on a shared machine two threads' OpenMP barriers made runs several times
slower (measured: one MobileNetV2 epoch 4 s on one thread, 31 s on two, at a load average of 5).

Usage::

    python benchmarks/design_choices.py                   # the stated grid -> benchmarks/results/design_choices/
    python benchmarks/design_choices.py --tiny --out /tmp/dc   # seconds: every table, nothing meaningful
    python benchmarks/design_choices.py --claims linear_bottleneck,expansion --seeds 3 --budget-minutes 10
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sepconv._util.io import atomic_write_text
from sepconv._util.runtime import cores, cpu_name, load_average, threads_set_to
from sepconv.cost import analyze
from sepconv.layers import DepthwiseSeparableBlock
from sepconv.layers._input import checked
from sepconv.models import create_model, list_models, register_model
from sepconv.models._base import Body, Classifier, activation, batch_norm, check_width, first_conv
from sepconv.models.mobilenet_v1 import MOBILENET_V1, STEM
from sepconv.train import TrainConfig, Trainer
from sepconv.train.health import inspect_model

RESULTS = Path(__file__).resolve().parent / "results" / "design_choices"
# `sepconv inspect`'s threshold: a depthwise kernel is dead below this L2 norm (one source: its default)
DEAD_TOL = inspect.signature(inspect_model).parameters["tol"].default
DEEP = "design_choices_deep_separable"


@dataclass(frozen=True)
class Recipe:
    """What every run shares, and the grid's sizes."""

    epochs: int = 10
    img_size: int = 32
    batch_size: int = 64
    lr: float = 0.005  # AdamW (claims 1-5); claim 6 uses SGD's default, 0.1 x batch / 256, times its lr_scale
    seeds: int = 3
    grid_seeds: int = 2
    width: float = 0.25  # MobileNetV1, Conv MobileNet and the deep separable net
    v2_width: float = 0.5
    grid_widths: tuple[float, ...] = (0.25, 1.0)
    grid_lr_scales: tuple[float, ...] = (1, 10)
    grid_dw_weight_decays: tuple[float, ...] = (0.0, 4e-5)
    grid_acts: tuple[str, ...] = ("relu", "relu6")
    most_repeats: int = 64  # claim 5: the deep separable net's rows are repeated at most this often
    repeats: int = 30  # latency: timed calls per model
    calibration: int = 256  # int8: training images for the activation ranges


# Every claim and column, nothing meaningful: one epoch of 2 steps at 16 px, one seed, the grid's two
# learning rates only, the deep separable net's rows doubled rather than matched to the parameters.
TINY = Recipe(epochs=1, img_size=16, batch_size=512, seeds=1, grid_seeds=1, v2_width=0.35, grid_widths=(0.25,),
              grid_dw_weight_decays=(4e-5,), grid_acts=("relu6",), most_repeats=2, repeats=3, calibration=32)


@dataclass(frozen=True)
class Run:
    """One training configuration (without its seed): a model spec and what the recipe changes."""

    model: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    optimizer: str = "adamw"
    lr_scale: float = 1.0
    dw_weight_decay: float = 0.0

    @property
    def spec(self) -> str:
        return self.model + (":" + ",".join(f"{k}={v}" for k, v in self.kwargs) if self.kwargs else "")


@dataclass(frozen=True)
class Setting:
    label: str
    run: Run


@dataclass
class Outcome:
    """One trained run: its accuracy and what the claims probe on it."""

    acc: float | None = None
    seconds: float | None = None
    dead: float | None = None  # fraction of depthwise kernels with L2 norm < DEAD_TOL
    inactive: float | None = None  # fraction of depthwise channels inspect calls inactive
    int8: dict[str, float] | None = None  # agreement, drop (points), sqnr_db
    skipped: str | None = None


@dataclass
class Claim:
    key: str
    claim: str  # the short name in the table's first column
    statement: str  # what the paper says, with its section
    settings: list[Setting]
    seeds: int
    columns: tuple[str, ...] = ()  # extra columns: "int8" or "dead"
    verdict: Callable[[Claim, list[dict[str, Any]]], str] = lambda claim, rows: ""
    rows: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- models

class DeepSeparable(Classifier):
    """MobileNetV1 (Howard et al. 2017, Table 1) with every row repeated ``repeats`` times (the repeats
    at stride 1, width kept): claim 5's separable network made as deep as a standard one's parameters
    allow. ``repeats=1`` is MobileNetV1."""

    def __init__(self, repeats: int = 1, width_mult: float = 1.0, num_classes: int = 1000, in_chans: int = 3,
                 act: str = "relu") -> None:
        alpha = check_width(width_mult, narrowest=STEM)
        cna: dict[str, Any] = {"norm_layer": batch_norm(1e-5), "act_layer": activation(act), "padding": "same"}
        width = int(STEM * alpha)
        stem, blocks, strides, channels = first_conv(in_chans, width, **cna), [], [2], [width]
        for row in MOBILENET_V1:
            out = int(row.out * alpha)
            for i in range(repeats):
                blocks.append(DepthwiseSeparableBlock(width, out, row.s if i == 0 else 1, **cna))
                strides.append(row.s if i == 0 else 1)
                channels.append(out)
                width = out
        super().__init__(Body(stem, blocks, strides, channels), num_classes, 0.0)
        self.init_head(width)
        self.init_weights()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in_chans, H, W)
        return self.blocks(self.stem(x))  # (B, 1024a, H/32, W/32)


def deep_separable(repeats: int = 1, width_mult: float = 1.0, num_classes: int = 1000, in_chans: int = 3,
                   act: str = "relu") -> nn.Module:
    """:class:`DeepSeparable` (registered for :class:`~sepconv.train.Trainer`, which builds by name)."""
    return DeepSeparable(repeats, width_mult, num_classes, in_chans, act)


if DEEP not in list_models():  # imported twice (a test, then the script): registered once
    register_model(DEEP, paper="Howard et al. 2017, MobileNets, Table 1, each row repeated "
                   "(benchmarks/design_choices.py)", input_size=32)(deep_separable)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matching_repeats(width: float, classes: int = 10, channels: int = 1, most: int = 64) -> int:
    """The repeats (at most ``most``) whose separable network's parameters come closest to Conv
    MobileNet's at ``width``: the count grows by the same blocks with every repeat, so two builds tell."""
    with torch.device("meta"):
        target = n_params(create_model("mobilenet_v1", conv="standard", width_mult=width, num_classes=classes,
                                       in_chans=channels))
        once, twice = (n_params(DeepSeparable(r, width, classes, channels)) for r in (1, 2))
    best = 1 + round((target - once) / (twice - once))
    return max(1, min(most, best))


# ---------------------------------------------------------------------------------------------- claims

def claims(recipe: Recipe) -> list[Claim]:
    """The six claims of the module docstring, with their settings."""
    v1, v2, w = "mobilenet_v1", "mobilenet_v2", recipe.width
    linear = Run(v2, (("width_mult", recipe.v2_width),))
    std = Run(v1, (("width_mult", w), ("conv", "standard")))
    grid = [Setting(f"lr x{scale:g}, dw wd {wd:g}, {act}, width {width:g}",
                    Run(v1, (("width_mult", width), ("act", act)), "sgd", scale, wd))
            for width in recipe.grid_widths for act in recipe.grid_acts for wd in recipe.grid_dw_weight_decays
            for scale in recipe.grid_lr_scales]
    repeats = matching_repeats(w, most=recipe.most_repeats)
    return [
        Claim("linear_bottleneck", "linear bottleneck",
              "MobileNetV2 Section 3.2 and Fig. 6(a): a ReLU6 after the 1x1 projection loses information in the "
              "narrow layers; the linear projection trains to higher accuracy",
              [Setting("linear projection (paper)", linear),
               Setting("ReLU6 projection", dataclasses.replace(linear, kwargs=linear.kwargs + (("project_act",
                                                                                                "relu6"),)))],
              recipe.seeds, verdict=verdict_pair(better="linear projection (paper)")),
        Claim("expansion", "expansion t",
              "MobileNetV2 Sections 3.3 and 6.1: expansion t = 6 throughout (smaller networks are better served "
              "by slightly smaller t); t = 1 removes the expanding 1x1",
              [Setting(f"t = {t}" + (" (paper)" if t == 6 else ""),
                       linear if t == 6 else dataclasses.replace(linear, kwargs=linear.kwargs + (("expand_ratio", t),)))
               for t in (1, 2, 6)],
              recipe.seeds, verdict=verdict_trend),
        Claim("relu6_int8", "ReLU6 for int8",
              "MobileNets Section 3.1 / MobileNetV2 Section 3.1: ReLU6 for its robustness in low-precision "
              "computation; int8 should lose less with ReLU6 than with ReLU",
              [Setting("ReLU", Run(v1, (("width_mult", w), ("act", "relu")))),
               Setting("ReLU6 (paper)", Run(v1, (("width_mult", w), ("act", "relu6"))))],
              recipe.seeds, columns=("int8",), verdict=verdict_int8),
        Claim("grouping", "grouping",
              "Deep Roots (Ioannou et al. 2017, Section 1 and Fig. 4): filter groups (each 3x3 conv in g groups, "
              "then a 1x1) keep accuracy with fewer parameters; AlexNet's two groups did",
              [Setting("ungrouped (Conv MobileNet)", std),
               Setting("root-4 (3x3 in 4 groups + 1x1)",
                       dataclasses.replace(std, kwargs=std.kwargs + (("groups", 4),)))],
              recipe.seeds, verdict=verdict_pair(better="root-4 (3x3 in 4 groups + 1x1)", claim_is="no worse")),
        Claim("deeper_separable", "deeper separable",
              "MobileNets Section 3.1 and Table 4: a depthwise-separable layer costs about 1/8 of a 3x3 conv, so at "
              "the same parameters a separable network can be about 8 times deeper",
              [Setting("standard (Conv MobileNet)", std),
               Setting(f"separable, rows x{repeats} (same params)",
                       Run(DEEP, (("repeats", repeats), ("width_mult", w))))],
              recipe.seeds, verdict=verdict_pair(better=f"separable, rows x{repeats} (same params)",
                                                 claim_is="no worse")),
        Claim("dead_kernels", "dead dw kernels",
              "Reported for MobileNetV1 (Sheng et al. 2018; MobileNets Section 3.2 advise little or no weight decay "
              "on depthwise filters): depthwise kernels collapse to zero, more so with a high learning rate, "
              "weight decay on them and ReLU6",
              grid, recipe.grid_seeds, columns=("dead",), verdict=verdict_dead),
    ]


# ---------------------------------------------------------------------------------------------- running

class Experiments:
    """Trains each distinct (run, seed) once, seed-major across the claims, within the budget."""

    def __init__(self, recipe: Recipe, chosen: list[Claim], budget_s: float, threads: int, log: Callable[[str], None]):
        self.recipe, self.claims, self.budget_s, self.threads, self.log = recipe, chosen, budget_s, threads, log
        self.outcomes: dict[tuple[Run, int], Outcome] = {}
        self.models: dict[Run, nn.Module] = {}  # each run's first seed, for counting and timing
        self.began = time.perf_counter()
        self.costs: dict[Run, tuple[int, int]] = {}  # params, MACs of each run's model

    def wants_int8(self, run: Run) -> bool:
        return any("int8" in c.columns and run in (s.run for s in c.settings) for c in self.claims)

    def order(self) -> list[tuple[Run, int]]:
        keys: list[tuple[Run, int]] = []
        for seed in range(max(c.seeds for c in self.claims)):
            for claim in self.claims:
                for setting in claim.settings:
                    if seed < claim.seeds and (setting.run, seed) not in keys:
                        keys.append((setting.run, seed))
        return keys

    def run_all(self) -> None:
        keys = self.order()
        for i, (run, seed) in enumerate(keys, start=1):
            elapsed = time.perf_counter() - self.began
            if elapsed > self.budget_s:
                self.outcomes[(run, seed)] = Outcome(skipped=f"budget ({self.budget_s / 60:g} min) spent")
                continue
            self.log(f"[{i}/{len(keys)}] {run.spec} ({run.optimizer}, lr x{run.lr_scale:g}, dw wd "
                     f"{run.dw_weight_decay:g}) seed {seed}; {elapsed:.0f} s so far")
            self.outcomes[(run, seed)] = self.train(run, seed)

    def train(self, run: Run, seed: int) -> Outcome:
        r = self.recipe
        config = TrainConfig(run.model, dict(run.kwargs), data="digits", epochs=r.epochs, batch_size=r.batch_size,
                             optimizer=run.optimizer, lr=r.lr if run.optimizer == "adamw" else None,
                             dw_weight_decay=run.dw_weight_decay, img_size=r.img_size, seed=seed, precision="fp32",
                             compile=False, channels_last=False, threads=self.threads, progress=False)
        if run.lr_scale != 1:
            config = dataclasses.replace(config, lr=config.lr * run.lr_scale)
        t0 = time.perf_counter()
        trainer = Trainer(config)
        summary = trainer.fit()
        model = trainer.model.eval()
        health = inspect_model(model, DEAD_TOL)
        channels = sum(h.channels for h in health)
        outcome = Outcome(acc=summary.get("val_acc"), seconds=time.perf_counter() - t0)
        if channels:
            outcome.dead = sum(h.dead for h in health) / channels
            outcome.inactive = sum(h.inactive or 0 for h in health) / channels
        if self.wants_int8(run):
            outcome.int8 = self.quantized(trainer, model)
        if seed == 0:
            self.models[run] = model
        return outcome

    def quantized(self, trainer: Trainer, model: nn.Module) -> dict[str, float]:
        """int8 against fp32 on the validation images (calibrated on training images)."""
        from sepconv.engines.quantize import quantize

        calibration = trainer.aug.eval(trainer.data.train.images[: self.recipe.calibration]).contiguous()
        held_out = trainer.aug.eval(trainer.data.val.images).contiguous()
        with threads_set_to(self.threads):
            report = quantize(model, calibration, held_out=held_out, labels=trainer.data.val.labels,
                              data_name="digits validation").report
        return {"agreement": report.agreement, "drop": report.accuracy_drop, "sqnr_db": report.sqnr_db}

    def tabulate(self) -> None:
        """Fill every claim's rows: per setting its seeds' figures, counts and latency."""
        size = self.recipe.img_size
        for claim in self.claims:
            models = {s.label: self.models.get(s.run) for s in claim.settings}
            latency = interleaved_latency({k: m for k, m in models.items() if m is not None}, (1, 1, size, size),
                                          self.recipe.repeats, self.threads)
            claim.rows = []
            for s in claim.settings:
                outcomes = [self.outcomes.get((s.run, seed), Outcome(skipped="not run")) for seed in range(claim.seeds)]
                done = [o for o in outcomes if o.skipped is None]
                model = models[s.label]
                if model is not None and s.run not in self.costs:
                    report = analyze(model, (1, 1, size, size))
                    self.costs[s.run] = (report.params, report.macs)
                params, macs = self.costs.get(s.run, (None, None))
                row = {"claim": claim.claim, "setting": s.label, "spec": s.run.spec, "optimizer": s.run.optimizer,
                       "lr_scale": s.run.lr_scale, "dw_weight_decay": s.run.dw_weight_decay,
                       "seeds_run": len(done), "seeds_asked": claim.seeds, "acc": summary([o.acc for o in done]),
                       "params": params, "macs": macs,
                       "latency_ms": latency.get(s.label), "train_s": summary([o.seconds for o in done])}
                if "int8" in claim.columns:
                    row.update({k: summary([o.int8[k] for o in done if o.int8])
                                for k in ("agreement", "drop", "sqnr_db")})
                if "dead" in claim.columns:
                    row.update(dead=summary([o.dead for o in done if o.dead is not None]),
                               inactive=summary([o.inactive for o in done if o.inactive is not None]))
                claim.rows.append(row)


def summary(values: Sequence[float | None]) -> dict[str, Any] | None:
    """Mean, sample standard deviation (0 for one value), min, max and n of ``values``."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None
    return {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs), "n": len(xs)}


def interleaved_latency(models: dict[str, nn.Module], shape: tuple[int, ...], repeats: int, threads: int,
                        warmup: int = 3) -> dict[str, float]:
    """Median milliseconds per call of each model (eval, batch 1, fp32 eager), called in turn so that
    they share the machine's load."""
    if not models:
        return {}
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    samples: dict[str, list[float]] = {k: [] for k in models}
    with threads_set_to(threads), torch.inference_mode():
        for i in range(warmup + repeats):
            for name, model in models.items():
                t0 = time.perf_counter()
                model.eval()(x)
                if i >= warmup:
                    samples[name].append(1e3 * (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in samples.items()}


# ---------------------------------------------------------------------------------------------- verdicts

def _acc(row: dict[str, Any]) -> tuple[float, float, int] | None:
    a = row["acc"]
    return None if a is None else (100 * a["mean"], 100 * a["std"], a["n"])


def separated(a: tuple[float, float, int], b: tuple[float, float, int]) -> bool | None:
    """Whether two accuracies (mean, std, n; points) differ by more than twice their larger spread
    (None: one seed each, no spread to judge by)."""
    if a[2] < 2 or b[2] < 2:
        return None
    return abs(a[0] - b[0]) > 2 * max(a[1], b[1], 0.1)


def _missing(rows: list[dict[str, Any]]) -> str | None:
    short = [r["setting"] for r in rows if r["seeds_run"] < r["seeds_asked"]]
    if any(r["acc"] is None for r in rows):
        return "not every setting ran (budget spent): no verdict"
    return f" (fewer seeds than asked for: {', '.join(short)})" if short else None


def verdict_pair(better: str, claim_is: str = "better") -> Callable[[Claim, list[dict[str, Any]]], str]:
    """A two-setting claim: the paper's setting (``better``) is ``claim_is`` ("better" or "no worse")."""

    def verdict(claim: Claim, rows: list[dict[str, Any]]) -> str:
        note = _missing(rows)
        if note and not note.startswith(" "):
            return note
        paper = next(r for r in rows if r["setting"] == better)
        other = next(r for r in rows if r["setting"] != better)
        a, b = _acc(paper), _acc(other)
        diff = a[0] - b[0]
        sep = separated(a, b)
        cost = (f"{paper['setting']}: {paper['params']:,} params, {paper['macs'] / 1e6:.2f}M MACs; "
                f"{other['setting']}: {other['params']:,} params, {other['macs'] / 1e6:.2f}M MACs")
        head = f"{paper['setting']} {a[0]:.1f}% against {other['setting']} {b[0]:.1f}% (difference {diff:+.1f} points)"
        if sep is None:
            judged = "one seed each: no spread to judge the difference by"
        elif not sep:
            judged = (f"within the seeds' spread (+-{max(a[1], b[1]):.1f} points): the digits cannot separate the "
                      f"two settings at this budget" + (", which is what the claim needs" if claim_is == "no worse"
                                                          else "; the claim is neither confirmed nor refuted here"))
        elif (diff > 0) or (claim_is == "no worse" and diff >= 0):
            judged = "beyond the seeds' spread, in the paper's direction: the claim holds here"
        else:
            judged = "beyond the seeds' spread, against the paper's direction: the claim does not hold here"
        return f"{head}; {judged}. {cost}.{note or ''}"

    return verdict


def verdict_trend(claim: Claim, rows: list[dict[str, Any]]) -> str:
    note = _missing(rows)
    if note and not note.startswith(" "):
        return note
    accs = [_acc(r) for r in rows]
    parts = ", ".join(f"{r['setting'].split(' (')[0]} {a[0]:.1f}% ({r['macs'] / 1e6:.2f}M MACs)" for r, a in
                      zip(rows, accs))
    best, worst = max(accs, key=lambda a: a[0]), min(accs, key=lambda a: a[0])
    sep = separated(best, worst)
    if sep is None:
        judged = "one seed each: no spread to judge by"
    elif not sep:
        judged = ("every t within the seeds' spread of the others: the digits cannot tell the expansion factors "
                  "apart, while the MACs grow with t")
    else:
        order = [r["setting"].split(" (")[0] for r, _ in sorted(zip(rows, accs), key=lambda p: -p[1][0])]
        judged = (f"best to worst {', '.join(order)}; the extremes differ beyond the seeds' spread"
                  + (": larger t pays here" if order[0] == rows[-1]["setting"].split(" (")[0] else
                     ": the paper's t = 6 is not the best here"))
    return f"{parts}; {judged}.{note or ''}"


def verdict_int8(claim: Claim, rows: list[dict[str, Any]]) -> str:
    note = _missing(rows)
    if note and not note.startswith(" "):
        return note
    relu, relu6 = rows
    if relu["sqnr_db"] is None or relu6["sqnr_db"] is None:
        return "the int8 runs did not complete: no verdict"
    s, s6 = relu["sqnr_db"], relu6["sqnr_db"]
    d, d6 = relu["drop"], relu6["drop"]
    head = (f"int8 logit SQNR: ReLU {s['mean']:.1f} +- {s['std']:.1f} dB, ReLU6 {s6['mean']:.1f} +- "
            f"{s6['std']:.1f} dB; accuracy drop ReLU {d['mean']:+.2f}, ReLU6 {d6['mean']:+.2f} points")
    if s["n"] < 2 or s6["n"] < 2:
        judged = "one seed each: no spread to judge by"
    elif abs(s6["mean"] - s["mean"]) <= 2 * max(s["std"], s6["std"], 0.1):
        judged = ("the SQNRs lie within the seeds' spread: on the digits int8 does not separate ReLU from ReLU6 "
                  "(per-channel weight scales; a per-tensor quantizer may)")
    elif s6["mean"] > s["mean"]:
        judged = "ReLU6 keeps more signal through int8, beyond the seeds' spread: the claim holds here"
    else:
        judged = "ReLU keeps more signal through int8, beyond the seeds' spread: the claim does not hold here"
    return f"{head}; {judged}.{note or ''}"


def verdict_dead(claim: Claim, rows: list[dict[str, Any]]) -> str:
    note = _missing(rows)
    if note and not note.startswith(" "):
        return note
    ran = [r for r in rows if r["dead"] is not None]
    worst = max(ran, key=lambda r: r["dead"]["max"])
    inactive = max(ran, key=lambda r: r["inactive"]["max"])
    if worst["dead"]["max"] == 0:
        head = (f"no setting left a depthwise kernel dead (L2 norm < {DEAD_TOL:g}) in any seed: these short runs do "
                "not reproduce the effect")
    else:
        hit = [r["setting"] for r in ran if r["dead"]["max"] > 0]
        head = (f"dead kernels in {len(hit)} of {len(ran)} settings, most in {worst['setting']} "
                f"({100 * worst['dead']['mean']:.1f}% on average): {'; '.join(hit)}")
    tail = (f"; inactive channels (beta + 3|gamma| <= 0) peak at {100 * inactive['inactive']['mean']:.1f}% "
            f"({inactive['setting']})")
    return f"{head}{tail}.{note or ''}"


# ---------------------------------------------------------------------------------------------- output

COLUMNS = ("claim", "setting", "accuracy % (mean +- sd, n)", "params", "MACs", "latency ms")
EXTRA = {"int8": ("int8 agreement %", "int8 drop (points)", "int8 SQNR dB"),
         "dead": ("dead dw kernels %", "inactive dw channels %")}


def _pm(s: dict[str, Any] | None, scale: float = 1.0, digits: int = 1) -> str:
    if s is None:
        return "not run"
    return f"{scale * s['mean']:.{digits}f} +- {scale * s['std']:.{digits}f} ({s['n']})"


def markdown(claim: Claim, number: int) -> str:
    """The claim's table and verdict, as Markdown."""
    columns = COLUMNS + tuple(c for key in claim.columns for c in EXTRA[key])
    lines = [f"### {number}. {claim.claim} ({claim.key})", "", f"Claim: {claim.statement}.", "",
             "| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in claim.rows:
        cells = [r["claim"], r["setting"], _pm(r["acc"], 100), "-" if r["params"] is None else f"{r['params']:,}",
                 "-" if r["macs"] is None else f"{r['macs']:,}",
                 "-" if r["latency_ms"] is None else f"{r['latency_ms']:.3f}"]
        if "int8" in claim.columns:
            cells += [_pm(r["agreement"], 100), _pm(r["drop"], 1, 2), _pm(r["sqnr_db"])]
        if "dead" in claim.columns:
            cells += [_pm(r["dead"], 100), _pm(r["inactive"], 100)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Verdict: {claim.verdict(claim, claim.rows)}", ""]
    return "\n".join(lines)


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "torch": torch.__version__}
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true",
                   help="every claim with the smallest settings (1 epoch of 2 steps at 16 px, 1 seed, the grid's "
                        "two learning rates only): end to end in seconds, to check the script, not the claims; "
                        "writes nothing unless --out")
    p.add_argument("--budget-minutes", type=float, default=50.0,
                   help="stop starting runs after this many minutes (default 50; the default grid, 59 runs, is "
                        "estimated at about 35 on one idle core); the runs left are reported as not run")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write design_choices.md and design_choices.json here (default "
                        "benchmarks/results/design_choices; with --tiny: nowhere)")
    p.add_argument("--claims", default=None, metavar="A,B",
                   help="only these claims: linear_bottleneck, expansion, relu6_int8, grouping, deeper_separable, "
                        "dead_kernels (default all)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per claim (default 3; the dead-kernel grid: 2)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default 10)")
    p.add_argument("--repeats", type=int, default=None, help="latency: timed calls per model (default 30)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for training and timing (default 1: these small models gain little from more, "
                        "and on a shared machine two threads' OpenMP barriers make runs erratic)")
    p.add_argument("--json", action="store_true", help="print the JSON document instead of the Markdown tables")
    args = p.parse_args(argv)

    recipe = TINY if args.tiny else Recipe()
    if args.seeds is not None:
        recipe = dataclasses.replace(recipe, seeds=args.seeds, grid_seeds=min(args.seeds, Recipe.grid_seeds))
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    if args.repeats is not None:
        recipe = dataclasses.replace(recipe, repeats=args.repeats)
    if min(recipe.seeds, recipe.epochs, recipe.repeats, args.threads) < 1 or not args.budget_minutes > 0:
        p.error("--seeds, --epochs, --repeats, --threads and --budget-minutes must be positive")
    threads = args.threads
    every = claims(recipe)
    if args.claims:
        wanted = [k.strip() for k in args.claims.split(",") if k.strip()]
        unknown = sorted(set(wanted) - {c.key for c in every})
        if unknown:
            p.error(f"--claims: unknown {', '.join(unknown)}; known: {', '.join(c.key for c in every)}")
        every = [c for c in every if c.key in wanted]
    out = Path(args.out) if args.out else (None if args.tiny else RESULTS)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_before = load_average()
    began = time.perf_counter()
    experiments = Experiments(recipe, every, 60 * args.budget_minutes, threads, log)
    experiments.run_all()
    experiments.tabulate()
    seconds = time.perf_counter() - began
    machine = (f"{cpu_name()}, {cores()} cores, {threads} torch threads; 1-minute load average {load_before} before, "
               f"{load_average()} after; {seconds / 60:.1f} minutes")
    header = ["# Design choices on the bundled digits (benchmarks/design_choices.py)", "",
              f"Recipe: {json.dumps(dataclasses.asdict(recipe))}; fp32, no torch.compile, NCHW. "
              f"Dead kernel: depthwise kernel L2 norm < {DEAD_TOL:g} (sepconv inspect's threshold).",
              f"Machine: {machine}. Versions: {json.dumps(versions())}.", ""]
    text = "\n".join(header + [markdown(c, i) for i, c in enumerate(every, start=1)])
    doc = {"recipe": dataclasses.asdict(recipe), "dead_tol": DEAD_TOL, "threads": threads, "seconds": seconds,
           "machine": machine, "versions": versions(), "tiny": args.tiny, "budget_minutes": args.budget_minutes,
           "claims": [{"key": c.key, "claim": c.claim, "statement": c.statement, "seeds": c.seeds, "rows": c.rows,
                       "verdict": c.verdict(c, c.rows)} for c in every]}
    print(json.dumps(doc, indent=2) if args.json else text)
    if out is not None:
        atomic_write_text(out / "design_choices.md", text + "\n")
        atomic_write_text(out / "design_choices.json", json.dumps(doc, indent=2) + "\n")
        log(f"wrote {out / 'design_choices.md'} and {out / 'design_choices.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
