"""Classification data for training: the bundled digits, an ImageFolder directory, CIFAR-10/100.

``load_data(spec)`` returns an :class:`ImageData`: a train and a validation split of uint8 images
of one fixed size, the class names, and the per-data-set preprocessing defaults (normalisation,
crop scale, flips). Augmentation happens later, on whole batches, with torch ops
(:mod:`sepconv.train.augment`), so every split here yields ``(uint8 (C, H, W), label, index)``.

Specs:

- ``digits``: scikit-learn's bundled copy of the UCI handwritten digits (1,797 real 8x8 grey
  images, 10 classes; no download), split 80/20, stratified, with a fixed seed.
- ``folder:PATH`` (or a directory ``PATH``): one sub-folder per class holding JPEG/PNG images read
  with Pillow, as torchvision's ``ImageFolder``; with ``train/`` and ``val/`` (or ``test/``,
  ``valid/``, ``validation/``) sub-directories those are the splits, otherwise a stratified
  ``val_split`` fraction is held out.
- ``cifar10:PATH`` / ``cifar100:PATH`` (or a directory ``PATH`` holding the files): the
  python-pickle release of Krizhevsky 2009 (``cifar-10-batches-py``: ``data_batch_1..5``,
  ``test_batch``, ``batches.meta``; ``cifar-100-python``: ``train``, ``test``, ``meta``, fine labels).

Example::

    >>> data = load_data("digits")
    >>> len(data.train), len(data.val), data.train[0][0].shape, data.classes[:3]
    (1438, 359, torch.Size([1, 8, 8]), ('0', '1', '2'))
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .digits import raw_digits

__all__ = ["FolderImages", "ImageData", "TensorImages", "UnreadableImage", "load_data", "stratified_split"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
VAL_DIRS = ("val", "valid", "validation", "test")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SPLIT_SEED = 0  # the fixed seed of every held-out split, so that train and eval agree on it


class UnreadableImage(ValueError):
    """An image file Pillow cannot decode; the message names the file.

    A class of its own so that the training loop can recognise it when a ``DataLoader`` worker
    re-raises it wrapped in a traceback, and give the one-line message back.
    """


class TensorImages(Dataset):
    """Images held in memory: uint8 ``(N, C, H, W)`` and int64 labels ``(N,)``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or labels.shape != (images.shape[0],):
            raise ValueError(f"images {tuple(images.shape)} {images.dtype} and labels {tuple(labels.shape)} must be "
                             "uint8 (N, C, H, W) and (N,)")
        self.images, self.labels = images, labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        return self.images[i], int(self.labels[i]), int(i)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Many samples in one gather, no per-sample Python (the fast path for in-memory data)."""
        return self.images[index], self.labels[index]


class FolderImages(Dataset):
    """Image files decoded on access with Pillow: RGB, shorter side resized to ``size``, centre
    cropped to ``size x size`` (a fixed size, so batches can be augmented as one tensor)."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], size: int) -> None:
        self.paths, self.labels, self.size = list(paths), torch.tensor(list(labels), dtype=torch.long), int(size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        return decode(self.paths[i], self.size), int(self.labels[i]), int(i)


def decode(path: Path, size: int) -> torch.Tensor:
    """``path`` as uint8 ``(3, size, size)``: shorter side resized to ``size``, centre crop."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
            left, top = (im.width - size) // 2, (im.height - size) // 2
            im = im.crop((left, top, left + size, top + size))
            array = np.asarray(im, dtype=np.uint8)
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for bad files
        raise UnreadableImage(f"{path}: unreadable image ({type(err).__name__}: {err})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


@dataclass(frozen=True)
class ImageData:
    """A data set split for training and validation, with its preprocessing defaults.

    ``mean``/``std`` normalise images scaled to [0, 1]; ``crop_scale`` and ``hflip`` are the
    training augmentation's defaults for this kind of data (digits are not mirror-symmetric);
    ``eval_crop`` is the centre fraction kept at evaluation; ``img_size`` the default input size.
    """

    name: str
    train: TensorImages | FolderImages
    val: TensorImages | FolderImages
    classes: tuple[str, ...]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    img_size: int
    crop_scale: tuple[float, float]
    hflip: bool
    eval_crop: float = 1.0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> dict[str, Any]:
        """What evaluation needs to preprocess images as training did (stored in checkpoints)."""
        return {"data": self.name, "classes": list(self.classes), "channels": self.channels,
                "mean": list(self.mean), "std": list(self.std), "eval_crop": self.eval_crop}


def load_data(spec: str, *, img_size: int | None = None, val_split: float = 0.2) -> ImageData:
    """Load the data set ``spec`` names (see the module docstring); ``img_size`` is the training
    input size (ImageFolder decodes to ``img_size / 0.875`` so that evaluation can centre-crop)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"data={spec!r} must be 'digits', 'folder:PATH', 'cifar10:PATH', 'cifar100:PATH' "
                         "or a directory")
    if img_size is not None and (isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 8):
        raise ValueError(f"img_size={img_size!r} must be an integer >= 8")
    if isinstance(val_split, bool) or not isinstance(val_split, (int, float)) or not 0 < val_split < 1:
        raise ValueError(f"val_split={val_split!r} must be a fraction in (0, 1)")
    kind, sep, rest = spec.partition(":")
    if spec == "digits":
        return digits_data(img_size)
    if sep and kind in ("folder", "cifar10", "cifar100") and rest:
        path = _existing_dir(spec, rest)
    else:
        kind, path = "auto", _existing_dir(spec, spec)
    if kind == "auto":
        kind = "cifar10" if (path / "data_batch_1").is_file() else \
            "cifar100" if (path / "train").is_file() and (path / "meta").is_file() else "folder"
    if kind == "folder":
        return image_folder(path, img_size, val_split, f"folder:{path}")
    return cifar(path, kind, img_size)


