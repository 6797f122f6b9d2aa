"""PSNR and SSIM for super-resolution, with the conventions stated once.

The conventions of the SR papers (SRCNN, FSRCNN, ESPCN, VDSR, and SSNet's comparisons): both
images are 8-bit (a model's output is clamped to [0, 1] and rounded to 1/255 steps, as a saved
image is); the metrics are computed on the luma Y of ITU-R BT.601 in [16, 235]
(:func:`sepconv.data.photos.rgb_to_y`, computed in floating point from the 8-bit RGB; a one-channel
image is taken as Y already); ``scale`` pixels are cropped at every border (the pixels an
upscaler cannot see both sides of). PSNR is ``10 log10(255^2 / MSE)``; SSIM is
``skimage.metrics.structural_similarity`` with Wang et al. 2004's settings (an 11x11 Gaussian
window with sigma 1.5, ``K1=0.01``, ``K2=0.03``, population covariances), ``data_range=255``.

Example::

    >>> hr = torch.rand(3, 32, 32)
    >>> round(psnr(hr, hr.clamp(0, 0.9), scale=2), 2) > 20, ssim(hr, hr, scale=2)
    (True, 1.0)
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.photos import rgb_to_y

__all__ = ["SSIM_WINDOW", "luma_255", "psnr", "quantize", "ssim"]

SSIM_WINDOW = 11  # the Gaussian window's side (sigma 1.5, truncated at 3.5 sigma, as Wang et al. 2004)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """``x`` clamped to [0, 1] and rounded to 8 bits (steps of 1/255): what a saved image holds
    (in float64 for a float64 ``x``, else float32)."""
    x = x if x.dtype == torch.float64 else x.float()
    return x.clamp(0, 1).mul(255).round().div(255)


def luma_255(image: torch.Tensor, scale: int) -> np.ndarray:
    """The Y channel in [0, 255] (float64) of an 8-bit ``(C, H, W)`` image in [0, 1] (``C`` 3: RGB,
    ``C`` 1: Y already), ``scale`` pixels cropped at each border."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image of shape {tuple(image.shape)} must be (1, H, W) Y or (3, H, W) RGB")
    h, w = image.shape[-2:]
    if h <= 2 * scale or w <= 2 * scale:
        raise ValueError(f"a {h}x{w} image is too small to crop {scale} pixels at each border")
    y = rgb_to_y(image.double()) if image.shape[0] == 3 else image.double()
    return (y[0, scale:h - scale, scale:w - scale] * 255).cpu().numpy()


def _pair(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> tuple[np.ndarray, np.ndarray]:
    if sr.shape != hr.shape:
        raise ValueError(f"sr {tuple(sr.shape)} and hr {tuple(hr.shape)} must have one shape")
    return luma_255(quantize(sr.double()), scale), luma_255(quantize(hr.double()), scale)


def psnr(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """PSNR in dB of ``sr`` against ``hr`` (both ``(C, H, W)`` in [0, 1]), module conventions;
    ``inf`` for identical images."""
    a, b = _pair(sr, hr, scale)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def ssim(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """SSIM of ``sr`` against ``hr`` (both ``(C, H, W)`` in [0, 1]), module conventions."""
    from skimage.metrics import structural_similarity  # the optional `data` extra

    a, b = _pair(sr, hr, scale)
    if min(a.shape) < SSIM_WINDOW:
        raise ValueError(f"SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window needs images of at least {SSIM_WINDOW} pixels a "
                         f"side after the {scale}-pixel border crop; these are {a.shape[0]}x{a.shape[1]}")
    return float(structural_similarity(a, b, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))
