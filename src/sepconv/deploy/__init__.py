"""Deployment: every engine and precision this machine can run, chosen by measured speed and
measured accuracy, written to a folder and loaded back.

- :func:`optimize` builds every candidate (PyTorch eager / channels_last / autocast, ONNX Runtime
  fp32 and int8, OpenVINO fp32 / bf16 / fp16 / int8), checks each against the fp32 model on
  held-out images (or, without data, against PyTorch's output), times those that pass side by side
  and keeps the fastest (:mod:`sepconv.deploy.optimize`);
- :func:`load` runs what ``optimize(..., out=DIR)`` wrote (:mod:`sepconv.deploy.artifact`);
- the engines themselves (BN folding, ONNX export, ONNX Runtime sessions, OpenVINO, int8
  quantization) live in :mod:`sepconv.engines` and are re-exported here for convenience.

``compile`` is the 0.1 name of :func:`optimize`'s fp32-only mode; it still works and warns
(``DeprecationWarning``).

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
from .artifact import Deployed, load
from .candidates import Candidate
from .optimize import Optimized, optimize

Compiled = Optimized  # the 0.1 name of the result


@functools.wraps(optimize)
def compile(*args, **kwargs) -> Optimized:  # noqa: A001 - the 0.1 name, kept one minor version
    """Deprecated alias of :func:`optimize` (removed in 0.3)."""
    warnings.warn("sepconv.deploy.compile is deprecated; use sepconv.deploy.optimize", DeprecationWarning,
                  stacklevel=2)
    return optimize(*args, **kwargs)


__all__ = [
    "BackendResult", "Candidate", "Compiled", "Deployed", "Exported", "Optimized", "OrtRunner", "QuantReport",
    "Quantized", "compile", "export_onnx", "fold_bn", "load", "optimize", "ort_session", "quantize",
    "remaining_norms", "session_options", "to_onnx",
]