def _existing_dir(spec: str, path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"data={spec!r}: {p} does not exist (give 'digits' or an existing directory)")
    if not p.is_dir():
        raise ValueError(f"data={spec!r}: {p} is not a directory")
    return p


def stratified_split(labels: np.ndarray, fraction: float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) holding out ``round(fraction * n_c)`` of each class (at least one
    sample of a class stays in train), chosen with a fixed seed; both sorted.

    Example::

        >>> train, val = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1]), 0.25)
        >>> len(train), len(val)
        (7, 2)
    """
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = min(int(round(fraction * len(members))), len(members) - 1)
        val.extend(rng.permutation(members)[:k].tolist())
    val_idx = np.array(sorted(val), dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


def _stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1]."""
    x = images.float().div_(255).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).clamp_min(1e-3).tolist())


def digits_data(img_size: int | None = None) -> ImageData:
    """The bundled digits (:func:`sepconv.data.digits.raw_digits`) as uint8 images, 80/20 stratified split."""
    grey, target = raw_digits()
    images = torch.round(grey * 255).to(torch.uint8)  # (N, 1, 8, 8)
    labels = target.numpy()
    train_idx, val_idx = stratified_split(labels, 0.2)
    train = TensorImages(images[train_idx], torch.from_numpy(labels[train_idx]))
    val = TensorImages(images[val_idx], torch.from_numpy(labels[val_idx]))
    mean, std = _stats(train.images)
    return ImageData("digits", train, val, tuple(str(c) for c in range(10)), 1, mean, std,
                     img_size or 32, crop_scale=(0.8, 1.0), hflip=False)


def image_folder(root: Path, img_size: int | None, val_split: float, name: str) -> ImageData:
    """An ImageFolder tree; every file is opened and verified by Pillow before training starts,
    so that a bad file stops the run at once, naming the file, not hours in."""
    size = img_size or 224
    load_size = max(size, round(size / 0.875))
    val_dir = next((root / d for d in VAL_DIRS if (root / d).is_dir()), None)
    if (root / "train").is_dir() and val_dir is not None:
        classes, train_files = _scan(root / "train")
        val_classes, val_files = _scan(val_dir)
        if val_classes != classes:
            raise ValueError(f"{val_dir}: its class folders ({', '.join(val_classes)}) differ from "
                             f"{root / 'train'}'s ({', '.join(classes)})")
        train = FolderImages([p for p, _ in train_files], [c for _, c in train_files], load_size)
        val = FolderImages([p for p, _ in val_files], [c for _, c in val_files], load_size)
    else:
        classes, files = _scan(root)
        labels = np.array([c for _, c in files], dtype=np.int64)
        train_idx, val_idx = stratified_split(labels, val_split)
        train = FolderImages([files[i][0] for i in train_idx], labels[train_idx].tolist(), load_size)
        val = FolderImages([files[i][0] for i in val_idx], labels[val_idx].tolist(), load_size)
    return ImageData(name, train, val, classes, 3, IMAGENET_MEAN, IMAGENET_STD, size,
                     crop_scale=(0.08, 1.0), hflip=True, eval_crop=size / load_size)


