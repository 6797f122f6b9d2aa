"""sepconv.train.augment: per-epoch generators, RandomResizedCrop parameters, and the batch
augmentation on uint8 images."""

from __future__ import annotations

import doctest

import pytest
import torch

from sepconv.train import augment
from sepconv.train.augment import Augment, crop_params, epoch_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_crop_params_follow_random_resized_crop():
    p = crop_params(2000, torch.Generator().manual_seed(1), scale=(0.3, 0.6), ratio=(0.5, 2.0))
    w, h, cx, cy, flip = p.unbind(1)
    area = w * h
    assert float(area.min()) >= 0.3 - 1e-5 and float(area.max()) <= 0.6 + 1e-5
    assert bool(((w / h) >= 0.5 - 1e-4).all() and ((w / h) <= 2 + 1e-4).all())
    assert bool((cx - w / 2 >= -1e-6).all() and (cx + w / 2 <= 1 + 1e-6).all())
    assert set(flip.tolist()) == {-1.0, 1.0}
    assert torch.equal(crop_params(5, epoch_generator(3, 1)), crop_params(5, epoch_generator(3, 1)))
    assert not torch.equal(crop_params(5, epoch_generator(3, 1)), crop_params(5, epoch_generator(3, 2)))
    with pytest.raises(ValueError, match="crop_scale"):
        crop_params(1, torch.Generator(), scale=(0.0, 1.0))


def test_augment_identity_crop_flip_and_eval():
    aug = Augment(size=4, mean=(0.0,), std=(1.0,), hflip=True)
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4) * 10
    whole = torch.tensor([[1.0, 1.0, 0.5, 0.5, 1.0]])
    assert torch.allclose(aug.train(x, whole), x.float() / 255, atol=1e-6)
    flipped = torch.tensor([[1.0, 1.0, 0.5, 0.5, -1.0]])
    assert torch.allclose(aug.train(x, flipped), x.float().flip(-1) / 255, atol=1e-6)
    left_half = torch.tensor([[0.5, 1.0, 0.25, 0.5, 1.0]])  # the left two columns, stretched to four
    out = aug.train(x, left_half)
    assert torch.allclose(out[..., 0], x[..., 0].float() / 255, atol=0.03) and float(out[..., 2:].max()) <= 0.55
    norm = Augment(size=8, mean=(0.5,), std=(0.25,), eval_crop=0.5, channels_last=True)
    y = norm.eval(torch.full((2, 1, 16, 16), 255, dtype=torch.uint8))
    assert y.shape == (2, 1, 8, 8) and torch.allclose(y, torch.full_like(y, 2.0))
    assert y.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match=r"must be \(B, 1, H, W\)"):
        aug.eval(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


def test_epoch_generators_differ_by_seed_epoch_and_stream():
    draws = {(s, e, k): torch.rand(4, generator=epoch_generator(s, e, k)).tolist()
             for s in (0, 1) for e in (0, 1) for k in (0, 1)}
    assert len({tuple(v) for v in draws.values()}) == len(draws)
    assert torch.rand(4, generator=epoch_generator(1, 0, 1)).tolist() == draws[(1, 0, 1)]


def test_epoch_params_are_one_box_per_sample_and_fixed_per_epoch():
    aug = Augment(size=8, mean=(0.5,), std=(0.5,), hflip=False)
    params = aug.epoch_params(50, seed=3, epoch=2)
    assert params.shape == (50, 5) and set(params[:, 4].tolist()) == {1.0}  # no flip
    assert torch.equal(params, aug.epoch_params(50, seed=3, epoch=2))
    assert not torch.equal(params, aug.epoch_params(50, seed=3, epoch=3))  # another epoch, other boxes


def test_crop_params_refuse_a_bad_ratio():
    with pytest.raises(ValueError, match=r"ratio=\(2.0, 1.0\) must satisfy 0 < min <= max"):
        crop_params(1, torch.Generator(), ratio=(2.0, 1.0))


def test_docstring_examples():
    result = doctest.testmod(augment, extraglobs={"torch": torch})
    assert result.attempted >= 2 and result.failed == 0
