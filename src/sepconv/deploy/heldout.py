"""The images ``sepconv optimize`` calibrates int8 on and checks every candidate against fp32 on.

``data`` is a training data spec (``digits``, ``folder:PATH``, ``cifar10:PATH``, ...;
:func:`sepconv.data.datasets.load_data`) or an array file of ready (N, C, H, W) images
(:func:`sepconv.data.images.load_images`). Images are prepared for the model at the size it is
deployed at:

- a model ``sepconv train`` saved (its sidecar records the preprocessing) gets the images exactly as
  its evaluation saw them: resized to the deployed size, centre-cropped and normalised with the
  recorded mean and std, on the recorded number of channels — so its accuracy here is its accuracy;
- any other model gets :func:`sepconv.data.images.digits`-style images: resized, normalised to zero
  mean and unit variance, repeated over its channels.

Both splits of a training data set are pooled and shuffled with a fixed seed; the first
``calibration`` images calibrate int8, the next ``held_out`` (default: all the rest, at least
:data:`MIN_HELD_OUT`) are held out: no candidate is calibrated on an image it is checked on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._util.checks import ArgumentError, positive_int
from .._util.memory import check_fits, format_bytes
from ..data.datasets import load_data
from ..data.images import BUNDLED, load_images

__all__ = ["CALIBRATION", "MIN_HELD_OUT", "DeployImages", "deploy_images"]

CALIBRATION = 256
MIN_HELD_OUT = 1000
SEED = 0


@dataclass(frozen=True)
class DeployImages:
    """Calibration images, held-out images and their labels (None when the data has none), float32
    ``(N, C, H, W)`` at the deployed size, and what they are in one line."""

    calibration: torch.Tensor
    held_out: torch.Tensor
    labels: torch.Tensor | None
    description: str


def _is_training_spec(data: str) -> bool:
    kind, sep, _ = data.partition(":")
    return data in BUNDLED or (sep and kind in ("folder", "cifar10", "cifar100")) or Path(data).is_dir()


def _pooled(data: str, train: dict[str, Any], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of both splits of ``data``, as the training run's evaluation prepared them."""
    from ..train.augment import Augment

    dataset = load_data(data, img_size=size)
    if dataset.channels != train["channels"] or dataset.num_classes != len(train["classes"]):
        raise ArgumentError("data", f"data={data!r} has {dataset.num_classes} classes x {dataset.channels} channels; "
                                    f"the model was trained on {train['data']} ({len(train['classes'])} classes x "
                                    f"{train['channels']} channels)")
    augment = Augment(size, train["mean"], train["std"], eval_crop=float(train["eval_crop"]))
    images, labels = [], []
    for split in (dataset.train, dataset.val):
        if hasattr(split, "images"):  # in memory
            images.append(split.images)
            labels.append(split.labels)
        else:
            items = [split[i] for i in range(len(split))]
            images.append(torch.stack([item[0] for item in items]))
            labels.append(torch.tensor([item[1] for item in items]))
    raw = torch.cat(images)
    out = torch.cat([augment.eval(part) for part in raw.split(256)])
    return out, torch.cat(labels)


def deploy_images(data: str, input_shape: tuple[int, int, int, int], train: dict[str, Any] | None = None, *,
                  calibration: int = CALIBRATION, held_out: int | None = None,
                  min_held_out: int = MIN_HELD_OUT) -> DeployImages:
    """The calibration and held-out images of ``data`` for a model taking ``input_shape`` (only C,
    H and W matter). ``train`` is the model's sidecar ``train`` record, when it has one.

    Example::

        >>> images = deploy_images("digits", (1, 3, 32, 32))
        >>> images.calibration.shape, images.held_out.shape, images.labels.shape
        (torch.Size([256, 3, 32, 32]), torch.Size([1541, 3, 32, 32]), torch.Size([1541]))
    """
    if not isinstance(data, str) or not data.strip():
        raise ArgumentError("data", f"data={data!r} must be 'digits', a training data spec or an image array file")
    positive_int("calibration", calibration)
    _, c, h, w = input_shape
    per_image = c * h * w * 4
    if train is not None and train.get("task") != "super_resolution" and _is_training_spec(data):
        if h != w:
            raise ArgumentError("input_shape", f"input_shape={list(input_shape)}: a trained model's images are square")
        if data in BUNDLED:  # other data sets are checked by their loaders
            check_fits(1797 * per_image * 2, f"data={data!r} at {h}x{w}: the images", argument="data")
        images, labels = _pooled(data, train, h)
        what = f"{data}, preprocessed as in training"
    else:
        if data in BUNDLED:
            check_fits(1797 * per_image * 2, f"data={data!r} at {h}x{w}: the images", argument="data")
        images, labels = load_images(data, (1, c, h, w))
        what = data
    n = images.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SEED))
    held = n - calibration if held_out is None else positive_int("held_out", held_out)
    if held < min_held_out or calibration + held > n:
        raise ArgumentError("data", f"data={data!r} has {n} images: {calibration} calibrate int8 and at least "
                                    f"{min_held_out} must be held out ({held} asked for); give more images")
    cal, rest = order[:calibration], order[calibration:calibration + held]
    return DeployImages(images[cal].contiguous(), images[rest].contiguous(),
                        None if labels is None else labels[rest].long(),
                        f"{held} held-out images of {what} ({format_bytes(held * per_image)})")
