"""sepconv: separable convolutions made real.

Operators (:mod:`sepconv.layers`), the model zoo (:func:`create_model`, :func:`list_models`),
an exact cost model (:func:`analyze`), separation of a trained model (:func:`separate`), and the
command-line tool ``sepconv``. The packages and their one-way order are listed in
:mod:`sepconv._layering`.
"""

from . import cost, layers, weights
from ._util.version import __version__
from .cost import CostReport, analyze
from .models import list_models
from .resolve import create_model
from .separation import separate

__all__ = ["CostReport", "analyze", "cost", "create_model", "layers", "list_models", "separate", "weights",
           "__version__"]
