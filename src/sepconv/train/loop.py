"""The training loop: ``Trainer(config).fit()``, and ``evaluate`` for a trained model.

One epoch: the training split in a permutation drawn from ``(seed, epoch)``, cut into global
batches of ``batch_size`` (the last partial batch dropped), each augmented on the fly
(:mod:`sepconv.train.augment`), forward in the run's precision and layout (bf16 or fp16 autocast,
channels_last, torch.compile: chosen for the machine by :mod:`sepconv.train.speed` and recorded),
cross-entropy (in fp32) with label smoothing (Szegedy et al. 2016,
*Rethinking the Inception Architecture*, Section 7), an optimizer step and an LR-schedule step
(:mod:`sepconv.train.optim`), then the EMA update. After the epoch: validation (of the EMA
weights too, in the same autocast as training; metrics in fp32), metrics files, and a checkpoint
(:mod:`sepconv.train.state`).

A model registered with ``task="super_resolution"`` trains in the same loop on photographs
(:mod:`sepconv.train.superres`): random patches instead of images, an L1 loss instead of
cross-entropy, PSNR/SSIM on the held-out photos against bicubic interpolation instead of accuracy;
``img_size`` is then the HR patch side (default 48).

Everything random in a step comes from ``(seed, epoch, sample index)`` or from the global RNGs
saved in the checkpoint, so ``--resume`` continues bit for bit: a run stopped after any
checkpoint and resumed ends with the same weights as one that never stopped (the resumed run
reuses the speed settings its start chose, whatever the machine says then).

Example::

    >>> config = TrainConfig("mobilenet_v2", model_kwargs={"width_mult": 0.5}, data="digits", epochs=30)
    >>> summary = Trainer(config).fit()  # doctest: +SKIP
    >>> summary["val_acc"] > 0.97  # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
import warnings
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from .._util.checks import ArgumentError
from .._util.io import check_output
from .._util.runtime import eval_mode, threads_set_to
from ..data.datasets import (
    FolderImages,
    ImageData,
    TensorImages,
    UnreadableImage,
    load_data,
)
from ..data.photos import SRData, load_sr_data
from ..models.registry import argument_defaults, model_entry
from ..resolve import create_model
from . import speed
from .augment import Augment
from .auxiliary import WithAuxiliary, aux_weights, auxiliary_loss
from .distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast_object,
    cleanup,
    device_for,
    setup,
    wrap,
)
from .metrics import write_metrics
from .optim import OPTIMIZERS, WarmupCosine, build_optimizer, ema_model
from .state import STATE_FILE, load_checkpoint, prune, read_state, save_checkpoint
from .superres import PatchSlots, SuperResolution, evaluate_images

__all__ = ["DEFAULTS", "TrainConfig", "Trainer", "evaluate", "train"]

# Per-optimizer defaults: SGD's lr is 0.1 per 256 images of batch (the linear scaling rule of
# Goyal et al. 2017, Section 2.1) with a decay for small data sets; AdamW's from Loshchilov &
# Hutter 2019 and the DeiT/ConvNeXt recipes.
DEFAULTS = {"sgd": {"lr_per_256": 0.1, "weight_decay": 5e-4}, "adamw": {"lr": 2e-3, "weight_decay": 0.05}}
# Super-resolution: no weight decay (SRCNN, FSRCNN, ESPCN and EDSR train without), Adam's lr 1e-3.
SR_DEFAULTS = {"sgd": {"lr_per_256": 0.1, "weight_decay": 0.0}, "adamw": {"lr": 1e-3, "weight_decay": 0.0}}
SR_PATCH = 48  # the default HR patch side of super-resolution training (2, 3 and 4 divide it)
# Options that may differ between a run and its resumption (they change no result).
PLOT_EVERY_S = 60  # curve.png: at the end of a run, and at most this often before
RESUME_MAY_CHANGE = ("out", "resume", "workers", "threads", "progress", "save_every", "device")
# What a run asks of its speed settings; a run an older sepconv started did not record them.
SPEED_OPTIONS = ("amp", "precision", "channels_last", "compile")
# Speed choices made in this process, by configuration and capabilities: a process that builds
# several trainers of one configuration (a distillation's teacher and students) times the steps
# once and trains them all alike, however close a timed comparison came.
_DECIDED: dict[str, speed.SpeedChoice] = {}


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in its checkpoints)."""

    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = "digits"
    epochs: int = 30
    batch_size: int = 128  # global: split across DDP ranks
    optimizer: str = "adamw"  # robust from scratch on small data; "sgd" for the papers' ImageNet recipes
    lr: float | None = None  # None: DEFAULTS[optimizer]
    weight_decay: float | None = None  # None: DEFAULTS[optimizer]
    dw_weight_decay: float = 0.0  # on depthwise kernels (MobileNets, Section 3.2)
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    ema: float | None = None  # EMA decay, e.g. 0.999; None: no EMA
    amp: bool = False  # deprecated: precision="auto" then means the device's reduced precision
    channels_last: bool | None = None  # None: on for a model with convolutions (sepconv.train.speed)
    precision: str = "auto"  # "auto" (sepconv.train.speed), "fp32", "bf16" or "fp16" (autocast)
    compile: bool | None = None  # torch.compile the training step; None: past the break-even
    img_size: int | None = None  # None: the data set's default
    val_split: float = 0.2
    crop_scale: tuple[float, float] | None = None  # None: the data set's default
    hflip: bool | None = None  # None: the data set's default
    seed: int = 0
    workers: int = 0
    threads: int | None = None  # torch intra-op threads (None: torch's default, one per core)
    out: str | None = None
    resume: bool = False
    save_every: int = 0  # also checkpoint every N steps within an epoch (0: at epoch ends only)
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        self.model_kwargs = dict(self.model_kwargs)
        if self.crop_scale is not None:
            self.crop_scale = tuple(float(v) for v in self.crop_scale)
        defaults = SR_DEFAULTS if task_of(self.model) == "super_resolution" else DEFAULTS
        if self.lr is None and self.optimizer == "sgd" and isinstance(self.batch_size, int):
            self.lr = defaults["sgd"]["lr_per_256"] * self.batch_size / 256
        elif self.lr is None:
            self.lr = defaults.get(self.optimizer, {}).get("lr")
        if self.weight_decay is None:
            self.weight_decay = defaults.get(self.optimizer, {}).get("weight_decay")
        self.check()
        if self.amp:
            warnings.warn("TrainConfig(amp=True) is deprecated: precision='auto' (the default) chooses the "
                          "machine's reduced precision; 'bf16' or 'fp16' ask for one", DeprecationWarning, stacklevel=3)

    def check(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        for name in ("seed", "workers", "save_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r} must be a non-negative integer")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads={self.threads!r} must be a positive integer")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} must be one of {', '.join(OPTIMIZERS)}")
        checks = [("lr", self.lr, self.lr is not None and self.lr > 0, "a positive number"),
                  ("weight_decay", self.weight_decay, self.weight_decay >= 0, ">= 0"),
                  ("dw_weight_decay", self.dw_weight_decay, self.dw_weight_decay >= 0, ">= 0"),
                  ("momentum", self.momentum, 0 <= self.momentum < 1, "in [0, 1)"),
                  ("warmup_epochs", self.warmup_epochs, self.warmup_epochs >= 0, ">= 0"),
                  ("label_smoothing", self.label_smoothing, 0 <= self.label_smoothing < 1, "in [0, 1)"),
                  ("ema", self.ema, self.ema is None or 0 < self.ema < 1, "in (0, 1) (a decay such as 0.999)")]
        for name, value, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name}={value!r} must be {rule}")
        if self.crop_scale is not None and not (len(self.crop_scale) == 2 and 0 < self.crop_scale[0]
                                                <= self.crop_scale[1] <= 1):
            raise ValueError(f"crop_scale={self.crop_scale!r} must be (min, max) with 0 < min <= max <= 1")
        if self.resume and not self.out:
            raise ValueError("resume=True needs out, the run directory to resume")
        if self.precision not in ("auto", *speed.PRECISIONS):
            raise ArgumentError("precision", f"precision={self.precision!r} must be one of auto, "
                                f"{', '.join(speed.PRECISIONS)}")
        for name in ("channels_last", "compile"):
            if getattr(self, name) not in (None, True, False):
                raise ArgumentError(name, f"{name}={getattr(self, name)!r} must be True, False or None (auto)")
        if not isinstance(self.amp, bool):
            raise ArgumentError("amp", f"amp={self.amp!r} must be True or False")
        if self.amp and self.precision == "fp32":
            raise ArgumentError("amp", "amp=True (deprecated: reduced precision) contradicts precision='fp32'; "
                                "give only the precision")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["crop_scale"] = list(self.crop_scale) if self.crop_scale else None
        return d


