"""Images for calibration and held-out checks: the bundled digits, or an array file of the model's shape.

The bundled data is scikit-learn's copy of the UCI handwritten digits (1,797 8x8 grey images,
10 classes), resized to the model's input and repeated over its channels: real images, so that
activation ranges are those of real data, and small enough to ship with the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..engines.shapes import check_images, check_shape
from .digits import raw_digits

BUNDLED = ("digits",)


def digits(input_shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as (N, C, H, W) float images normalised to zero mean, unit variance, and labels.

    Example::

        >>> images, labels = digits((1, 3, 32, 32))
        >>> images.shape, labels.shape
        (torch.Size([1797, 3, 32, 32]), torch.Size([1797]))
    """
    _, c, h, w = check_shape("input_shape", input_shape)
    x, labels = raw_digits()  # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    x = ((x - x.mean()) / x.std()).expand(-1, c, -1, -1).contiguous()
    return x, labels


def load_images(spec: str | Path, input_shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``"digits"``, or a ``.npy`` / ``.npz`` / ``.safetensors`` file holding (N, C, H, W) images
    (``.npz`` and ``.safetensors``: under the key ``images``, with optional ``labels``)."""
    if str(spec) in BUNDLED:
        return digits(input_shape)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"data={str(spec)!r} is neither {' nor '.join(map(repr, BUNDLED))} nor an existing file")
    labels = None
    if path.suffix == ".npy":
        images = np.load(path, allow_pickle=False)
    elif path.suffix in (".npz", ".safetensors"):
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                arrays = dict(f)
        else:
            from safetensors.numpy import load_file

            arrays = load_file(str(path))
        if "images" not in arrays:
            raise ValueError(f"data={str(spec)!r} has no array named 'images' (has: {', '.join(arrays) or 'none'})")
        images, labels = arrays["images"], arrays.get("labels")
    else:
        raise ValueError(f"data={str(spec)!r} must be 'digits' or a .npy, .npz or .safetensors file")
    x = torch.from_numpy(np.asarray(images, dtype=np.float32))
    check_images("data", x, input_shape)
    y = None if labels is None else torch.from_numpy(np.asarray(labels, dtype=np.int64))
    if y is not None and y.shape != (x.shape[0],):
        raise ValueError(f"data={str(spec)!r}: labels have shape {tuple(y.shape)}, expected ({x.shape[0]},)")
    return x, y


