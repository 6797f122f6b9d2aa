"""A tiny registered model for the training tests, tiny data sets on disk, and a CLI entry.

``tiny_train_net`` is a stem, one depthwise-separable block and a linear head: seconds to train
on 16 px digits. ``norm=False`` builds it without BatchNorm, the model of the DDP equality test
(per-rank batch statistics would make 2 ranks differ from 1 process by design). Run as a
script, this file is ``sepconv`` with the model registered (for subprocess and torchrun tests).
"""

from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import torch
from PIL import Image
from torch import nn

from sepconv.layers import ConvNormAct, DepthwiseSeparableBlock
from sepconv.models.registry import model_entry, register_model

NAME = "tiny_train_net"


class TinyNet(nn.Module):
    """Stem (3x3, stride 2) -> depthwise-separable block (stride 2) -> pool -> dropout -> linear."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0, width_mult: float = 1.0,
                 norm: bool = True) -> None:
        super().__init__()
        width = max(2, round(8 * width_mult))
        norm_layer = nn.BatchNorm2d if norm else None
        self.stem = ConvNormAct(in_chans, width, 3, stride=2, norm_layer=norm_layer)
        self.block = DepthwiseSeparableBlock(width, 2 * width, stride=2, norm_layer=norm_layer)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.drop(self.pool(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def write_png(path, color, size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def make_folder(root, classes=("cat", "dog"), per_class=5):
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_png(root / name / f"{i}.png", (200 * c, 10 * i, 0))
    return root


def cifar_batch(n, label_key, seed):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"test batch", label_key: rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


def make_cifar10(root, n=8):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        (root / f"data_batch_{i}").write_bytes(pickle.dumps(cifar_batch(n, b"labels", i), protocol=2))
    (root / "test_batch").write_bytes(pickle.dumps(cifar_batch(n, b"labels", 9), protocol=2))
    names = [f"class{i}".encode() for i in range(10)]
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=2))
    return root


def register() -> None:
    try:
        model_entry(NAME)
    except ValueError:
        register_model(NAME, paper="test model", input_size=16)(TinyNet)


register()


def log_file_writes(log: str, under: str) -> None:
    """Append ``<RANK> <event> <path>`` to ``log`` for every file or directory this process
    creates, opens for writing, renames or removes below ``under`` (Python's audit events, so any
    way of writing counts), after a ``<RANK> start`` line that shows the hook was installed."""
    rank = os.environ.get("RANK", "0")
    root = os.path.realpath(under)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # before the hook: not logged itself
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def record(event: str, path: object) -> None:
        if isinstance(path, (str, bytes, os.PathLike)) and os.path.realpath(os.fsdecode(path)).startswith(root):
            os.write(fd, f"{rank} {event} {os.fsdecode(path)}\n".encode())

    def hook(event: str, args: tuple) -> None:
        if event == "open" and (args[1] is not None and any(c in args[1] for c in "wax+")
                                or args[1] is None and isinstance(args[2], int) and args[2] & writing):
            record(event, args[0])
        elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree"):
            record(event, args[1] if event == "os.rename" else args[0])  # rename: the destination

    os.write(fd, f"{rank} start {root}\n".encode())
    sys.addaudithook(hook)


if __name__ == "__main__":
    from sepconv.cli import main

    if os.environ.get("SEPCONV_TEST_WRITE_LOG"):
        log_file_writes(os.environ["SEPCONV_TEST_WRITE_LOG"], os.environ["SEPCONV_TEST_WRITE_UNDER"])
    sys.exit(main(sys.argv[1:]))
