"""sepconv.data.images: the bundled digits at a model's input shape, or images from an array file of
that shape (.npy, .npz, .safetensors), with labels where the file has them; bad files named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from sepconv.data.images import digits, load_images


def test_digits_at_the_input_shape_normalised_and_repeated_over_channels():
    images, labels = digits((4, 3, 16, 12))
    assert images.shape == (1797, 3, 16, 12) and labels.shape == (1797,)
    assert abs(float(images.mean())) < 1e-4 and abs(float(images.std()) - 1) < 1e-3
    assert torch.equal(images[:, 0], images[:, 2]) and images.is_contiguous()
    assert torch.equal(load_images("digits", (1, 3, 16, 12))[0], images)
    with pytest.raises(ValueError, match=r"input_shape=\(3, 16, 16\) must be 4 positive integers"):
        digits((3, 16, 16))


@pytest.mark.parametrize("kind", ["npy", "npz", "safetensors"])
def test_array_files(tmp_path, kind):
    images = np.random.default_rng(0).standard_normal((5, 1, 4, 4)).astype(np.float32)
    labels = np.arange(5)
    path = tmp_path / f"data.{kind}"
    if kind == "npy":
        np.save(path, images)
    elif kind == "npz":
        np.savez(path, images=images, labels=labels)
    else:
        save_file({"images": images, "labels": labels}, str(path))
    x, y = load_images(path, (1, 1, 4, 4))
    assert x.dtype == torch.float32 and np.array_equal(x.numpy(), images)
    assert y is None if kind == "npy" else torch.equal(y, torch.arange(5))


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"data='nonesuch' is neither 'digits' nor an existing file"):
        load_images("nonesuch", (1, 1, 4, 4))
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(ValueError, match=r"must be 'digits' or a .npy, .npz or .safetensors file"):
        load_images(tmp_path / "x.csv", (1, 1, 4, 4))
    np.savez(tmp_path / "x.npz", pixels=np.zeros((2, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"has no array named 'images' \(has: pixels\)"):
        load_images(tmp_path / "x.npz", (1, 1, 4, 4))
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"x.npy' has shape \(2, 3, 4, 4\); the model takes \(N, 1, 4, 4\)"):
        load_images(tmp_path / "x.npy", (1, 1, 4, 4))
    np.savez(tmp_path / "y.npz", images=np.zeros((2, 1, 4, 4), np.float32), labels=np.arange(3))
    with pytest.raises(ValueError, match=r"labels have shape \(3,\), expected \(2,\)"):
        load_images(tmp_path / "y.npz", (1, 1, 4, 4))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):  # never unpickled
        load_images(tmp_path / "objects.npy", (1, 1, 4, 4))


@pytest.mark.parametrize("images, message", [
    (np.full((2, 1, 4, 4), np.nan, np.float32), r"32 values are NaN or infinite; images must be finite numbers"),
    (np.where(np.eye(4, dtype=bool), np.inf, 0.0).reshape(1, 1, 4, 4).repeat(2, 0), r"8 values are NaN or infinite"),
    (np.full((2, 1, 4, 4), "a"), r"images have dtype <U1; they must be real numbers"),
    (np.zeros((2, 1, 4, 4), bool), r"images have dtype bool; they must be real numbers"),
    (np.zeros((2, 1, 4, 4), complex), r"images have dtype complex128; they must be real numbers"),
])
def test_calibration_images_must_be_finite_real_numbers(tmp_path, images, message):
    np.save(tmp_path / "x.npy", images)
    with pytest.raises(ValueError, match=rf"data='.*x.npy': {message}"):
        load_images(tmp_path / "x.npy", (1, 1, 4, 4))


def test_integer_images_load_and_labels_must_be_integers(tmp_path):
    np.save(tmp_path / "u8.npy", np.full((2, 1, 4, 4), 7, np.uint8))
    x, y = load_images(tmp_path / "u8.npy", (1, 1, 4, 4))
    assert x.dtype == torch.float32 and float(x[0, 0, 0, 0]) == 7.0 and y is None
    np.savez(tmp_path / "l.npz", images=np.zeros((2, 1, 4, 4), np.float32), labels=np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"labels have dtype float64; they must be integers"):
        load_images(tmp_path / "l.npz", (1, 1, 4, 4))
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"data='.*bad.npy': not a readable .npy file of arrays"):
        load_images(tmp_path / "bad.npy", (1, 1, 4, 4))
