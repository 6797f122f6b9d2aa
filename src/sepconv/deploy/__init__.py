"""Deployment: measure every engine a model can run on and keep the fastest that matches PyTorch.

- :func:`optimize` measures eager, channels_last, inductor (torch.compile) and ONNX Runtime on an
  example input, BN folded, and returns a callable running the fastest one whose outputs match
  PyTorch (the runners and their timing are :mod:`sepconv.engines.runner`'s, as in ``sepconv bench``
  and ``sepconv profile``);
- the engines themselves (BN folding, ONNX export, ONNX Runtime sessions, int8 quantization) live
  in :mod:`sepconv.engines` and are re-exported here for convenience.

``compile`` is the 0.1 name of :func:`optimize`; it still works and warns (``DeprecationWarning``).

Example::

    >>> from sepconv.models import create_model
    >>> from sepconv.deploy import ort_session
    >>> run = ort_session(create_model("mobilenet_v3_small"), threads=2)
    >>> run(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
"""

import functools
import warnings

from ..engines.fold import fold_bn, remaining_norms
from ..engines.onnx_export import Exported, export_onnx, to_onnx
from ..engines.ort import OrtRunner, ort_session, session_options
from ..engines.quantize import Quantized, QuantReport, quantize
from ..engines.runner import BackendResult
from .optimize import Compiled, optimize


@functools.wraps(optimize)
def compile(*args, **kwargs) -> Compiled:  # noqa: A001 - the 0.1 name, kept one minor version
    """Deprecated alias of :func:`optimize` (removed in 0.3)."""
    warnings.warn("sepconv.deploy.compile is deprecated; use sepconv.deploy.optimize", DeprecationWarning,
                  stacklevel=2)
    return optimize(*args, **kwargs)


__all__ = [
    "BackendResult", "Compiled", "Exported", "OrtRunner", "QuantReport", "Quantized", "compile", "export_onnx",
    "fold_bn", "optimize", "ort_session", "quantize", "remaining_norms", "session_options", "to_onnx",
]
