"""Fast inference: BN folding, clean ONNX export, ONNX Runtime sessions, int8, backend choice.

- :func:`fold_bn` folds every BatchNorm into the conv before it (exact in eval mode);
- :func:`export_onnx` / :func:`to_onnx` write a clean ONNX graph, checked against PyTorch;
- :func:`ort_session` runs it on ONNX Runtime (the path ``sepconv profile --backend onnxruntime`` uses);
- :func:`quantize` makes an int8 QDQ model with a report of its agreement with fp32;
- :func:`compile` measures eager, channels_last, Inductor and ONNX Runtime and keeps the fastest.

(``compile`` and ``quantize`` name both a function and its module; ``from sepconv.deploy.compile
import BACKENDS`` still reaches the module.)

Example::

    >>> from sepconv.models import create_model
    >>> from sepconv.deploy import ort_session
    >>> run = ort_session(create_model("mobilenet_v3_small"), threads=2)
    >>> run(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
"""

from .compile import Compiled
from .compile import compile  # noqa: A004 - the issue's name; shadows the builtin only inside this package
from .fold import fold_bn, remaining_norms
from .onnx_export import Exported, export_onnx, to_onnx
from .ort import OrtRunner, ort_session, session_options
from .quantize import QuantReport, Quantized
from .quantize import quantize

__all__ = [
    "Compiled", "Exported", "OrtRunner", "QuantReport", "Quantized", "compile", "export_onnx", "fold_bn",
    "ort_session", "quantize", "remaining_norms", "session_options", "to_onnx",
]
