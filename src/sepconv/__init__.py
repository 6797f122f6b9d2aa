"""sepconv: separable convolutions made real.

Operators (:mod:`sepconv.layers`), an exact cost model (:mod:`sepconv.cost`), and the command-line
tool ``sepconv``.
"""

from . import layers

__version__ = "0.1.0"
__all__ = ["layers", "__version__"]
