"""Training and evaluation: data (digits, ImageFolder, CIFAR), batch augmentation with torch ops,
the loop (SGD/AdamW, warm-up + cosine, label smoothing, EMA; precision, channels_last and torch.compile
chosen for the machine by :mod:`sepconv.train.speed`), exact-resume
checkpoints, DDP under torchrun, width sweeps and depthwise-health diagnostics.

Example::

    >>> from sepconv.train import TrainConfig, Trainer
    >>> summary = Trainer(TrainConfig("mobilenet_v2", {"width_mult": 0.5}, data="digits", epochs=30,
    ...                               out="runs/mnv2")).fit()  # doctest: +SKIP
"""

from ..data.datasets import ImageData, load_data
from .augment import Augment
from .health import inspect_checkpoint, inspect_model
from .loop import TrainConfig, Trainer, evaluate, train
from .width_sweep import sweep

__all__ = ["Augment", "ImageData", "TrainConfig", "Trainer", "evaluate", "inspect_checkpoint", "inspect_model",
           "load_data", "sweep", "train"]
