"""Fast inference: BN folding, clean ONNX export, ONNX Runtime sessions, int8, backend choice.

Example::

    >>> from sepconv.models import create_model
    >>> from sepconv.deploy import ort_session
    >>> run = ort_session(create_model("mobilenet_v3_small"), threads=2)
    >>> run(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
"""

from .fold import fold_bn, remaining_norms
from .onnx_export import export_onnx, to_onnx
from .ort import OrtRunner, ort_session, session_options

__all__ = ["OrtRunner", "export_onnx", "fold_bn", "ort_session", "remaining_norms", "session_options", "to_onnx"]
