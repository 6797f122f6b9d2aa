"""Photographs for super-resolution: the bundled ones (offline), a folder of the user's, the split by image,
the bicubic degradation and BT.601's Y; every bad input a ValueError naming its argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sepconv.data.datasets import UnreadableImage
from sepconv.data.photos import BUNDLED, HELD_OUT, bundled_photo, degrade, load_sr_data, mod_crop, rgb_to_y

pytestmark = pytest.mark.usefixtures("one_thread")


def write_photo(path, seed: int, size=(30, 36)) -> None:
    from PIL import Image

    array = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def photos():
    return load_sr_data("photos", scale=2, patch=48)


def test_every_bundled_photo_loads_without_a_download(photos, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("a bundled photo tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    for photo in BUNDLED:
        image = bundled_photo(photo.name)
        assert image.dtype == torch.uint8 and image.dim() == 3 and image.shape[0] == 3, photo.name
        assert min(image.shape[1:]) >= 300
    grey = bundled_photo("camera")
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    with pytest.raises(ValueError, match="name='lena' is no bundled photo; bundled: china, flower"):
        bundled_photo("lena")


def test_bundled_photos_split_by_image(photos):
    train = [im.name for im in photos.train]
    assert photos.held_out_names == HELD_OUT == ("flower", "chelsea", "coffee")
    assert sorted(train + list(HELD_OUT)) == sorted(p.name for p in BUNDLED) and not set(train) & set(HELD_OUT)
    assert {p.package for p in BUNDLED if p.name in HELD_OUT} == {"scikit-learn", "scikit-image"}
    assert photos.name == "photos" and photos.scale == 2 and photos.patch == 48
    assert photos.describe() == {"task": "super_resolution", "data": "photos", "scale": 2,
                                 "held_out": list(HELD_OUT), "channels": 3}
    # an epoch tiles the training pixels about once
    pixels = sum(im.hr[0].numel() for im in photos.train)
    assert abs(photos.patches_per_epoch - pixels / 48 ** 2) <= 1


@pytest.mark.parametrize("scale", [2, 3])
def test_hr_is_mod_cropped_and_lr_is_its_antialiased_bicubic(scale):
    data = load_sr_data("photos", scale=scale, patch=48)
    for im in data.train + data.held_out:
        h, w = im.hr.shape[-2:]
        assert h % scale == 0 and w % scale == 0 and im.lr.shape[-2:] == (h // scale, w // scale)
    im = data.held_out[1]  # chelsea, 300x451: 451 is cropped to 450 (x2) or 450 (x3)
    assert im.hr.shape[-1] == 450
    reference = F.interpolate(im.hr.float()[None], scale_factor=1 / scale, mode="bicubic", antialias=True,
                              align_corners=False).round().clamp(0, 255).to(torch.uint8)[0]
    assert torch.equal(im.lr, reference)


def test_degrade_keeps_flat_images_flat_and_checks_its_input():
    flat = torch.full((2, 3, 12, 12), 77, dtype=torch.uint8)
    assert torch.equal(degrade(flat, 3), torch.full((2, 3, 4, 4), 77, dtype=torch.uint8))
    assert degrade(flat[0], 2).shape == (3, 6, 6)
    with pytest.raises(ValueError, match="not divisible by scale=5"):
        degrade(flat, 5)
    with pytest.raises(ValueError, match="must be uint8"):
        degrade(flat.float(), 2)
    assert mod_crop(torch.zeros(3, 301, 452), 3).shape == (3, 300, 450)


def test_y_is_bt601_as_scikit_image_computes_it():
    from skimage.color import rgb2ycbcr

    rgb = torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(0))
    expected = rgb2ycbcr(rgb.permute(1, 2, 0).double().numpy())[..., 0] / 255  # skimage: Y in [16, 235]
    np.testing.assert_allclose(rgb_to_y(rgb.double())[0].numpy(), expected, rtol=0, atol=1e-12)
    assert rgb_to_y(torch.zeros(1, 3, 1, 1)).item() == pytest.approx(16 / 255)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 3, H, W\) RGB"):
        rgb_to_y(torch.zeros(1, 4, 2, 2))


def test_a_folder_of_photos_is_split_by_image(tmp_path):
    for i in range(5):
        write_photo(tmp_path / f"p{i}.png", i)
    (tmp_path / "notes.txt").write_text("not a photo")
    data = load_sr_data(f"photos:{tmp_path}", scale=3, patch=24, val_split=0.4)
    names = sorted([im.name for im in data.train] + list(data.held_out_names))
    assert names == [f"p{i}.png" for i in range(5)] and len(data.held_out) == 2
    assert data.name == f"photos:{tmp_path}"
    assert load_sr_data(str(tmp_path), scale=3, patch=24, val_split=0.4).held_out_names == data.held_out_names
    assert data.train[0].hr.shape == (3, 30, 36) and data.train[0].lr.shape == (3, 10, 12)


@pytest.mark.parametrize("setup, spec_of, kwargs, argument, message", [
    ("none", lambda p: f"photos:{p}", {}, "data", "has no readable photos"),
    ("one", lambda p: str(p), {}, "data", "has one photo only"),
    ("two", lambda p: str(p / "missing"), {}, "data", "is not a directory"),
    ("two", lambda p: str(p), {"patch": 48}, "patch", "smaller than a 48x48 patch"),
    ("two", lambda p: str(p), {"scale": 5}, "scale", "scale=5 must be one of 2, 3, 4"),
    ("two", lambda p: str(p), {"patch": 25}, "patch", "patch=25 must be an integer multiple of scale=2"),
    ("two", lambda p: str(p), {"val_split": 1.5}, "val_split", "val_split=1.5 must be a fraction in (0, 1)"),
])
def test_bad_input_is_a_value_error_naming_the_argument(tmp_path, setup, spec_of, kwargs, argument, message):
    for i in range({"none": 0, "one": 1, "two": 2}[setup]):
        write_photo(tmp_path / f"p{i}.jpg", i)
    with pytest.raises(ValueError) as err:
        load_sr_data(spec_of(tmp_path), **{"scale": 2, "patch": 24, **kwargs})
    assert message in str(err.value) and err.value.argument == argument


def test_a_held_out_photo_must_keep_ssims_window_after_the_crop(tmp_path):
    for i in range(2):
        write_photo(tmp_path / f"p{i}.png", i, size=(16, 40))  # a 12-pixel patch fits, an SSIM measure does not
    with pytest.raises(ValueError, match=r"held-out photo p\d.png is 16x40; it needs 17 pixels a side") as err:
        load_sr_data(str(tmp_path), scale=3, patch=12)
    assert err.value.argument == "data"


def test_an_unreadable_photo_is_named(tmp_path):
    write_photo(tmp_path / "good.png", 0)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UnreadableImage, match="broken.jpg: unreadable image"):
        load_sr_data(str(tmp_path), scale=2, patch=24)
