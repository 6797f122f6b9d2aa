"""sepconv: separable convolutions made real.

Operators (:mod:`sepconv.layers`), the model zoo (:func:`create_model`, :func:`list_models`),
an exact cost model (:mod:`sepconv.cost`), and the command-line tool ``sepconv``.
"""

from . import cost, layers, separate, weights
from .cost import CostReport, analyze
from .models import create_model, list_models

__version__ = "0.1.0"
__all__ = ["CostReport", "analyze", "cost", "layers", "create_model", "list_models", "__version__"]
