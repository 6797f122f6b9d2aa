"""Which backends ``sepconv profile`` times the whole model on, and how they are chosen.

The runners, their timing and their rows are :mod:`sepconv.engines.runner`'s (as for ``sepconv
bench`` and :func:`sepconv.deploy.optimize`). A profile offers the fp32 ones (int8 needs
calibration images, which a profile has none of) and runs the model as given, BatchNorm and all,
as the per-layer profile does (``fold=False``): only ``onnxruntime``, whose export always folds,
runs it folded, and its rows say so (``bn_folded``).

Example::

    >>> parse_backends("onnxruntime"), parse_backends("all")
    (['eager', 'onnxruntime'], ['eager', 'channels_last', 'inductor', 'onnxruntime'])
"""

from __future__ import annotations

from collections.abc import Callable

from ..engines import runner

__all__ = ["BACKENDS", "DEFAULT_BACKENDS", "parse_backends"]

BACKENDS = runner.FP32_BACKENDS
DEFAULT_BACKENDS = ("eager",)


def parse_backends(text: str, warn: Callable[[str], None] | None = None) -> list[str]:
    """``--backend``'s value -> backend names, eager first (see :func:`sepconv.engines.runner.parse_backends`)."""
    return runner.parse_backends(text, BACKENDS, "backend", warn)
