"""Photographs for super-resolution: the ones that ship inside maintained packages, or a folder of the user's.

``photos`` is every real photograph bundled in scikit-learn's and scikit-image's wheels (no
download: scikit-image's other images are fetched at run time and are left out), listed by name in
:data:`BUNDLED`, split by image: :data:`HELD_OUT` (flower, chelsea, coffee) are the held-out
images, never cut into training patches, the other six train. ``photos:PATH`` (or a directory
``PATH``) is a folder of the user's PNG/JPEG photos (read with Pillow, as RGB), a seeded
``val_split`` fraction of them held out (at least one, and one left to train).

Degradation, the one every model here is trained and measured with: a high-resolution (HR)
image is cropped to a multiple of ``scale`` (*mod crop*) and down-sampled ``scale`` times by
torch's bicubic interpolation with antialiasing (``F.interpolate(mode="bicubic",
antialias=True)``, the kernel of MATLAB's ``imresize`` that the SR papers use), then rounded to
8 bits as a stored low-resolution (LR) image is. Training cuts random patches from the LR image and
the HR patch above each (:class:`sepconv.train.superres.PatchSampler`), so that a patch's border
sees the same filter as the whole image.

Example::

    >>> data = load_sr_data("photos", scale=2, patch=48)
    >>> data.held_out_names, data.train[0].hr.shape, data.train[0].lr.shape
    (('flower', 'chelsea', 'coffee'), torch.Size([3, 426, 640]), torch.Size([3, 213, 320]))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._util.checks import ArgumentError
from .datasets import IMAGE_EXTENSIONS, SPLIT_SEED, UnreadableImage

__all__ = ["BUNDLED", "HELD_OUT", "SR_SCALES", "Photo", "SRData", "SRImage", "bundled_photo", "degrade",
           "load_sr_data", "mod_crop", "rgb_to_y"]

SR_SCALES = (2, 3, 4)
MIN_MEASURED = 11  # a held-out photo keeps SSIM's 11x11 window after its border crop


@dataclass(frozen=True)
class Photo:
    """One bundled photograph: its name, the package that ships it, and its loader there."""

    name: str
    package: str  # "scikit-learn" or "scikit-image"
    loader: str  # sklearn: the file name in load_sample_images(); skimage: the skimage.data function
    note: str = ""


# Every real photograph inside the two wheels (scikit-image 0.26: its README lists which ship).
BUNDLED = (
    Photo("china", "scikit-learn", "china.jpg", "a temple in China, 427x640"),
    Photo("flower", "scikit-learn", "flower.jpg", "a flower, 427x640"),
    Photo("astronaut", "scikit-image", "astronaut", "Eileen Collins, NASA, 512x512"),
    Photo("camera", "scikit-image", "camera", "the cameraman, grey, 512x512"),
    Photo("chelsea", "scikit-image", "chelsea", "a cat, 300x451"),
    Photo("coffee", "scikit-image", "coffee", "a cup of coffee, 400x600"),
    Photo("immunohistochemistry", "scikit-image", "immunohistochemistry", "a stained tissue micrograph, 512x512"),
    Photo("motorcycle", "scikit-image", "stereo_motorcycle", "a motorcycle (left view of the stereo pair), 500x741"),
    Photo("rocket", "scikit-image", "rocket", "a rocket launch, 427x640"),
)
HELD_OUT = ("flower", "chelsea", "coffee")  # one from scikit-learn, two from scikit-image


def bundled_photo(name: str) -> torch.Tensor:
    """The bundled photograph ``name`` (:data:`BUNDLED`) as uint8 ``(3, H, W)`` RGB (grey ones repeated)."""
    photo = next((p for p in BUNDLED if p.name == name), None)
    if photo is None:
        raise ArgumentError("name", f"name={name!r} is no bundled photo; bundled: {', '.join(p.name for p in BUNDLED)}")
    if photo.package == "scikit-learn":
        from sklearn.datasets import load_sample_image  # the optional `data` extra

        array = load_sample_image(photo.loader)
    else:
        try:
            import skimage.data  # the optional `data` extra
        except ImportError as err:
            raise ValueError(f"photo {name!r} ships with scikit-image, which is not installed "
                             "(pip install 'sepconv[data]')") from err
        array = getattr(skimage.data, photo.loader)()
        if isinstance(array, tuple):  # stereo_motorcycle: (left, right, disparity)
            array = array[0]
    return _as_rgb(np.asarray(array), name)


def _as_rgb(array: np.ndarray, where: str) -> torch.Tensor:
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"{where}: {array.shape} {array.dtype} is no 8-bit grey or RGB image")
    if array.ndim == 2:
        array = array[:, :, None]
    array = np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[:, :, :3]
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).contiguous()


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """The luma Y of ITU-R BT.601 from RGB in [0, 1]: ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``,
    in [16/255, 235/255] (MATLAB's ``rgb2ycbcr``, the SR papers' Y; ``skimage.color.rgb2ycbcr`` / 255).
    ``x`` is ``(..., 3, H, W)``; the result ``(..., 1, H, W)``.

    Example::

        >>> rgb_to_y(torch.ones(1, 3, 1, 1)).item() * 255
        235.0
    """
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"rgb_to_y: expected (..., 3, H, W) RGB, got shape {tuple(x.shape)}")
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(3, 1, 1)
    return ((x * w).sum(-3, keepdim=True) + 16.0) / 255.0


def mod_crop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """``image`` (``(..., H, W)``) cropped at the bottom and right to sides that ``scale`` divides."""
    h, w = image.shape[-2:]
    return image[..., : h - h % scale, : w - w % scale]


def degrade(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The low-resolution image of ``hr`` (uint8 ``(C, H, W)`` or ``(B, C, H, W)``, sides divisible by
    ``scale``): torch bicubic with antialiasing, ``scale`` times smaller, rounded back to uint8.

    Example::

        >>> degrade(torch.full((3, 6, 6), 200, dtype=torch.uint8), 3).tolist()[0]
        [[200, 200], [200, 200]]
    """
    if hr.dtype != torch.uint8:
        raise ValueError(f"degrade: hr must be uint8, got {hr.dtype}")
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"degrade: {h}x{w} is not divisible by scale={scale} (mod_crop first)")
    x = hr.float().unsqueeze(0) if hr.dim() == 3 else hr.float()
    lr = F.interpolate(x, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)
    lr = lr.round_().clamp_(0, 255).to(torch.uint8)
    return lr[0] if hr.dim() == 3 else lr


