"""Training augmentation and evaluation preprocessing on whole batches, written with torch ops.

torchvision's transforms have no CPU build here, and per-image Python transforms are slow
anyway; these work on a ``(B, C, H, W)`` uint8 batch at once. The random resized crop of
Szegedy et al. 2015 (*Going deeper with convolutions*, Section 6; torchvision's
``RandomResizedCrop``: area fraction from ``scale``, aspect ratio log-uniform in ``ratio``, up to
10 tries, else the whole image) and the horizontal flip become one affine sampling grid per image
(``F.affine_grid`` + ``F.grid_sample``, bilinear), then a per-channel normalisation.

The random parameters are drawn for every sample of an epoch at once from a generator seeded by
``(seed, epoch)`` and looked up by sample index, so an image's augmentation does not depend on
which batch, worker or DDP rank it lands in, nor on where a resumed run restarts.

Example::

    >>> aug = Augment(size=32, mean=(0.5,), std=(0.25,), crop_scale=(0.6, 1.0), hflip=False)
    >>> params = aug.epoch_params(100, seed=0, epoch=0)
    >>> aug.train(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), params[:4]).shape
    torch.Size([4, 1, 32, 32])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Augment", "crop_params", "epoch_generator"]

TRIES = 10  # torchvision's RandomResizedCrop tries 10 boxes before it falls back to the whole image


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one (seed, epoch, stream); distinct streams never share a seed."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) * 7 + int(stream))


def crop_params(n: int, generator: torch.Generator, scale: Sequence[float] = (0.08, 1.0),
                ratio: Sequence[float] = (3 / 4, 4 / 3), hflip: bool = True) -> torch.Tensor:
    """``(n, 5)`` crop boxes ``(w, h, cx, cy, flip)``: width and height as fractions of the
    image's sides, centre in [0, 1], flip -1 or 1. Boxes follow RandomResizedCrop's sampling.

    Example::

        >>> p = crop_params(1000, torch.Generator().manual_seed(0), scale=(0.25, 1.0))
        >>> bool(((p[:, 0] * p[:, 1]) >= 0.25 - 1e-6).all()), bool((p[:, :2] <= 1).all())
        (True, True)
    """
    lo, hi = float(scale[0]), float(scale[1])
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"crop_scale={tuple(scale)!r} must satisfy 0 < min <= max <= 1")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio={tuple(ratio)!r} must satisfy 0 < min <= max")
    area = torch.empty(n, TRIES).uniform_(lo, hi, generator=generator)
    log_ratio = torch.empty(n, TRIES).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = log_ratio.exp()
    w, h = (area * aspect).sqrt(), (area / aspect).sqrt()
    ok = (w <= 1) & (h <= 1)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.zeros(n, dtype=torch.long))
    pick = first.unsqueeze(1)
    w = torch.where(ok.any(1), w.gather(1, pick).squeeze(1), torch.ones(n))
    h = torch.where(ok.any(1), h.gather(1, pick).squeeze(1), torch.ones(n))
    cx = w / 2 + torch.rand(n, generator=generator) * (1 - w)
    cy = h / 2 + torch.rand(n, generator=generator) * (1 - h)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if hflip else torch.ones(n)
    return torch.stack([w, h, cx, cy, flip], dim=1)


@dataclass(frozen=True)
class Augment:
    """Preprocessing for one model input size: :meth:`train` (random resized crop, flip,
    normalise) and :meth:`eval` (centre crop of ``eval_crop``, resize, normalise).

    Outputs are float32 ``(B, C, size, size)``, in ``channels_last`` memory order when asked.
    """

    size: int
    mean: Sequence[float]
    std: Sequence[float]
    crop_scale: Sequence[float] = (0.08, 1.0)
    crop_ratio: Sequence[float] = (3 / 4, 4 / 3)
    hflip: bool = True
    eval_crop: float = 1.0
    channels_last: bool = False

    def epoch_params(self, n: int, seed: int, epoch: int) -> torch.Tensor:
        """Crop boxes for every sample of an epoch, indexed by sample index."""
        return crop_params(n, epoch_generator(seed, epoch), self.crop_scale, self.crop_ratio, self.hflip)

    def train(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        x = self._float(images)
        w, h, cx, cy, flip = params.to(x.device, torch.float32).unbind(1)
        theta = torch.zeros(x.shape[0], 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 0, 2] = w * flip, 2 * cx - 1
        theta[:, 1, 1], theta[:, 1, 2] = h, 2 * cy - 1
        grid = F.affine_grid(theta, [x.shape[0], x.shape[1], self.size, self.size], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return self._finish(x)

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        x = self._float(images)
        if self.eval_crop < 1:
            h, w = x.shape[-2:]
            ch, cw = max(1, round(h * self.eval_crop)), max(1, round(w * self.eval_crop))
            top, left = (h - ch) // 2, (w - cw) // 2
            x = x[..., top:top + ch, left:left + cw]
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.size)
        return self._finish(x)

    def _float(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != len(self.mean):
            raise ValueError(f"images of shape {tuple(images.shape)} must be (B, {len(self.mean)}, H, W)")
        return images.float().div_(255) if images.dtype == torch.uint8 else images.float()

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()
