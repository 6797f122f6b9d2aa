"""Post-training int8 quantization through ONNX Runtime's static quantizer, with an agreement report.

The graph gets QuantizeLinear/DequantizeLinear pairs (QDQ format) with uint8 activations and
int8 weights, one scale per output channel (``per_channel=True``); ORT fuses them into
``QLinearConv`` and friends at session start. Per-tensor weight scales are known to collapse
MobileNet accuracy: a depthwise layer's channels have weight ranges that differ by orders of
magnitude, so one scale rounds the small channels to zero (Krishnamoorthi 2018, *Quantizing deep
convolutional networks for efficient inference: A whitepaper*, Section 3.1 and Table 2: per-tensor
MobileNetV2 0.1% top-1, per-channel 69.8%). Activation ranges come from calibration images
(min/max by default); the report compares int8 with fp32 on held-out images.

On x86 CPUs without VNNI, ORT's uint8 x int8 kernels use ``VPMADDUBSW``, which adds two
products into a saturating int16: full-range int8 weights overflow it (ORT's quantization guide,
"When and why do I need to try U8U8?"). There the weights get 7 bits (``reduce_range``); measured
on the tiny digits network of the tests, AVX2 without VNNI: top-1 agreement with fp32 91.0% with
8-bit weights, 99.7% with 7-bit ones.
"""

from __future__ import annotations

import contextlib
import io
import math
import platform
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .._util.io import atomic_write
from .ort import optimized_graph, ort_session
from .shapes import check_images

METHODS = ("minmax", "entropy", "percentile")


@dataclass
class QuantReport:
    """int8 against fp32 on ``samples`` images of ``data``: top-1 agreement, accuracies (with labels),
    the largest logit difference, and the ops ONNX Runtime still runs in float."""

    data: str
    samples: int
    agreement: float
    max_abs_diff: float
    sqnr_db: float  # 10 log10(|fp32 logits|^2 / |int8 - fp32|^2): meaningful even for random weights
    fp32_accuracy: float | None = None
    int8_accuracy: float | None = None
    float_layers: dict[str, list[str]] = field(default_factory=dict)  # op type still float -> its layers

    @property
    def float_ops(self) -> dict[str, int]:
        """How many nodes of each op type ONNX Runtime still runs on dequantized floats."""
        return {op: len(layers) for op, layers in self.float_layers.items()}

    @property
    def accuracy_drop(self) -> float | None:
        """fp32 accuracy minus int8 accuracy, in points (percent)."""
        if self.fp32_accuracy is None or self.int8_accuracy is None:
            return None
        return 100.0 * (self.fp32_accuracy - self.int8_accuracy)

    def summary(self) -> str:
        text = f"int8 vs fp32 on {self.samples} {self.data} images: top-1 agreement {100 * self.agreement:.1f}%"
        if self.accuracy_drop is not None:
            text += (f", accuracy {100 * self.fp32_accuracy:.1f}% -> {100 * self.int8_accuracy:.1f}% "
                     f"(drop {self.accuracy_drop:.1f} points)")
        text += f", logit SQNR {self.sqnr_db:.1f} dB, max |logit diff| {self.max_abs_diff:.3g}"
        if self.float_layers:
            text += "; still float (no int8 kernel in ONNX Runtime: runs on dequantized values): " + ", ".join(
                f"{op} x{len(layers)}{_some(layers)}" for op, layers in sorted(self.float_layers.items()))
        return text


def _some(layers: list[str], shown: int = 3) -> str:
    more = f", +{len(layers) - shown} more" if len(layers) > shown else ""
    return f" ({', '.join(layers[:shown])}{more})"


@dataclass
class Quantized:
    """The int8 QDQ model, where it was written (if anywhere) and its report (if held-out data was given)."""

    proto: onnx.ModelProto
    report: QuantReport | None = None
    path: Path | None = None


