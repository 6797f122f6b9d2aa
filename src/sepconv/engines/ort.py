"""ONNX Runtime sessions for sepconv models: the fast fp32 (and int8) path on CPU.

The session runs ORT's full graph optimizer (``ORT_ENABLE_ALL``): on x86 that fuses each conv
with the activation after it (``FusedConv``: Relu, Clip = ReLU6, HardSigmoid, LeakyRelu, ...) and
rewrites convolutions into the blocked NCHWc layout of its MLAS kernels; it runs nodes
sequentially with ``threads`` intra-op threads (default: every core this process may use).
:func:`ort_session` is what ``sepconv profile --backend onnxruntime`` and
:func:`sepconv.deploy.optimize` call.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .._util.runtime import cores, eval_mode
from .onnx_export import to_onnx
from .ort_options import session_options


class OrtRunner:
    """A callable over an ONNX Runtime session: a torch tensor in gives a tensor out, an array an array.

    ``session`` is the ``onnxruntime.InferenceSession``; ``input_shape`` its declared input shape
    (``None`` on a dynamic axis); ``proto`` the model it was made from, when it was given as one.
    """

    def __init__(self, session, proto: onnx.ModelProto | None = None) -> None:  # noqa: ANN001 - ort type
        self.session, self.proto = session, proto
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in session.get_inputs()[0].shape)

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        is_tensor = isinstance(x, torch.Tensor)
        array = x.detach().cpu().numpy() if is_tensor else x
        array = np.ascontiguousarray(array, dtype=np.float32)
        out = self.session.run([self.output_name], {self.input_name: array})[0]
        return torch.from_numpy(out) if is_tensor else out

    def __repr__(self) -> str:
        return f"OrtRunner(input={self.input_name}{list(self.input_shape)}, threads={self.threads})"

    @property
    def threads(self) -> int:
        return self.session.get_session_options().intra_op_num_threads


def _model_bytes(model: nn.Module | onnx.ModelProto | str | Path | bytes, input_shape: Sequence[int] | None) -> bytes:
    if isinstance(model, bytes):
        return model
    if isinstance(model, onnx.ModelProto):
        return model.SerializeToString()
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise ValueError(f"model={str(model)!r}: no such ONNX file")
        return path.read_bytes()
    if isinstance(model, nn.Module):
        return to_onnx(model, input_shape).proto.SerializeToString()
    raise ValueError(f"model={type(model).__name__} must be an nn.Module, an onnx.ModelProto or an .onnx path")


def ort_session(model: nn.Module | onnx.ModelProto | str | Path | bytes, input_shape: Sequence[int] | None = None,
                threads: int | None = None, optimization: str = "all") -> OrtRunner:
    """An ONNX Runtime callable for ``model`` (an ``nn.Module`` is exported cleanly first, BN folded).

    ``input_shape`` (B, C, H, W) is the export shape for a module (default: its registry size; the
    batch stays dynamic); ``threads`` the intra-op threads (default: all cores).

    Example::

        >>> from sepconv.models import create_model
        >>> run = ort_session(create_model("mobilenet_v2", num_classes=10), (1, 3, 96, 96), threads=2)
        >>> run(torch.zeros(4, 3, 96, 96)).shape
        torch.Size([4, 10])
    """
    import onnxruntime as ort

    data = _model_bytes(model, input_shape)
    so = session_options(threads, optimization)
    try:
        session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
        raise ValueError(f"ONNX Runtime cannot load the model: {str(e).splitlines()[0]}") from None
    return OrtRunner(session, model if isinstance(model, onnx.ModelProto) else None)


def optimized_graph(model: onnx.ModelProto | bytes, optimization: str = "all") -> onnx.ModelProto:
    """The graph as ONNX Runtime runs it after its optimizer (fused convs, layout changes)."""
    import onnxruntime as ort

    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    with tempfile.TemporaryDirectory() as tmp:
        so = session_options(1, optimization)
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        return onnx.load(so.optimized_model_filepath)


def plain_session(model: nn.Module, example: torch.Tensor, threads: int | None = None) -> OrtRunner:
    """The baseline every deployment figure is taken against: a plain ``torch.onnx.export`` of
    ``model`` as given (no BN folding, no clean-up; the TorchScript exporter, at the example's shape)
    on ONNX Runtime with its default session options, except ``threads`` intra-op threads (default:
    all cores) so that it runs on as many threads as the candidates it is compared with."""
    import io
    import warnings

    import onnxruntime as ort

    buffer = io.BytesIO()
    # eval_mode restores each submodule's own flag (the exporter's restore would set them all alike)
    with warnings.catch_warnings(), eval_mode(model), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = cores() if threads is None else threads
    return OrtRunner(ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"]))
