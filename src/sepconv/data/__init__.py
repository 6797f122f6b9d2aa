"""Images to train, calibrate and evaluate on: the bundled digits, an ImageFolder tree, CIFAR
batches (:mod:`.datasets`) and arrays of images for calibration (:mod:`.images`)."""

from .datasets import ImageData, load_data

__all__ = ["ImageData", "load_data"]