def needs_reduced_range() -> bool:
    """True on an x86 CPU without VNNI (AVX-512 VNNI, AVX-VNNI or AMX), where 8-bit weights saturate."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return True  # unknown x86: the safe choice
    return not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags.split())


def _input_shape(proto: onnx.ModelProto) -> tuple[int | None, ...]:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def _batches(name: str, data: torch.Tensor | np.ndarray | Iterable, input_shape: Sequence[int | None],
             batch: int) -> list[np.ndarray]:
    """Split the calibration data into checked float32 (B, C, H, W) arrays."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        x = torch.as_tensor(data, dtype=torch.float32)
        check_images(name, x, input_shape)
        parts = list(x.split(batch))
    else:
        parts = [torch.as_tensor(b, dtype=torch.float32) for b in data]
        for i, part in enumerate(parts):
            check_images(f"{name} batch {i}", part, input_shape)
    if not parts or parts[0].shape[0] == 0:
        raise ValueError(f"{name} is empty: give at least one image")
    if input_shape[0] is not None:  # a static batch: only full batches of that size fit
        rows = torch.cat(parts).split(input_shape[0])
        parts = [p for p in rows if p.shape[0] == input_shape[0]]
        if not parts:
            raise ValueError(f"{name} has fewer images than the model's static batch of {input_shape[0]}")
    return [p.numpy() for p in parts]


def _float_nodes(proto: onnx.ModelProto, keep_float: Sequence[str]) -> list[str]:
    """The node names ``keep_float`` selects (each entry a node name or an op type)."""
    if isinstance(keep_float, str):
        raise ValueError(f"keep_float={keep_float!r} must be a list of node names or op types, not one string")
    names = []
    for entry in keep_float:
        hits = [n.name for n in proto.graph.node if entry in (n.name, n.op_type)]
        if not hits:
            raise ValueError(f"keep_float entry {entry!r} is neither a node name nor an op type of the graph")
        names += hits
    return names


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over a list of arrays."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self.input_name, self.batches = input_name, iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: batch}


def module_name(scope: str) -> str:
    """The PyTorch module path in an exported node or tensor name: ``/blocks/blocks.3/se/gate/HardSigmoid``
    (the exporter's scopes, one per module level, then the op) gives ``blocks.3.se.gate``."""
    path = ""
    for part in scope.strip("/").split("/")[:-1]:
        path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
    return path


def float_nodes(proto: onnx.ModelProto) -> list[tuple[str, str]]:
    """(op type, layer) of every node that ONNX Runtime, after fusing the QDQ graph, still feeds with
    dequantized floats. ORT's own rewrites (HardSwish into HardSigmoid and Mul) leave nodes unnamed:
    their layer is read from the tensor they take, ``after <layer>``."""
    graph = optimized_graph(proto, "all").graph
    dequantized = {out for n in graph.node if n.op_type == "DequantizeLinear" for out in n.output}
    found = []
    for n in graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") or not any(i in dequantized for i in n.input):
            continue
        if n.name.startswith("/"):
            layer = module_name(n.name)
        else:
            source = next((i for i in n.input if i.startswith("/")), "")
            layer = f"after {module_name(source)}" if module_name(source) else n.name or "?"
        found.append((n.op_type, layer or "(top level)"))
    return found


def sqnr_db(got: torch.Tensor, ref: torch.Tensor) -> float:
    """Signal over error of ``got`` against ``ref``, in dB: 10 log10(|ref|^2 / |got - ref|^2)."""
    noise = float((got - ref).double().square().sum())
    return 10 * math.log10(float(ref.double().square().sum()) / noise) if noise > 0 else math.inf


def compare(fp32: onnx.ModelProto, int8: onnx.ModelProto, images: torch.Tensor, labels: torch.Tensor | None,
            data: str, batch: int = 32) -> QuantReport:
    """Run both models on ``images`` and compare their top-1 predictions (and accuracy with ``labels``)."""
    shape = _input_shape(fp32)
    outputs = []
    for proto in (fp32, int8):
        run = ort_session(proto)
        outputs.append(torch.cat([torch.as_tensor(run(b)) for b in _batches(data, images, shape, batch)]))
    ref, got = outputs
    if ref.dim() != 2:
        raise ValueError(f"the model's output has shape {tuple(ref.shape)}; top-1 agreement needs (N, classes)")
    sqnr = sqnr_db(got, ref)
    nodes = float_nodes(int8)
    layers: dict[str, list[str]] = {}
    for op, layer in nodes:
        layers.setdefault(op, []).append(layer)
    report = QuantReport(data, ref.shape[0], float((ref.argmax(1) == got.argmax(1)).float().mean()),
                         float((ref - got).abs().max()), sqnr, float_layers=layers)
    if labels is not None:
        labels = labels[: ref.shape[0]]
        report.fp32_accuracy = float((ref.argmax(1) == labels).float().mean())
        report.int8_accuracy = float((got.argmax(1) == labels).float().mean())
    return report


