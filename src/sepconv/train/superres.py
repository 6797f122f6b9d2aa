"""The super-resolution side of training and evaluation: patches, the L1 loss, PSNR/SSIM on held-out photos.

:class:`sepconv.train.loop.Trainer` trains a model registered with ``task="super_resolution"``
with the same loop as a classifier (schedule, precision, checkpoints, resume, DDP); what differs
is here and is chosen by the task: the data (:func:`sepconv.data.photos.load_sr_data`), the
batches (random patches, :class:`PatchSampler`), the loss (L1 between the output and the HR patch,
as EDSR, Lim et al. 2017, Section 4.1), and the validation (:func:`evaluate_images`: each held-out
photo whole, PSNR and SSIM on Y with ``scale`` pixels cropped, :mod:`sepconv.train.sr_metrics`,
beside bicubic interpolation of the same low-resolution image).

Under DDP every rank measures every held-out photo (there are a handful; no reduction needed), and
the patches of an epoch are sharded like a classifier's images.

A model sees its own channels (``in_chans`` 1: the Y of BT.601, as the papers train; 3: RGB), in
[0, 1]; a model registered with ``sr_input="upsampled"`` (SRCNN) gets the low-resolution image
upscaled by bicubic interpolation first.

Example::

    >>> task = SuperResolution(load_sr_data("photos", scale=2, patch=48), "ssnet_m", in_chans=1)
    >>> x, target = task.train_batch(task.epoch_params(4, seed=0, epoch=0))
    >>> x.shape, target.shape
    (torch.Size([4, 1, 24, 24]), torch.Size([4, 1, 48, 48]))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .._util.checks import ArgumentError
from .._util.runtime import eval_mode
from ..data.photos import SRData, SRImage, rgb_to_y
from ..models.registry import model_entry
from ..models.superres import bicubic_upscale
from .augment import epoch_generator
from .sr_metrics import psnr, ssim

__all__ = ["PatchSampler", "PatchSlots", "SuperResolution", "evaluate_images", "model_channels", "model_input"]

# What a row of metrics holds for a super-resolution run (averages over the held-out photos).
METRICS = ("loss", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim")


def model_channels(rgb: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB ``(B, 3, H, W)`` in [0, 1] as a model of ``in_chans`` channels sees it: Y (1) or RGB (3)."""
    if in_chans == 1:
        return rgb_to_y(rgb)
    if in_chans == 3:
        return rgb
    raise ArgumentError("in_chans", f"in_chans={in_chans!r}: a super-resolution model trains on photos with 1 "
                                    "channel (Y) or 3 (RGB)")


def model_input(lr: torch.Tensor, scale: int, in_chans: int, upsampled: bool, channels_last: bool = False
                ) -> torch.Tensor:
    """uint8 RGB LR images ``(B, 3, h, w)`` -> a model's input: its channels in [0, 1], upscaled
    ``scale`` times by bicubic interpolation (clamped) first for a model that takes it so (``upsampled``)."""
    x = model_channels(lr.float().div(255), in_chans)
    x = bicubic_upscale(x, scale).clamp_(0, 1) if upsampled else x
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


