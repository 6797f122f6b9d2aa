"""Export to a clean ONNX graph, checked by ``onnx.checker`` and against PyTorch before it is written.

Clean means: BatchNorm folded (:func:`~sepconv.engines.fold.fold_bn`), hard-swish and hard-sigmoid
as the ONNX ``HardSwish`` / ``HardSigmoid`` ops (opset >= 14), TensorFlow-style padding merged
into each ``Conv``'s asymmetric ``pads`` (no padding subgraphs), no ``Shape`` arithmetic for a
static spatial size; only the batch axis may be dynamic.

torch 2.13's default exporter (``dynamo=True``) needs the ``onnxscript`` package; the TorchScript
exporter (``dynamo=False``) is used here: it needs nothing more and, after
:mod:`sepconv.engines.graph`'s passes, gives the graphs above.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .._util.io import atomic_write
from .._util.runtime import eval_mode
from .fold import fold_bn, remaining_norms
from .graph import clean
from .ort_options import session_options
from .shapes import check_forward, example_input

DEFAULT_OPSET = 17
MIN_OPSET = 14  # HardSwish
MAX_OPSET = 20  # the TorchScript exporter's newest


@dataclass
class Exported:
    """An exported model and what was checked: ``max_abs_diff`` against PyTorch on ``input_shape``."""

    proto: onnx.ModelProto
    input_shape: tuple[int, ...]
    max_abs_diff: float | None = None
    path: Path | None = None
    unfolded_norms: list[str] = field(default_factory=list)

    @property
    def ops(self) -> dict[str, int]:
        """Count of each op type in the graph."""
        return dict(Counter(n.op_type for n in self.proto.graph.node))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The TorchScript exporter warns that it is deprecated, warns about sepconv's traced input
    # checks, and prints its whole graph to stdout when an operator is not supported.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _check_opset(opset: int) -> int:
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset={opset!r} must be an integer in [{MIN_OPSET}, {MAX_OPSET}] "
                         f"(HardSwish needs 14; {MAX_OPSET} is the TorchScript exporter's newest)")
    return opset


class _LRN(torch.autograd.Function):
    """``F.local_response_norm`` that exports as ONNX's one ``LRN`` node. torch's own export traces
    the Python function into ~20 ops with shape arithmetic (Shape, Gather, If: not a clean graph);
    ONNX's LRN computes the same ``x / (bias + alpha / size * sum(x^2 over size channels))^beta``."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):  # noqa: ANN001, ANN205 - autograd.Function's signature
        return torch.nn.functional.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):  # noqa: ANN001, ANN205 - the exporter's signature
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class _ExportLRN(nn.Module):
    """A ``nn.LocalResponseNorm`` as :class:`_LRN` (export only)."""

    def __init__(self, lrn: nn.LocalResponseNorm) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = lrn.size, lrn.alpha, lrn.beta, lrn.k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LRN.apply(x, self.size, self.alpha, self.beta, self.k)


def _onnx_ready(model: nn.Module) -> nn.Module:
    """``model``, or a copy whose LocalResponseNorm layers export as one ONNX node each."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.LocalResponseNorm)]
    if not names:
        return model
    model = copy.deepcopy(model)
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, child, _ExportLRN(getattr(owner, child)))
    return model


def _trace_to_onnx(model: nn.Module, x: torch.Tensor, dynamic_batch: bool, opset: int) -> onnx.ModelProto:
    model = _onnx_ready(model)
    buf = io.BytesIO()
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with _quiet(), torch.no_grad():
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes=axes, do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def _reason(error: Exception) -> str:
    """The exporter's one-line explanation, without its graph dump and its request for a pull request."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    for tail in (" Please feel free", " [Caused by"):
        text = text.split(tail)[0]
    return text.rstrip(" .")


def unexportable_layer(model: nn.Module, x: torch.Tensor, opset: int) -> tuple[str, str, str] | None:
    """(name, type, reason) of the deepest module that fails to export on its own, or None.

    Each module's input is captured in one forward pass; modules are then exported alone, deepest
    first, so the first failure is the layer to blame rather than the network around it.
    """
    captured: dict[str, tuple] = {}
    depth = {name: name.count(".") for name, _ in model.named_modules() if name}
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=name: captured.setdefault(name, args))
             for name, m in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(x)
    except Exception:  # noqa: BLE001 - the forward pass itself fails: blame is found below
        pass
    finally:
        for h in hooks:
            h.remove()
    for name in sorted(captured, key=lambda n: -depth[n]):
        module, args = model.get_submodule(name), captured[name]
        if len(args) != 1 or not isinstance(args[0], torch.Tensor):
            continue
        try:
            _trace_to_onnx(module, args[0], False, opset)
        except Exception as e:  # noqa: BLE001 - any exporter error is the answer
            return name, type(module).__name__, _reason(e)
    return None


