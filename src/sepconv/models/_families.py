"""Imports every model family so that each registers itself."""
from . import (  # noqa: F401
    mobilefacenet,  # noqa: F401
    mobilenet_v1,  # noqa: F401
    mobilenet_v2,  # noqa: F401
    mobilenet_v3,  # noqa: F401
    vgg,
    xception,
)
