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

from .._util.memory import check_fits
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
    (``.npz`` and ``.safetensors``: under the key ``images``, with optional ``labels``).

    The file is untrusted input: images must be real numbers (integer or floating dtype; not bool,
    complex, strings or objects) and every value finite, labels integers, and the float32 copy must
    fit in memory; anything else is one ``ValueError`` naming the file, before any use."""
    if str(spec) in BUNDLED:
        return digits(input_shape)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"data={str(spec)!r} is neither {' nor '.join(map(repr, BUNDLED))} nor an existing file")
    if path.suffix not in (".npy", ".npz", ".safetensors"):
        raise ValueError(f"data={str(spec)!r} must be 'digits' or a .npy, .npz or .safetensors file")
    images, labels = _read_arrays(path, str(spec))
    _check_dtype(spec, "images", images, "iuf", "real numbers (an integer or floating dtype)")
    check_images(f"data={str(spec)!r}", torch.empty(images.shape, device="meta"), input_shape)  # nothing allocated
    check_fits(int(np.prod(images.shape)) * 4, f"data={str(spec)!r}: its {images.shape[0]} images as float32",
               argument="data")
    x = torch.from_numpy(np.array(images, dtype=np.float32))  # a copy: the file may be memory-mapped
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"data={str(spec)!r}: {bad} values are NaN or infinite; images must be finite numbers")
    y = None
    if labels is not None:
        _check_dtype(spec, "labels", labels, "iu", "integers")
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        if y.shape != (x.shape[0],):
            raise ValueError(f"data={str(spec)!r}: labels have shape {tuple(y.shape)}, expected ({x.shape[0]},)")
    return x, y


def _read_arrays(path: Path, spec: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The images (memory-mapped where the format allows) and labels a file holds."""
    try:
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False), None
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                arrays = {name: f[name] for name in f.files}
        else:
            from safetensors.numpy import load_file

            arrays = load_file(str(path))
    except Exception as err:  # noqa: BLE001 - numpy and safetensors raise many types for a bad file
        raise ValueError(f"data={spec!r}: not a readable {path.suffix} file of arrays "
                         f"({type(err).__name__}: {' '.join(str(err).split())[:200]})") from None
    if "images" not in arrays:
        raise ValueError(f"data={spec!r} has no array named 'images' (has: {', '.join(arrays) or 'none'})")
    return arrays["images"], arrays.get("labels")


def _check_dtype(spec: str | Path, what: str, array: np.ndarray, kinds: str, rule: str) -> None:
    if not isinstance(array, np.ndarray) or array.dtype.kind not in kinds:
        dtype = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise ValueError(f"data={str(spec)!r}: {what} have dtype {dtype}; they must be {rule}")
