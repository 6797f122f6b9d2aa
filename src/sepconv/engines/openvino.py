"""OpenVINO as an engine: the clean ONNX export (or its int8 QDQ form) compiled for the CPU plugin
at a chosen inference precision.

OpenVINO's CPU plugin runs a model at its ``INFERENCE_PRECISION_HINT``: on a CPU with AMX or
AVX512-BF16 its *default* is bf16, so an fp32 run must force ``f32`` (sepconv always sets the hint).
The precisions (``PRECISIONS``):

- ``fp32``: hint ``f32``;
- ``bf16``: hint ``bf16``, where the plugin lists ``BF16`` among its ``OPTIMIZATION_CAPABILITIES``
  (AVX512-BF16 or AMX);
- ``fp16``: hint ``f16``, where it lists ``FP16`` (AVX512-FP16 or AMX-FP16);
- ``int8``: the QDQ file of :func:`~sepconv.engines.quantize.quantize` (the same file ONNX Runtime
  runs), whose QuantizeLinear/DequantizeLinear pairs OpenVINO's low-precision transformations fold
  into int8 convolutions; the rest runs at ``f32``. Needs ``INT8`` among the capabilities.

Each compiled model is static in shape (dynamic shapes cost OpenVINO's CPU plugin a shape inference
per call): :class:`OpenVinoRunner` compiles once per input shape it is called with, the first one
when built. ``threads`` is ``INFERENCE_NUM_THREADS``, with one stream and the ``LATENCY`` hint.

OpenVINO is an optional dependency (``pip install sepconv[openvino]``): :func:`unavailable` says why
an engine × precision cannot run here, and every caller lists that reason instead of failing.

Example::

    >>> from sepconv.models import create_model
    >>> from sepconv.engines.onnx_export import to_onnx
    >>> run = openvino_runner(to_onnx(create_model("mobilenet_v3_small", num_classes=10), (1, 3, 64, 64)).proto,
    ...                       "fp32", threads=1)
    >>> run(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

from .._util.checks import ArgumentError, positive_int
from .._util.runtime import cores

__all__ = ["HINTS", "PRECISIONS", "OpenVinoRunner", "capabilities", "infer_request", "load_ir", "openvino_runner",
           "read_onnx", "save_ir", "unavailable", "version"]

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
# the plugin's OPTIMIZATION_CAPABILITIES entry each precision needs
NEEDS = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16", "int8": "INT8"}


@functools.cache
def _core():  # noqa: ANN202 - openvino.Core
    import openvino

    return openvino.Core()


def version() -> str | None:
    """The installed OpenVINO's version, or None where it is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.get_version()


