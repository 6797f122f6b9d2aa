"""PSNR and SSIM against scikit-image's on random pairs, with the stated conventions: 8-bit images, Y of
BT.601, ``scale`` pixels cropped at the borders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sepconv.train.sr_metrics import luma_255, psnr, quantize, ssim


def pair(seed: int, channels: int, size=(40, 52), noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = quantize(torch.rand(channels, *size, generator=g))
    return (hr + noise * torch.randn(hr.shape, generator=g)).clamp(0, 1), hr


def skimage_y(image: torch.Tensor, scale: int) -> np.ndarray:
    """scikit-image's own path: 8-bit image -> rgb2ycbcr's Y (or the one channel) -> border crop."""
    array = np.round(image.clamp(0, 1).double().numpy() * 255) / 255
    y = rgb2ycbcr(array.transpose(1, 2, 0))[..., 0] if array.shape[0] == 3 else array[0] * 255
    return y[scale:-scale, scale:-scale]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("channels, scale", [(3, 2), (3, 3), (1, 2), (1, 4)])
def test_psnr_and_ssim_agree_with_skimage_metrics(seed, channels, scale):
    sr, hr = pair(seed, channels, noise=0.02 * (seed + 1))
    a, b = skimage_y(sr, scale), skimage_y(hr, scale)
    assert psnr(sr, hr, scale) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-9)
    expected = structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert ssim(sr, hr, scale) == pytest.approx(expected, abs=1e-9)
    assert 0 < ssim(sr, hr, scale) < 1


def test_only_the_border_differs_then_the_images_are_equal():
    sr, hr = pair(0, 3, noise=0.0)
    changed = sr.clone()
    changed[:, :2] = 1 - changed[:, :2]  # two rows at the top: inside the x2 crop, outside a x1 one
    assert psnr(changed, hr, scale=2) == math.inf and ssim(changed, hr, scale=2) == pytest.approx(1.0)
    assert psnr(changed, hr, scale=3) == math.inf
    assert math.isfinite(psnr(torch.cat([hr[:, :2], hr[:, 2:]], 1).flip(1), hr, scale=2))


def test_outputs_are_compared_as_8_bit_images():
    _, hr = pair(1, 1)
    below_a_level = hr + 0.4 / 255  # rounds back to hr
    assert psnr(below_a_level, hr, 2) == math.inf
    assert psnr(hr + 2.0, hr, 2) == psnr(torch.ones_like(hr), hr, 2)  # clamped to [0, 1] first
    assert luma_255(torch.ones(1, 8, 8), 2).max() == 255 and luma_255(torch.ones(3, 8, 8), 2).max() == 235


def test_bad_pairs_are_refused():
    with pytest.raises(ValueError, match="must have one shape"):
        psnr(torch.zeros(1, 8, 8), torch.zeros(1, 8, 9), 2)
    with pytest.raises(ValueError, match="too small to crop 4 pixels"):
        ssim(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8), 4)
    with pytest.raises(ValueError, match=r"must be \(1, H, W\) Y or \(3, H, W\) RGB"):
        psnr(torch.zeros(2, 8, 8), torch.zeros(2, 8, 8), 2)


def test_ssim_needs_its_window_after_the_crop():
    with pytest.raises(ValueError, match="SSIM's 11x11 window needs images of at least 11 pixels a side after the "
                                         "2-pixel border crop; these are 10x20"):
        ssim(torch.zeros(1, 14, 24), torch.zeros(1, 14, 24), 2)