def quantize(model: nn.Module | onnx.ModelProto | str | Path, calibration_data: torch.Tensor | np.ndarray | Iterable,
             per_channel: bool = True, held_out: torch.Tensor | np.ndarray | None = None,
             labels: torch.Tensor | None = None, input_shape: Sequence[int] | None = None,
             path: str | Path | None = None, method: str = "minmax", reduce_range: bool | None = None,
             batch: int = 16, data_name: str = "held-out", keep_float: Sequence[str] = ()) -> Quantized:
    """Quantize ``model`` to int8 (QDQ) with activation ranges from ``calibration_data``.

    ``model`` is an ``nn.Module`` (exported cleanly first, see :func:`~sepconv.deploy.to_onnx`,
    at ``input_shape``, else at the calibration images' size), an ``onnx.ModelProto`` or an .onnx path.
    ``calibration_data`` is an (N, C, H, W) tensor/array or an iterable of such batches; each must
    match the model's input. With ``held_out`` images (and optional ``labels``) the result carries
    a :class:`QuantReport`. ``path`` writes the int8 model (atomically). ``reduce_range`` (7-bit
    weights) defaults to :func:`needs_reduced_range`. ``keep_float`` names nodes of the ONNX graph
    (e.g. ``/blocks/blocks.3/dw/conv/Conv``) or op types (``"HardSwish"``) left unquantized (mixed
    precision); a name that matches nothing is a ValueError.

    Example::

        >>> from sepconv.models import create_model
        >>> from sepconv.data.images import digits
        >>> images, labels = digits((1, 3, 64, 64))
        >>> q = quantize(create_model("mobilenet_v2", num_classes=10), images[:64], held_out=images[64:192])
        >>> q.report.samples
        128
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise ValueError(f"method={method!r} must be one of {', '.join(METHODS)}")
    if isinstance(model, nn.Module):
        if input_shape is None and isinstance(calibration_data, (torch.Tensor, np.ndarray)) \
                and np.ndim(calibration_data) == 4:
            input_shape = (1, *calibration_data.shape[1:])
        from .onnx_export import to_onnx

        fp32 = to_onnx(model, input_shape).proto
    elif isinstance(model, (str, Path)):
        if not Path(model).is_file():
            raise ValueError(f"model={str(model)!r}: no such ONNX file")
        fp32 = onnx.load(str(model))
    elif isinstance(model, onnx.ModelProto):
        fp32 = model
    else:
        raise ValueError(f"model={type(model).__name__} must be an nn.Module, an onnx.ModelProto or an .onnx path")
    if reduce_range is None:
        reduce_range = needs_reduced_range()
    shape = _input_shape(fp32)
    batches = _batches("calibration_data", calibration_data, shape, batch)
    exclude = _float_nodes(fp32, keep_float)
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = (str(Path(tmp) / n) for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(fp32, src)
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress
                quantize_static(
                    pre, out, _Reader(fp32.graph.input[0].name, batches), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method={
                        "minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                        "percentile": CalibrationMethod.Percentile}[method],
                    nodes_to_exclude=exclude,
                )
        except Exception as e:  # noqa: BLE001 - ORT's quantizer raises bare Exceptions naming the node
            raise ValueError(f"ONNX Runtime cannot quantize this model: {str(e).splitlines()[0]}") from None
        int8 = onnx.load(out)
    result = Quantized(int8)
    if held_out is not None:
        result.report = compare(fp32, int8, torch.as_tensor(held_out, dtype=torch.float32), labels, data_name, batch)
    if path is not None:
        data = int8.SerializeToString()
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
        result.path = Path(path)
    return result
