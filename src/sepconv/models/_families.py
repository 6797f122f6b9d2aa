"""Imports every model family so that each registers itself."""
from . import mobilenet_v1  # noqa: F401
from . import mobilenet_v2  # noqa: F401
from . import mobilenet_v3  # noqa: F401
from . import vgg, xception  # noqa: F401
from . import mobilefacenet  # noqa: F401