@dataclass(frozen=True)
class SRImage:
    """One photograph at one scale: its name, the mod-cropped HR image and its degraded LR image (uint8)."""

    name: str
    hr: torch.Tensor  # (3, H, W), H and W divisible by the scale
    lr: torch.Tensor  # (3, H/scale, W/scale)


@dataclass(frozen=True)
class SRData:
    """Super-resolution data at one ``scale``: training and held-out photographs, and the HR patch side."""

    name: str
    scale: int
    patch: int
    train: tuple[SRImage, ...]
    held_out: tuple[SRImage, ...]

    @property
    def held_out_names(self) -> tuple[str, ...]:
        return tuple(im.name for im in self.held_out)

    @property
    def patches_per_epoch(self) -> int:
        """As many patches as tile the training images once (an epoch sees each pixel about once)."""
        return max(1, round(sum(im.hr.shape[-2] * im.hr.shape[-1] for im in self.train) / self.patch ** 2))

    def describe(self) -> dict[str, Any]:
        """What evaluation needs to rebuild the same held-out set (stored in checkpoints)."""
        return {"task": "super_resolution", "data": self.name, "scale": self.scale,
                "held_out": list(self.held_out_names), "channels": 3}


def load_sr_data(spec: str, *, scale: int, patch: int = 48, val_split: float = 0.2) -> SRData:
    """The photographs ``spec`` names (``"photos"``, ``"photos:PATH"`` or a directory; module
    docstring) at ``scale``, with training patches of ``patch`` x ``patch`` HR pixels.

    Raises ``ValueError`` naming the argument for an unknown ``scale``, a ``patch`` that ``scale``
    does not divide, a training photo smaller than a patch, and a folder without readable photos.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in SR_SCALES:
        raise ArgumentError("scale", f"scale={scale!r} must be one of {', '.join(map(str, SR_SCALES))}")
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 2 * scale or patch % scale:
        raise ArgumentError("patch", f"patch={patch!r} must be an integer multiple of scale={scale}, at least "
                                     f"{2 * scale} (the HR side of a training patch)")
    if isinstance(val_split, bool) or not isinstance(val_split, (int, float)) or not 0 < val_split < 1:
        raise ArgumentError("val_split", f"val_split={val_split!r} must be a fraction in (0, 1)")
    if not isinstance(spec, str) or not spec.strip():
        raise ArgumentError("data", f"data={spec!r} must be 'photos', 'photos:PATH' or a directory of photos")
    if spec == "photos":
        named = [(p.name, bundled_photo(p.name)) for p in BUNDLED]
        held = set(HELD_OUT)
        name = "photos"
    else:
        kind, sep, rest = spec.partition(":")
        folder = Path(rest if sep and kind == "photos" else spec).expanduser()
        named = _folder_photos(spec, folder)
        held = _held_out(spec, [n for n, _ in named], val_split)
        name = f"photos:{folder}"
    train, held_out = [], []
    for photo_name, image in named:
        hr = mod_crop(image, scale)
        if photo_name in held:
            if min(hr.shape[-2:]) < 2 * scale + MIN_MEASURED:
                raise ArgumentError("data", f"data={spec!r}: held-out photo {photo_name} is {image.shape[-2]}x"
                                            f"{image.shape[-1]}; it needs {2 * scale + MIN_MEASURED} pixels a side "
                                            f"to be measured ({scale} cropped at each border, SSIM's "
                                            f"{MIN_MEASURED}x{MIN_MEASURED} window)")
            held_out.append(SRImage(photo_name, hr, degrade(hr, scale)))
            continue
        if min(hr.shape[-2:]) < patch:
            raise ArgumentError("patch", f"patch={patch}: training photo {photo_name} is {image.shape[-2]}x"
                                         f"{image.shape[-1]}, smaller than a {patch}x{patch} patch")
        train.append(SRImage(photo_name, hr, degrade(hr, scale)))
    return SRData(name, scale, patch, tuple(train), tuple(held_out))


def _folder_photos(spec: str, folder: Path) -> list[tuple[str, torch.Tensor]]:
    from PIL import Image

    if not folder.is_dir():
        raise ArgumentError("data", f"data={spec!r}: {folder} is not a directory (give 'photos' or a folder of "
                                    "PNG/JPEG photos)")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                   and not p.name.startswith("."))
    named = []
    for path in files:
        try:
            with Image.open(path) as im:
                array = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except Exception as err:  # noqa: BLE001 - Pillow raises many types for bad files
            raise UnreadableImage(f"{path}: unreadable image ({type(err).__name__}: {err})") from None
        named.append((str(path.relative_to(folder)), _as_rgb(array, str(path))))
    if len(named) < 2:
        found = "no readable photos" if not named else "one photo only"
        kinds = "/".join(e[1:] for e in IMAGE_EXTENSIONS[:3])
        raise ArgumentError("data", f"data={spec!r}: {folder} has {found} ({kinds} files); super-resolution needs "
                                    "at least two, one to train on and one held out")
    return named


def _held_out(spec: str, names: Sequence[str], fraction: float) -> set[str]:
    """A seeded ``fraction`` of ``names`` (at least one, and at least one left to train)."""
    k = min(max(1, round(fraction * len(names))), len(names) - 1)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(names))
    return {names[i] for i in order[:k]}