class PatchSampler:
    """Random training patches from :class:`~sepconv.data.photos.SRData`'s training photos.

    :meth:`epoch_params` draws, for every sample of an epoch at once from a generator seeded by
    ``(seed, epoch)`` (:func:`sepconv.train.augment.epoch_generator`), a photo (in proportion to its
    pixels, so every pixel is about as likely), the patch's top-left corner in the LR image, and
    one of the 8 symmetries of the square (flips and quarter turns; the identity only without
    ``augment``); :meth:`crops` cuts the LR patch and the HR patch above it. As with
    :class:`~sepconv.train.augment.Augment`, a sample's patch depends only on (seed, epoch, sample
    index), not on its batch, rank or a resumption.

    Example::

        >>> sampler = PatchSampler(load_sr_data("photos", scale=2, patch=48))
        >>> [t.shape for t in sampler.crops(sampler.epoch_params(8, seed=0, epoch=0))]
        [torch.Size([8, 3, 24, 24]), torch.Size([8, 3, 48, 48])]
    """

    def __init__(self, data: SRData, augment: bool = True) -> None:
        if not data.train:
            raise ArgumentError("data", f"data={data.name!r} has no training photos")
        self.data, self.augment = data, bool(augment)
        self.lr_patch = data.patch // data.scale
        self.weights = torch.tensor([float(im.lr[0].numel()) for im in data.train], dtype=torch.float64)

    def epoch_params(self, n: int, seed: int, epoch: int) -> torch.Tensor:
        """``(n, 4)`` int64: photo index, top and left (LR pixels), symmetry (0-7)."""
        g = epoch_generator(seed, epoch, stream=1)
        image = torch.multinomial(self.weights, n, replacement=True, generator=g)
        heights = torch.tensor([im.lr.shape[-2] - self.lr_patch + 1 for im in self.data.train])
        widths = torch.tensor([im.lr.shape[-1] - self.lr_patch + 1 for im in self.data.train])
        top = (torch.rand(n, generator=g, dtype=torch.float64) * heights[image]).long()
        left = (torch.rand(n, generator=g, dtype=torch.float64) * widths[image]).long()
        symmetry = torch.randint(0, 8, (n,), generator=g) if self.augment else torch.zeros(n, dtype=torch.long)
        return torch.stack([image, top, left, symmetry], dim=1)

    def crops(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The uint8 LR ``(B, 3, p/s, p/s)`` and HR ``(B, 3, p, p)`` patches ``params`` describe."""
        s, p = self.data.scale, self.lr_patch
        lrs, hrs = [], []
        for image, top, left, symmetry in params.tolist():
            im = self.data.train[image]
            lrs.append(_symmetry(im.lr[:, top:top + p, left:left + p], symmetry))
            hrs.append(_symmetry(im.hr[:, top * s:(top + p) * s, left * s:(left + p) * s], symmetry))
        return torch.stack(lrs), torch.stack(hrs)


def _symmetry(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 symmetries of the square: ``k % 4`` quarter turns, then a horizontal flip for ``k >= 4``."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


class PatchSlots(Dataset):
    """An epoch's ``n`` patch slots: the training loop's sampler permutes and shards slot indices,
    and :class:`PatchSampler`'s parameters for the epoch, looked up by slot, say which patch each is."""

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[int, int, int]:
        return int(i), int(i), int(i)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return index, index


class SuperResolution:
    """What a super-resolution run trains and validates with, for the registered model ``name``
    with ``in_chans`` channels: its data, patches, loss and metrics."""

    metric = "psnr"  # what the progress bar and each epoch's line show beside the loss

    def __init__(self, data: SRData, name: str, in_chans: int, augment: bool = True,
                 channels_last: bool = False) -> None:
        model_channels(torch.zeros(1, 3, 1, 1), in_chans)  # 1 or 3
        self.data, self.in_chans, self.channels_last = data, in_chans, channels_last
        self.scale = data.scale
        self.upsampled = model_entry(name).sr_input == "upsampled"
        self.sampler = PatchSampler(data, augment)
        self.train = PatchSlots(data.patches_per_epoch)
        self.criterion = nn.L1Loss()
        self.per_image: list[dict[str, Any]] = []  # the last validation's figures, one entry per photo
        self._bicubic: dict[str, tuple[float, float]] = {}  # bicubic's PSNR and SSIM by photo: computed once

    def input_shape(self, batch: int) -> tuple[int, int, int, int]:
        """The model input of a training batch: ``(batch, in_chans, side, side)``."""
        side = self.sampler.lr_patch * (self.scale if self.upsampled else 1)
        return (batch, self.in_chans, side, side)

    def epoch_params(self, n: int, seed: int, epoch: int) -> torch.Tensor:
        return self.sampler.epoch_params(n, seed, epoch)

    def model_input(self, lr: torch.Tensor) -> torch.Tensor:
        return model_input(lr, self.scale, self.in_chans, self.upsampled, self.channels_last)

    def train_batch(self, params: torch.Tensor, device: torch.device | str = "cpu"
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The model input and the HR target (its channels) of the patches ``params`` describe."""
        lr, hr = self.sampler.crops(params)
        target = model_channels(hr.float().div_(255), self.in_chans)
        return self.model_input(lr).to(device, non_blocking=True), target.to(device, non_blocking=True)

    @torch.no_grad()
    def batch_sums(self, output: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        """``[loss * n, sum of patch PSNRs (dB, in the model's channels, no crop), n]`` of a batch."""
        mse = (output.float().clamp(0, 1) - target).square().flatten(1).mean(1).clamp_min(1e-10)
        n = float(target.shape[0])
        return torch.stack([loss.detach().double() * n, (-10 * mse.log10()).sum().double(),
                            torch.tensor(n, dtype=torch.float64, device=target.device)])

    def evaluate(self, model: nn.Module, images: Sequence[SRImage] | None = None,
                 device: torch.device | str = "cpu", autocast: Callable[[], Any] = nullcontext) -> dict[str, float]:
        """:func:`evaluate_images` on the held-out photos (or ``images``); the averages, with the
        figures of each photo kept in :attr:`per_image`."""
        result = evaluate_images(model, self.data.held_out if images is None else images, self.scale, self.in_chans,
                                 self.upsampled, device, autocast, self.channels_last, self._bicubic)
        self.per_image = result.pop("per_image")
        result.pop("seconds")
        return result


@torch.no_grad()
def evaluate_images(model: nn.Module, images: Sequence[SRImage], scale: int, in_chans: int, upsampled: bool,
                    device: torch.device | str = "cpu", autocast: Callable[[], Any] = nullcontext,
                    channels_last: bool = False, bicubic_cache: dict[str, tuple[float, float]] | None = None
                    ) -> dict[str, Any]:
    """Super-resolve each of ``images`` whole from its LR image and measure it against its HR
    image: the L1 loss (in the model's channels), PSNR and SSIM (:mod:`sepconv.train.sr_metrics`),
    and the same for bicubic interpolation of the LR image. Returns the averages over the images
    (``loss``, ``psnr``, ``ssim``, ``bicubic_psnr``, ``bicubic_ssim``), ``images``, ``seconds``
    (the model's forward passes) and ``per_image`` (a list of dicts with the image's name).
    ``bicubic_cache`` keeps bicubic's figures by image name across calls (they depend on no model)."""
    if not images:
        raise ArgumentError("data", "no held-out photos to evaluate on")
    rows, seconds = [], 0.0
    with eval_mode(model):
        for im in images:
            x = model_input(im.lr.unsqueeze(0), scale, in_chans, upsampled, channels_last).to(device)
            began = time.perf_counter()
            with autocast():
                out = model(x)
            out = out.float().cpu()[0]
            seconds += time.perf_counter() - began
            hr = model_channels(im.hr.float().div(255).unsqueeze(0), in_chans)[0]
            if out.shape != hr.shape:
                raise ValueError(f"the model's output {tuple(out.shape)} for {im.name} is not the HR image's "
                                 f"{tuple(hr.shape)}: is it a x{scale} super-resolution model?")
            cache = {} if bicubic_cache is None else bicubic_cache
            if im.name not in cache:
                bicubic = bicubic_upscale(model_channels(im.lr.float().div(255).unsqueeze(0), in_chans), scale)[0]
                cache[im.name] = (psnr(bicubic, hr, scale), ssim(bicubic, hr, scale))
            rows.append({"image": im.name, "loss": float(F.l1_loss(out, hr)), "psnr": psnr(out, hr, scale),
                         "ssim": ssim(out, hr, scale), "bicubic_psnr": cache[im.name][0],
                         "bicubic_ssim": cache[im.name][1]})
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in METRICS}
    return {**mean, "images": len(rows), "seconds": seconds, "per_image": rows}