def _scan(root: Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    from PIL import Image

    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"{root}: no class sub-folders (an ImageFolder has one sub-folder of images per class)")
    if len(class_dirs) < 2:
        raise ValueError(f"{root}: only one class folder ({class_dirs[0].name}); classification needs at least two")
    files: list[tuple[Path, int]] = []
    for label, d in enumerate(class_dirs):
        images = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise ValueError(f"{d}: empty class folder (no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS[:3])} images)")
        for p in images:
            try:
                with Image.open(p) as im:
                    im.verify()
            except Exception as err:  # noqa: BLE001 - Pillow raises many types for bad files
                raise UnreadableImage(f"{p}: unreadable image ({type(err).__name__}: {err})") from None
            files.append((p, label))
    return tuple(d.name for d in class_dirs), files


# CIFAR's python release is pickled numpy arrays. Unpickling can run arbitrary code, so only the
# names that an array and the batch dicts need are allowed (the release itself needs no others).
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not part of a CIFAR batch)")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path}: missing (a CIFAR directory holds the files of the python release)")
    try:
        obj = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 - a corrupt pickle raises many types
        raise ValueError(f"{path}: not a CIFAR python-pickle file ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a CIFAR python-pickle file (holds a {type(obj).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(path: Path, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    batch = _unpickle(path)
    if "data" not in batch or label_key not in batch:
        raise ValueError(f"{path}: not a CIFAR batch (keys {', '.join(sorted(batch))}; needs data and {label_key})")
    data, labels = _array(batch["data"]), _array(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],) \
            or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: not a CIFAR batch (data {data.shape} {data.dtype} must be uint8 (N, 3072), "
                         f"{label_key} {labels.shape} {labels.dtype} must be integers, shape "
                         f"({data.shape[0] if data.ndim else '?'},))")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{path}: {label_key} hold {int(labels.min())}; a class index is >= 0")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels.astype(np.int64))


def _array(value: Any) -> np.ndarray:
    """A batch's entry as an array; a bytes or str entry stays a 0-d array, refused by the shape check."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError, OverflowError):  # ragged lists and the like
        return np.asarray(None)


def _class_names(meta: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    """The meta file's class names: a list of str (or bytes)."""
    names = meta.get(key)
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, (str, bytes)) for n in names):
        raise ValueError(f"{path}: {key} must be a list of class names (str), not {_kind(names)}")
    try:
        return tuple(n.decode() if isinstance(n, bytes) else n for n in names)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: {key} holds a class name that is not UTF-8 ({err})") from None


def _kind(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} holding {', '.join(sorted({type(v).__name__ for v in value}))}"
    return "missing" if value is None else f"a {type(value).__name__}"


def cifar(root: Path, kind: str, img_size: int | None) -> ImageData:
    """CIFAR-10 (``data_batch_1..5``/``test_batch``) or CIFAR-100 (``train``/``test``, fine labels)."""
    if kind == "cifar10":
        parts = [_cifar_batch(root / f"data_batch_{i}", "labels") for i in range(1, 6)]
        test = _cifar_batch(root / "test_batch", "labels")
        meta_path, names_key = root / "batches.meta", "label_names"
    else:
        parts = [_cifar_batch(root / "train", "fine_labels")]
        test = _cifar_batch(root / "test", "fine_labels")
        meta_path, names_key = root / "meta", "fine_label_names"
    names = _class_names(_unpickle(meta_path), names_key, meta_path)
    train = TensorImages(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    val = TensorImages(*test)
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"{root}: {'the training batches hold' if len(train) == 0 else 'the test batch holds'} "
                         "no images")
    files = [root / f"data_batch_{i}" for i in range(1, 6)] + [root / "test_batch"] if kind == "cifar10" else \
        [root / "train", root / "test"]
    for path, (_, labels) in zip(files, [*parts, test]):
        if labels.numel() and int(labels.max()) >= len(names):
            raise ValueError(f"{path}: labels reach {int(labels.max())}, but {meta_path.name} names {len(names)} "
                             f"classes ({names_key})")
    present = int(train.labels.unique().numel())
    if present < 2:
        raise ValueError(f"{root}: every training image is of one class ({names[int(train.labels[0])]!r}); "
                         "classification needs at least two")
    mean, std = _stats(train.images)
    return ImageData(f"{kind}:{root}", train, val, names, 3, mean, std, img_size or 32,
                     crop_scale=(0.35, 1.0), hflip=True)