def task_of(model: Any) -> str:
    """The registry's task of the model named ``model`` (classification for a name it does not know:
    building it reports that)."""
    try:
        return model_entry(str(model)).task
    except ValueError:
        return "classification"


def _describe_changes(saved: dict[str, Any], now: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    return [f"{k}={saved.get(k)!r} (now {now[k]!r})" for k in now
            if k not in RESUME_MAY_CHANGE and k not in skip and saved.get(k) != now[k]]


class Trainer:
    """A training run: data, model, optimizer and checkpoints, set up (and checked) in full
    before anything is written; :meth:`fit` then trains to ``config.epochs``."""

    def __init__(self, config: TrainConfig, info: DistInfo | None = None) -> None:
        self.config = c = config
        self.info = info or setup(c.device)
        if c.batch_size % self.info.world_size:
            raise ValueError(f"batch_size={c.batch_size} must be divisible by the {self.info.world_size} processes")
        self.out = Path(c.out) if c.out else None
        self.state = self._check_out()
        self.sr: SuperResolution | None = None  # set for a super-resolution model: its data, patches, loss
        if task_of(c.model) == "super_resolution":
            self.sr = self._sr_task()
            self.data: ImageData | SRData = self.sr.data
            self.img_size = self.sr.data.patch
        else:
            # the input size: train's --img-size, else the model's own img_size (MobileNets' rho, or
            # MobileFaceNet's GDC size), else the data set's default; recorded in the sidecar (train.img_size)
            size = c.img_size if c.img_size is not None else c.model_kwargs.get("img_size")
            self.data = load_data(c.data, img_size=size, val_split=c.val_split)
            self.img_size = size or self.data.img_size
        self.local_batch = c.batch_size // self.info.world_size
        if len(self.train_set) < c.batch_size:
            what = "patches an epoch draws from the photos" if self.sr else "training images"
            raise ValueError(f"batch_size={c.batch_size} is larger than the {len(self.train_set)} {what} of {c.data}")
        for seeded in (torch.manual_seed, np.random.seed, random.seed):
            seeded(c.seed)
        self.model = self._build_model()
        self.steps_per_epoch = len(self._sampler(0)) // self.local_batch
        self.total_steps = self.steps_per_epoch * c.epochs
        # Layout, precision and torch.compile: decided now (rank 0, broadcast), or the run's own on resume.
        self.speed: speed.SpeedChoice = self._speed()
        if self.speed.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.sr is not None:
            self.aug = None
            self.sr.channels_last = self.speed.channels_last
        else:
            self.aug = Augment(self.img_size, self.data.mean, self.data.std,
                               crop_scale=c.crop_scale or self.data.crop_scale,
                               hflip=self.data.hflip if c.hflip is None else c.hflip,
                               eval_crop=self.data.eval_crop, channels_last=self.speed.channels_last)
        self.optimizer = build_optimizer(self.model, c.optimizer, c.lr, c.weight_decay, c.dw_weight_decay,
                                         c.momentum)
        schedule = WarmupCosine(self.total_steps, round(c.warmup_epochs * self.steps_per_epoch))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        # fp16's narrow range needs loss scaling; bf16 keeps fp32's exponent and needs none.
        self.scaler = torch.amp.GradScaler(self.info.device.type, enabled=self.speed.precision == "fp16")
        self.ema = ema_model(self.model, c.ema) if c.ema else None  # fp32 weights: autocast leaves them be
        if self.out is not None and self.info.is_main:  # a checkpoint's size, before the first step
            check_output(self.out, "out", directory=True, need_bytes=self._checkpoint_bytes())
        self.epoch, self.step_in_epoch, self.history, self.partial_sums = 0, 0, [], None
        if self.state is not None:
            self._restore(self.state)
        self.aux_weights = aux_weights(self.model)  # GoogLeNet / Inception v3 with aux_logits=True
        self.net = wrap(WithAuxiliary(self.model) if self.aux_weights else self.model, self.info)
        if self.speed.compile:  # the training step only (DDP's wrapper included); evaluation stays eager
            self.net = torch.compile(self.net)
        self.criterion = self.sr.criterion if self.sr else nn.CrossEntropyLoss(label_smoothing=c.label_smoothing)
        self.held_out: list[dict[str, Any]] = []  # super-resolution: the last validation's figures per photo
        if self.info.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One training forward: the (main) logits and the loss, in fp32 whatever the forward's
        precision; with auxiliary heads their weighted losses are added (:mod:`.auxiliary`)."""
        with self._autocast():
            out = self.net(x)
        if self.aux_weights:  # main logits first, then each auxiliary head's
            return out[0], auxiliary_loss(self.criterion, out, y, self.aux_weights)
        return out, self.criterion(out.float(), y)

    # ---- set-up ------------------------------------------------------------------------------

    @property
    def train_set(self) -> TensorImages | FolderImages | PatchSlots:
        """What an epoch permutes and shards: the training images, or a super-resolution epoch's patch slots."""
        return self.sr.train if self.sr is not None else self.data.train

    @property
    def metric(self) -> str:
        """The validation figure beside the loss: top-1 accuracy, or PSNR for super-resolution."""
        return self.sr.metric if self.sr is not None else "acc"

    def _sr_task(self) -> SuperResolution:
        """The photographs, patches and loss of a super-resolution run (sepconv.train.superres)."""
        c = self.config
        if c.crop_scale is not None:
            raise ArgumentError("crop_scale", f"crop_scale={c.crop_scale!r} is the random-resized crop of "
                                "classification; super-resolution trains on random patches (img_size: their side)")
        arguments = {**argument_defaults(model_entry(c.model)), **c.model_kwargs}
        try:
            data = load_sr_data(c.data, scale=arguments["scale"], patch=c.img_size or SR_PATCH,
                                val_split=c.val_split)
        except ArgumentError as err:  # the patch side is this run's img_size
            if err.argument != "patch":
                raise
            raise ArgumentError("img_size", str(err).replace("patch=", "img_size=", 1)) from None
        return SuperResolution(data, c.model, arguments["in_chans"], augment=c.hflip is not False)

    def _check_out(self) -> dict[str, Any] | None:
        c = self.config
        if self.out is None:
            return None
        check_output(self.out, "out", directory=True)  # a directory, writable; what a killed run left removed
        state_file = self.out / STATE_FILE
        if not c.resume:
            if state_file.exists():
                raise ArgumentError("resume", f"{state_file}: {self.out} already holds a training run; pass "
                                    "resume=True to continue it, or another out directory (nothing was overwritten)")
            return None
        state = read_state(self.out)
        saved, now = state["config"], c.to_dict()
        if (saved.get("model"), saved.get("model_kwargs")) != (now["model"], now["model_kwargs"]):
            raise ValueError(f"{state_file}: holds a run of {saved.get('model')} {saved.get('model_kwargs')}, not "
                             f"{now['model']} {now['model_kwargs']}; resume with the same model or use another --out")
        if "speed" in state:  # checked now, before anything is loaded
            state["speed"] = speed.SpeedChoice.from_dict(state["speed"], f"{state_file}: speed")
        # an older sepconv's run: its amp and channels_last decide (speed.legacy_choice), whatever is asked now
        changed = _describe_changes(saved, now, skip=() if "speed" in state else SPEED_OPTIONS)
        if changed:
            raise ValueError(f"{state_file}: --resume must repeat the run's options; changed: {', '.join(changed)}")
        return state

    def _checkpoint_bytes(self) -> int:
        """About what one checkpoint takes on disk: the weights (and the EMA's), and the optimizer's
        state, at most two tensors the size of each parameter (Adam's moments)."""
        weights = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        params = sum(p.numel() * p.element_size() for p in self.model.parameters())
        return weights * (2 if self.ema is not None else 1) + 2 * params

    def _build_model(self) -> nn.Module:
        c, data = self.config, self.data
        if self.sr is not None:  # its scale and channels are its own arguments: the data follows them
            return create_model(c.model, **c.model_kwargs).to(self.info.device)
        kwargs = dict(c.model_kwargs)
        for key, value in (("num_classes", data.num_classes), ("in_chans", data.channels)):
            if key in kwargs and kwargs[key] != value:
                raise ValueError(f"model argument {key}={kwargs[key]!r} does not fit {c.data}, which has {value}")
            kwargs[key] = value
        model = create_model(c.model, **kwargs)  # num_classes and in_chans in its provenance: the file rebuilds alone
        return model.to(self.info.device)

    def _speed(self) -> speed.SpeedChoice:
        """The run's speed settings: its own on resume, else decided on rank 0 and broadcast, so that
        every rank trains alike (rank 0's measured step time is the one input that could differ)."""
        if self.state is not None:
            kept = self.state.get("speed") or speed.legacy_choice(self.state["config"], self.info.device.type)
            if kept.compile:  # the one setting a machine may be unable to repeat: say so now, not at the first step
                ok, missing = speed.compile_support(self.info.device.type)
                if not ok:
                    raise ValueError(f"{self.out / STATE_FILE}: the run trains with torch.compile, which is "
                                     f"unavailable here ({missing}); resume it where torch.compile runs")
            return kept
        error, doc = None, None
        if self.info.is_main:
            try:
                doc = self._decide_speed().to_dict()
            except ValueError as err:
                error, doc = err, {"error": str(err), "argument": getattr(err, "argument", None)}
        doc = broadcast_object(doc, self.info)
        if error is not None:
            raise error
        if "error" in doc:  # rank 0 refused: every rank stops with its message
            raise ArgumentError(doc["argument"], doc["error"]) if doc["argument"] else ValueError(doc["error"])
        return speed.SpeedChoice.from_dict(doc)

    def _decide_speed(self) -> speed.SpeedChoice:
        c, dev = self.config, self.info.device
        caps = speed.probe_capabilities(dev)
        same = {k: v for k, v in c.to_dict().items() if k not in (*RESUME_MAY_CHANGE, "seed") or k == "threads"}
        key = json.dumps([same, dataclasses.asdict(caps), str(dev), self.info.world_size], sort_keys=True, default=str)
        if key not in _DECIDED:
            _DECIDED[key] = self._measure_and_decide(caps)
        return _DECIDED[key]

    def _measure_and_decide(self, caps: speed.Capabilities) -> speed.SpeedChoice:
        c, dev = self.config, self.info.device
        if self.sr is not None:
            shape, loss = self.sr.input_shape(self.local_batch), speed.l1_to_zero
        else:
            shape, loss = (self.local_batch, self.data.channels, self.img_size, self.img_size), None

        # A model that cannot run on this data (a subclass's own model) fails here with the error
        # its first training step would give: the measurements are skipped and that error comes then.
        def step_seconds(precision: str, channels_last: bool) -> float | None:
            with threads_set_to(c.threads) if c.threads is not None else nullcontext():
                try:
                    return speed.measure_step_seconds(self.model, shape, precision, channels_last, dev, loss=loss)
                except (RuntimeError, ValueError):
                    return None

        try:
            hazard = speed.bf16_hazard(self.model, shape, dev) if dev.type == "cpu" and caps.bf16 else ""
        except (RuntimeError, ValueError):
            hazard = ""
        return speed.decide_speed(
            caps, precision=c.precision, channels_last=c.channels_last, compile=c.compile,
            amp=c.amp, has_conv=any(isinstance(m, nn.Conv2d) for m in self.model.modules()),
            remaining_steps=self.total_steps, step_seconds=step_seconds,
            compile_seconds=speed.estimate_compile_seconds(self.model, dev.type), bf16_hazard=hazard)

    def speed_lines(self) -> list[str]:
        """The speed settings with their reasons, one line each (what ``sepconv train`` prints first)."""
        return self.speed.lines(resumed=self.state is not None)

    def _restore(self, state: dict[str, Any]) -> None:
        load_checkpoint(self.out, state, model=self.model, optimizer=self.optimizer,
                        ema=self.ema.module if self.ema is not None else None)
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.n_averaged.fill_(state["ema_n_averaged"])
        self.epoch, self.step_in_epoch, self.history = state["epoch"], state["step_in_epoch"], state["history"]
        self.partial_sums = state.get("epoch_sums")

    # ---- batches -----------------------------------------------------------------------------

    def _sampler(self, epoch: int) -> DistributedSampler:
        sampler = DistributedSampler(self.train_set, num_replicas=self.info.world_size, rank=self.info.rank,
                                     shuffle=True, seed=self.config.seed, drop_last=True)
        sampler.set_epoch(epoch)
        return sampler

    def _batches(self, dataset: TensorImages | FolderImages, index: list[int], start: int = 0,
                 drop_last: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Local batches of ``index`` from batch ``start`` (a last partial one only without ``drop_last``)."""
        cut = [index[i:i + self.local_batch] for i in range(0, len(index), self.local_batch)]
        cut = [b for b in cut if len(b) == self.local_batch or not drop_last][start:]
        return batches(dataset, cut, self.config.workers, pin_memory=self.info.device.type == "cuda")

    def _autocast(self) -> Any:
        return speed.autocast_for(self.info.device, self.speed.precision)

    # ---- training ----------------------------------------------------------------------------

    def train_epoch(self, epoch: int, start: int = 0, progress: Any = None) -> dict[str, float]:
        """Train one epoch from batch ``start``; return loss, accuracy (super-resolution: patch PSNR) and
        images/s (all ranks)."""
        c, dev = self.config, self.info.device
        self.net.train()
        params = (self.sr or self.aug).epoch_params(len(self.train_set), c.seed, epoch)
        index = list(self._sampler(epoch))
        partial = self.partial_sums if start else None  # a resumed epoch's sums so far
        # loss * n, correct (super-resolution: the sum of patch PSNRs), n
        sums = torch.tensor(partial or [0.0, 0.0, 0.0], dtype=torch.float64, device=dev)
        self.partial_sums = sums
        task = progress.add_task(f"epoch {epoch + 1}/{c.epochs}", total=self.steps_per_epoch, completed=start,
                                 loss=float("nan"), metric=self.metric, value=float("nan"), ips=0.0) \
            if progress else None
        began, seen = time.perf_counter(), 0
        for step, (images, labels, idx) in enumerate(self._batches(self.train_set, index, start),
                                                     start):
            if self.sr is not None:
                x, y = self.sr.train_batch(params[idx], dev)
            else:
                x = self.aug.train(images.to(dev, non_blocking=True), params[idx])
                y = labels.to(dev, non_blocking=True)
            logits, loss = self.forward_loss(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            with torch.no_grad():
                sums += self.sr.batch_sums(logits, y, loss) if self.sr is not None else torch.stack([
                    loss.detach().double() * y.numel(), (logits.argmax(1) == y).sum().double(),
                    torch.tensor(float(y.numel()), dtype=torch.float64, device=dev)])
            seen += y.shape[0]
            self.step_in_epoch = step + 1
            if task is not None and (step % 5 == 4 or step + 1 == self.steps_per_epoch):
                s = sums.tolist()
                progress.update(task, completed=step + 1, loss=s[0] / s[2], value=s[1] / s[2],
                                ips=seen * self.info.world_size / (time.perf_counter() - began))
            if c.save_every and self.step_in_epoch % c.save_every == 0 and self.step_in_epoch < self.steps_per_epoch:
                self.save(epoch)
        seconds = time.perf_counter() - began
        if task is not None:
            progress.remove_task(task)
        total = all_reduce_sum(sums, self.info).tolist()
        n = max(total[2], 1.0)
        return {"train_loss": total[0] / n, f"train_{self.metric}": total[1] / n,
                "train_images_per_s": seen * self.info.world_size / max(seconds, 1e-9)}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: TensorImages | FolderImages | None = None) -> dict[str, float]:
        """Loss (plain cross-entropy) and top-1 accuracy of ``model`` on the validation split; for
        super-resolution, the L1 loss, PSNR and SSIM on the held-out photos and bicubic's (averages;
        :attr:`SuperResolution.per_image <sepconv.train.superres.SuperResolution.per_image>` has each photo's)."""
        if self.sr is not None:
            return self.sr.evaluate(model, dataset, self.info.device, self._autocast)
        dataset = self.data.val if dataset is None else dataset
        index = list(range(len(dataset)))[self.info.rank::self.info.world_size]
        return _evaluate(model, self._batches(dataset, index, drop_last=False), self.aug,
                         self.info, self._autocast)

    def save(self, epoch: int) -> None:
        """Checkpoint now (rank 0 writes; every rank waits for it)."""
        if self.out is not None and self.info.is_main:
            step = epoch * self.steps_per_epoch + self.step_in_epoch
            done = self.step_in_epoch == self.steps_per_epoch
            payload = {
                "epoch": epoch + 1 if done else epoch, "step_in_epoch": 0 if done else self.step_in_epoch,
                "config": self.config.to_dict(), "history": self.history,
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "ema_n_averaged": int(self.ema.n_averaged) if self.ema is not None else None,
                "world_size": self.info.world_size,
                "epoch_sums": None if done else self.partial_sums.tolist(),
                "speed": self.speed.to_dict(),
            }
            last = self.history[-1] if self.history else {}
            figures = {"val_psnr": last.get("val_psnr"), "val_ssim": last.get("val_ssim")} if self.sr else \
                {"val_acc": last.get("val_acc")}
            extra = {"train": {**self.data.describe(), "img_size": self.img_size, "epoch": payload["epoch"],
                               **figures}}
            save_checkpoint(self.out, step=step, model=self.model, optimizer=self.optimizer, payload=payload,
                            ema=self.ema.module if self.ema is not None else None, model_extra=extra)
        barrier(self.info)

    def fit(self, until_epoch: int | None = None) -> dict[str, Any]:
        """Train from where the run stands to ``config.epochs`` (or stop after ``until_epoch``
        epochs, as if killed after that checkpoint); return the last epoch's metrics."""
        c = self.config
        last = c.epochs if until_epoch is None else min(c.epochs, until_epoch)
        progress = _progress(c.progress and self.info.is_main)
        began = plotted = time.perf_counter()
        if self.state is not None and self.info.is_main:  # what a killed run left half-written
            prune(self.out, self.state["files"])
        threads = threads_set_to(c.threads) if c.threads is not None else nullcontext()
        try:
            with threads, progress or nullcontext():
                for epoch in range(self.epoch, last):
                    t0 = time.perf_counter()
                    row = {"epoch": epoch + 1, **self.train_epoch(epoch, self.step_in_epoch, progress)}
                    row["lr"] = self.scheduler.get_last_lr()[0]
                    row.update({f"val_{k}": v for k, v in self.evaluate(self.model).items()})
                    if self.sr is not None:
                        self.held_out = list(self.sr.per_image)
                    if self.ema is not None:
                        row.update({f"ema_val_{k}": v for k, v in self.evaluate(self.ema.module).items()})
                    row["seconds"] = time.perf_counter() - t0
                    row.update(precision=self.speed.precision, channels_last=self.speed.channels_last,
                               compile=self.speed.compile)
                    self.history.append(row)
                    self.save(epoch)  # committed first: the metrics files only ever show committed epochs
                    if self.out is not None and self.info.is_main:
                        plot = epoch + 1 == last or time.perf_counter() - plotted > PLOT_EVERY_S
                        write_metrics(self.out, self.history, f"{c.model} {c.model_kwargs} on {c.data}", plot)
                        plotted = time.perf_counter() if plot else plotted
                    self.epoch, self.step_in_epoch = epoch + 1, 0
                    if self.info.is_main and c.progress:
                        _print_row(row, self.metric)
        finally:
            cleanup(self.info)
        final = dict(self.history[-1]) if self.history else {}
        final.update({"epochs_done": self.epoch, "seconds_this_run": time.perf_counter() - began,
                      "out": str(self.out) if self.out else None})
        if self.sr is not None and self.held_out:
            final["held_out"] = self.held_out
        return final


def batches(dataset: TensorImages | FolderImages, cut: list[list[int]], workers: int = 0, pin_memory: bool = False
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(uint8 images, labels, sample indices) for each list of indices in ``cut``: one gather per
    batch for in-memory data, a ``DataLoader`` with ``workers`` processes for image files."""
    if isinstance(dataset, (TensorImages, PatchSlots)):
        for b in cut:
            idx = torch.tensor(b, dtype=torch.long)
            yield (*dataset.batch(idx), idx)
        return
    try:
        yield from DataLoader(dataset, batch_sampler=cut, num_workers=workers, pin_memory=pin_memory)
    except UnreadableImage as err:  # a worker re-raises it with the worker's traceback: keep the message
        lines = [ln for ln in str(err).splitlines() if ln.strip()]
        raise UnreadableImage(lines[-1].split(": ", 1)[-1] if len(lines) > 1 else str(err)) from None


def _evaluate(model: nn.Module, batches: Any, aug: Augment, info: DistInfo, autocast: Any = nullcontext
              ) -> dict[str, float]:
    sums = torch.zeros(3, dtype=torch.float64, device=info.device)
    with eval_mode(model):
        for images, labels, _ in batches:
            x, y = aug.eval(images.to(info.device)), labels.to(info.device)
            with autocast():
                logits = model(x)
            sums += torch.stack([F.cross_entropy(logits.float(), y, reduction="sum").double(),
                                 (logits.argmax(1) == y).sum().double(),
                                 torch.tensor(float(y.numel()), dtype=torch.float64, device=info.device)])
    total = all_reduce_sum(sums, info).tolist()
    n = max(total[2], 1.0)
    return {"loss": total[0] / n, "acc": total[1] / n, "images": int(total[2])}


def _progress(enabled: bool) -> Any:
    """A rich progress bar on stderr with loss, accuracy (or PSNR) and images/s, or None."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.3f}  {task.fields[metric]} {task.fields[value]:.3f}  "
                               "{task.fields[ips]:.0f} img/s"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def _print_row(row: dict[str, Any], metric: str = "acc") -> None:
    import sys

    if metric == "psnr":
        ema = f"  ema val PSNR {row['ema_val_psnr']:.2f} dB" if "ema_val_psnr" in row else ""
        print(f"epoch {row['epoch']}: train L1 {row['train_loss']:.4f} PSNR {row['train_psnr']:.2f} dB  "
              f"val PSNR {row['val_psnr']:.2f} dB SSIM {row['val_ssim']:.4f} (bicubic {row['val_bicubic_psnr']:.2f} dB "
              f"{row['val_bicubic_ssim']:.4f}){ema}  {row['train_images_per_s']:.0f} patches/s  "
              f"{row['seconds']:.1f} s", file=sys.stderr)
        return
    ema = f"  ema val acc {row['ema_val_acc']:.4f}" if "ema_val_acc" in row else ""
    print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
          f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}{ema}  "
          f"{row['train_images_per_s']:.0f} img/s  {row['seconds']:.1f} s", file=sys.stderr)


def train(config: TrainConfig) -> dict[str, Any]:
    """Set up and run ``config`` to the end; the last epoch's metrics."""
    return Trainer(config).fit()


def evaluate(checkpoint: str | Path, data: str | None = None, *, split: str = "val", batch_size: int = 256,
             ema: bool = False, device: str = "auto", workers: int = 0, precision: str = "auto") -> dict[str, Any]:
    """Top-1 accuracy and loss of a saved model (a ``.safetensors`` file written by training, or
    a run directory: its ``model.safetensors``, ``ema.safetensors`` with ``ema``) on a split of
    ``data`` (default: the data it was trained on), preprocessed as in training (from the sidecar).

    ``precision="auto"`` evaluates as the run did (its ``state.json``'s precision and layout, where
    the checkpoint lies in its run directory and this machine can run that precision), else in fp32;
    ``"fp32"``, ``"bf16"`` or ``"fp16"`` ask for one (refused where the machine cannot run it)."""
    from ..resolve import resolve_model

    if precision not in ("auto", *speed.PRECISIONS):
        raise ArgumentError("precision", f"precision={precision!r} must be one of auto, {', '.join(speed.PRECISIONS)}")
    if split not in ("train", "val"):
        raise ValueError(f"split={split!r} must be 'train' or 'val'")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    resolved = resolve_model(checkpoint, ema=ema)  # a .safetensors file or a run directory
    path, info = resolved.checkpoint, resolved.sidecar.train if resolved.sidecar is not None else None
    if info is None:
        raise ValueError(f"checkpoint={str(checkpoint)!r}: not written by sepconv train (no sidecar with a training "
                         "data description); eval needs the preprocessing it was trained with")
    if info.get("task") == "super_resolution":
        return _evaluate_sr(resolved, info, data, split, device, precision)
    data = info["data"] if data is None else data
    img_size = int(info["img_size"])
    dataset = load_data(data, img_size=img_size)
    if dataset.num_classes != len(info["classes"]) or dataset.channels != info["channels"]:
        raise ValueError(f"{path}: a model of {len(info['classes'])} classes x {info['channels']} channels "
                         f"(trained on {info['data']}) cannot be evaluated on {data} "
                         f"({dataset.num_classes} classes x {dataset.channels} channels)")
    dinfo = DistInfo(device=device_for(device))
    chosen, layout = _eval_speed(path, dinfo.device, precision)
    model = resolved.model.to(dinfo.device)
    if layout:
        model.to(memory_format=torch.channels_last)
    aug = Augment(img_size, info["mean"], info["std"], eval_crop=float(info["eval_crop"]), channels_last=layout)
    ds = dataset.val if split == "val" else dataset.train
    cut = [list(range(i, min(i + batch_size, len(ds)))) for i in range(0, len(ds), batch_size)]
    began = time.perf_counter()
    result = _evaluate(model, batches(ds, cut, workers), aug, dinfo, lambda: speed.autocast_for(dinfo.device, chosen))
    seconds = time.perf_counter() - began
    return {"checkpoint": str(path), "data": data, "split": split, "img_size": img_size,
            "loss": result["loss"], "acc": result["acc"], "images": result["images"],
            "images_per_s": result["images"] / max(seconds, 1e-9),
            "same_data_as_training": info["data"] == dataset.name, "precision": chosen, "channels_last": layout}


def _eval_speed(path: Path, device: torch.device, precision: str) -> tuple[str, bool]:
    """The precision and layout ``evaluate`` runs a checkpoint with (its docstring: the rule)."""
    caps = speed.probe_capabilities(device)
    run = _run_speed(Path(path).parent, device.type)
    if precision == "auto":
        chosen = run.precision if run is not None and run.precision in caps.precisions else "fp32"
    else:
        chosen = speed.check_precision(caps, precision)
    return chosen, run.channels_last if run is not None else False


def _evaluate_sr(resolved: Any, info: dict[str, Any], data: str | None, split: str, device: str,
                 precision: str) -> dict[str, Any]:
    """:func:`evaluate` of a super-resolution checkpoint: PSNR and SSIM of each photo of the split
    (held-out, or the training photos whole) against bicubic interpolation's, and their means."""
    model, path = resolved.model, resolved.checkpoint
    data = info["data"] if data is None else data
    entry = model_entry(resolved.sidecar.provenance.model)
    scale, in_chans = int(model.scale), int(model.in_channels)
    if scale != info["scale"]:
        raise ValueError(f"{path}: the model upscales x{scale} but its sidecar says it trained at x{info['scale']}")
    photos = load_sr_data(data, scale=scale, patch=int(info["img_size"]))
    images = photos.held_out if split == "val" else photos.train
    dinfo = DistInfo(device=device_for(device))
    chosen, layout = _eval_speed(path, dinfo.device, precision)
    model = model.to(dinfo.device)
    if layout:
        model.to(memory_format=torch.channels_last)
    result = evaluate_images(model, images, scale, in_chans, entry.sr_input == "upsampled", dinfo.device,
                             lambda: speed.autocast_for(dinfo.device, chosen), channels_last=layout)
    return {"checkpoint": str(path), "task": "super_resolution", "data": data, "split": split, "scale": scale,
            "in_chans": in_chans, **{k: result[k] for k in ("loss", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim")},
            "images": result["images"], "per_image": result["per_image"],
            "images_per_s": result["images"] / max(result["seconds"], 1e-9),
            "same_data_as_training": info["data"] == photos.name, "precision": chosen, "channels_last": layout}


def _run_speed(run_dir: Path, device: str) -> speed.SpeedChoice | None:
    """The speed settings of the training run in ``run_dir`` (None: not a readable run directory)."""
    if not (run_dir / STATE_FILE).is_file():
        return None
    try:
        state = read_state(run_dir)
        if "speed" not in state:
            return speed.legacy_choice(state["config"], device)
        return speed.SpeedChoice.from_dict(state["speed"], f"{run_dir / STATE_FILE}: speed")
    except ValueError:  # a damaged state: evaluate in fp32, the checkpoint itself was checked already
        return None
