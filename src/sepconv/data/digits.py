"""The bundled data: scikit-learn's copy of the UCI handwritten digits, read in one place.

1,797 grey 8x8 images of 10 classes, 0..16 grey levels. Training uses them as a dataset with a
stratified split (:func:`sepconv.data.datasets.digits_data`); calibration and held-out checks as one
batch at a model's input shape (:func:`sepconv.data.images.digits`). Both start here.

Example::

    >>> images, labels = raw_digits()
    >>> images.shape, images.dtype, int(labels.max())
    (torch.Size([1797, 1, 8, 8]), torch.float32, 9)
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["raw_digits"]


def raw_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All digits as (1797, 1, 8, 8) float images in [0, 1] (grey level / 16) and int64 labels."""
    from sklearn.datasets import load_digits  # the optional `data` extra

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32)).unsqueeze(1) / 16.0
    return images, torch.from_numpy(bunch.target.astype(np.int64))