@functools.cache
def capabilities() -> tuple[str, ...]:
    """The CPU plugin's ``OPTIMIZATION_CAPABILITIES`` (e.g. ``('FP32', 'INT8', 'BIN', 'EXPORT_IMPORT')``
    on AVX2; ``BF16`` and ``FP16`` where the CPU has them); empty without OpenVINO."""
    if version() is None:
        return ()
    return tuple(str(c) for c in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def unavailable(precision: str) -> str | None:
    """Why OpenVINO cannot run ``precision`` on this machine (None: it can)."""
    if precision not in PRECISIONS:
        raise ArgumentError("precision", f"precision={precision!r} must be one of {', '.join(PRECISIONS)}")
    if version() is None:
        return "OpenVINO is not installed (pip install 'sepconv[openvino]')"
    caps = capabilities()
    if NEEDS[precision] not in caps:
        return (f"this CPU cannot run OpenVINO {precision}: the CPU plugin's capabilities are "
                f"{', '.join(caps) or 'none'} (no {NEEDS[precision]})")
    return None


def _config(precision: str, threads: int) -> dict[str, object]:
    return {"INFERENCE_PRECISION_HINT": HINTS[precision], "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}


def read_onnx(proto: onnx.ModelProto):  # noqa: ANN202 - openvino.Model
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(proto.SerializeToString())
        return _core().read_model(str(path))


def infer_request(model, shape: tuple[int, ...], precision: str, threads: int,  # noqa: ANN001, ANN201
                  profile: bool = False):
    """An infer request of ``model`` (an ``openvino.Model``, left unchanged) compiled for the CPU
    plugin at the static ``shape``, ``precision`` and ``threads``; with ``profile``, ``PERF_COUNT``
    on (per-node times in ``get_profiling_info``)."""
    model = model.clone()
    model.reshape({model.inputs[0].any_name: list(shape)} if model.inputs[0].names else [list(shape)])
    config = _config(precision, threads) | ({"PERF_COUNT": True} if profile else {})
    return _core().compile_model(model, "CPU", config).create_infer_request()


class OpenVinoRunner:
    """A callable over an OpenVINO model on the CPU plugin: a torch tensor in gives a tensor out,
    an array an array. Compiles the model once per input shape (static shapes), at ``precision``
    on ``threads`` threads."""

    def __init__(self, model, precision: str, threads: int) -> None:  # noqa: ANN001 - openvino.Model
        self.model, self.precision, self.threads = model, precision, threads
        self._requests: dict[tuple[int, ...], object] = {}

    def _request(self, shape: tuple[int, ...]):  # noqa: ANN202 - openvino.InferRequest
        request = self._requests.get(shape)
        if request is None:
            request = self._requests[shape] = infer_request(self.model, shape, self.precision, self.threads)
        return request

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        is_tensor = isinstance(x, torch.Tensor)
        array = np.ascontiguousarray(x.detach().cpu().numpy() if is_tensor else x, dtype=np.float32)
        request = self._request(tuple(array.shape))
        request.infer({0: array})
        out = np.array(request.get_output_tensor(0).data, copy=True)
        return torch.from_numpy(out) if is_tensor else out

    def __repr__(self) -> str:
        return f"OpenVinoRunner(precision={self.precision!r}, threads={self.threads})"


def openvino_runner(proto: onnx.ModelProto, precision: str = "fp32", threads: int | None = None,
                    example_shape: tuple[int, ...] | None = None) -> OpenVinoRunner:
    """An :class:`OpenVinoRunner` for the ONNX ``proto`` (fp32, or the int8 QDQ file for
    ``precision="int8"``), compiled for ``example_shape`` now when given."""
    reason = unavailable(precision)
    if reason is not None:
        raise ValueError(reason)
    threads = cores() if threads is None else positive_int("threads", threads)
    try:
        run = OpenVinoRunner(read_onnx(proto), precision, threads)
        if example_shape is not None:
            run._request(tuple(example_shape))
    except RuntimeError as e:  # OpenVINO's conversion and compilation errors
        raise ValueError(f"OpenVINO cannot compile the model: {str(e).strip().splitlines()[0]}") from None
    return run


def save_ir(run: OpenVinoRunner, path: str | Path) -> list[Path]:
    """Write the runner's model as OpenVINO IR: ``path`` (``.xml``) and its ``.bin`` beside it,
    weights as they are (no fp16 compression); returns both paths."""
    import openvino

    xml = Path(path)
    openvino.save_model(run.model, str(xml), compress_to_fp16=False)
    return [xml, xml.with_suffix(".bin")]


def load_ir(path: str | Path, precision: str, threads: int | None = None) -> OpenVinoRunner:
    """An :class:`OpenVinoRunner` over the IR ``path`` (``.xml`` with its ``.bin``)."""
    reason = unavailable(precision)
    if reason is not None:
        raise ValueError(reason)
    threads = cores() if threads is None else positive_int("threads", threads)
    try:
        model = _core().read_model(str(path))
    except RuntimeError as e:
        raise ValueError(f"{path}: OpenVINO cannot read it: {str(e).strip().splitlines()[0]}") from None
    return OpenVinoRunner(model, precision, threads)
