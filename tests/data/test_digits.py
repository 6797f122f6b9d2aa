"""sepconv.data.digits: the bundled UCI digits, read in one place — 1,797 grey 8x8 images in [0, 1]
(grey level / 16) and their 10 classes."""

from __future__ import annotations

import torch

from sepconv.data.digits import raw_digits


def test_raw_digits():
    images, labels = raw_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (1797,) and labels.dtype == torch.int64
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert torch.equal(images * 16, (images * 16).round())  # 17 grey levels, 0..16
    assert torch.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_the_same_data_every_time():
    (a, la), (b, lb) = raw_digits(), raw_digits()
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert a.data_ptr() != b.data_ptr()  # fresh tensors: a caller may change its copy
