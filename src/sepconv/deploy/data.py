"""Deprecated: the 0.1 home of the calibration images; use :mod:`sepconv.data.images` (removed in 0.3).

``from sepconv.deploy.data import digits`` keeps working and warns with ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..data import images as _images

_MOVED = ("digits", "load_images", "BUNDLED")


def __getattr__(name: str) -> Any:  # PEP 562: warn on use of a moved name
    if name in _MOVED:
        warnings.warn(f"sepconv.deploy.data.{name} moved to sepconv.data.images.{name}", DeprecationWarning,
                      stacklevel=2)
        return getattr(_images, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