def to_onnx(model: nn.Module, input_shape: Sequence[int] | None = None, dynamic_batch: bool = True,
            opset: int = DEFAULT_OPSET, fold: bool = True) -> Exported:
    """Export ``model`` (eval mode, BN folded) to a clean, checked ONNX graph in memory.

    Example::

        >>> from sepconv.models import create_model
        >>> exported = to_onnx(create_model("mobilenet_v3_small", num_classes=10), (1, 3, 96, 96))
        >>> exported.ops["HardSwish"], "Pad" in exported.ops, exported.input_shape
        (19, False, (1, 3, 96, 96))
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model={type(model).__name__} must be a torch.nn.Module")
    _check_opset(opset)
    x = example_input(model, input_shape)
    check_forward(model, x, "ONNX export", many=True)  # a backbone's list of maps exports as several outputs
    prepared = fold_bn(model, x) if fold else copy.deepcopy(model).eval()
    try:
        proto = _trace_to_onnx(prepared, x, dynamic_batch, opset)
    except Exception as e:  # noqa: BLE001 - turned into a ValueError naming the layer
        culprit = unexportable_layer(prepared, x, opset)
        if culprit is None:
            raise ValueError(f"cannot export {type(model).__name__} to ONNX: {_reason(e)}") from None
        name, kind, reason = culprit
        raise ValueError(f"cannot export layer {name!r} ({kind}) to ONNX: {reason}") from None
    proto = clean(proto)
    proto.producer_name = "sepconv"
    onnx.checker.check_model(proto, full_check=True)
    return Exported(proto, tuple(x.shape), unfolded_norms=remaining_norms(prepared))


def max_abs_diff(proto: onnx.ModelProto, model: nn.Module, x: torch.Tensor) -> float:
    """Largest absolute difference between ONNX Runtime on ``proto`` and PyTorch on ``model``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(proto.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with eval_mode(model), torch.no_grad():
        want = model(x).numpy()
    return float(np.abs(got - want).max())


def export_onnx(model: nn.Module, path: str | Path, input_shape: Sequence[int] | None = None,
                dynamic_batch: bool = True, opset: int = DEFAULT_OPSET, fold: bool = True,
                atol: float = 1e-4, rtol: float = 1e-3) -> Exported:
    """Export ``model`` to ``path``; written only if ``onnx.checker`` passes and ONNX Runtime's output
    is within ``atol + rtol * max|output|`` of PyTorch's (max absolute difference) on a random input
    of ``input_shape`` — float32 rounding grows with a network's depth and its logits' size
    (ResNet-152, Inception v3).

    ``input_shape`` (B, C, H, W) defaults to the registry's size for zoo models; with
    ``dynamic_batch`` any batch size runs.

    Example::

        >>> from sepconv.models import create_model
        >>> export_onnx(create_model("mobilenet_v2", num_classes=10), "mnv2.onnx", (1, 3, 96, 96)).max_abs_diff < 1e-4
        True
    """
    check_forward(model, example_input(model, input_shape), "sepconv export (which checks one output against "
                  "ONNX Runtime)")
    exported = to_onnx(model, input_shape, dynamic_batch, opset, fold)
    x = example_input(model, exported.input_shape)
    exported.max_abs_diff = max_abs_diff(exported.proto, model, x)
    with eval_mode(model), torch.no_grad():
        scale = float(model(x).abs().max())
    bound = atol + rtol * scale
    if not exported.max_abs_diff <= bound:
        raise ValueError(f"ONNX Runtime's output differs from PyTorch's by {exported.max_abs_diff:.3g} "
                         f"(max absolute), more than atol + rtol * max|output| = {bound:.3g}; nothing written "
                         f"to {str(path)!r}")
    exported.path = Path(path)
    data = exported.proto.SerializeToString()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return exported
