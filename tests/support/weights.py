"""Deterministic stand-ins for pretrained weights: the same numbers in any environment.

Every tensor of a layout (ordered ``(name, shape)`` pairs) is drawn from NumPy's PCG64 ``random()``
stream, whose doubles do not change across NumPy versions, so the scratch environment that ran
torchvision/timm (benchmarks/verify_weights_torchvision.py) and the test suite build the same
weights from a fixture. BatchNorm statistics are far from their defaults (mean 0, variance 1) so
that a mapping which loses or swaps them changes the logits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def synthetic_state(layout: Iterable[tuple[str, Sequence[int]]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in layout:
        shape = tuple(shape)
        if name.endswith("num_batches_tracked"):
            state[name] = np.array(7, dtype=np.int64)
            continue
        u = rng.random(shape)  # [0, 1)
        if name.endswith("running_var") or (len(shape) == 1 and name.endswith("weight")):
            x = 0.5 + u  # variances and BN scales in [0.5, 1.5)
        elif len(shape) == 1:
            x = 0.4 * (u - 0.5)  # biases and running means in [-0.2, 0.2)
        else:  # LeCun-scaled uniform (variance 1 / fan_in) for conv and linear weights
            fan_in = math.prod(shape[1:])
            x = (u - 0.5) * math.sqrt(12 / fan_in)
        state[name] = x.astype(np.float32)
    return state


def synthetic_input(batch: int, size: int, seed: int = 1) -> np.ndarray:
    """A (batch, 3, size, size) float32 input in [-1, 1)."""
    return (2 * np.random.default_rng(seed).random((batch, 3, size, size)) - 1).astype(np.float32)


def with_classes(layout: Iterable[tuple[str, Sequence[int]]], classifier: str, num_classes: int) -> list:
    """The layout with the classifier (weight and bias named ``classifier``) cut to ``num_classes``."""
    return [(k, [num_classes, *s[1:]] if k.startswith(classifier + ".") else list(s)) for k, s in layout]
