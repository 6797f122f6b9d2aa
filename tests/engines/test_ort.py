"""sepconv.engines.ort: ONNX Runtime sessions from a module, a proto, bytes or a file that give
PyTorch's answers, bad input named, and the graph ONNX Runtime optimizes."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from support.deploy import small_model
from torch import nn

from sepconv.deploy import OrtRunner, ort_session, to_onnx
from sepconv.engines.ort import optimized_graph

pytestmark = pytest.mark.usefixtures("threads_unchanged")


@pytest.fixture(scope="module")
def model():
    return small_model("mobilenet_v3_small")


def test_ort_session_from_module_proto_bytes_and_file(model, tmp_path):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
    run = ort_session(model, (1, 3, 32, 32), threads=1)
    assert isinstance(run, OrtRunner) and run.threads == 1 and run.input_shape == (None, 3, 32, 32)
    torch.testing.assert_close(run(x), want, rtol=1e-4, atol=1e-4)
    got = run(x.numpy())
    assert isinstance(got, np.ndarray) and got.shape == (2, 10)
    proto = to_onnx(model, (1, 3, 32, 32)).proto
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    for source in (proto, proto.SerializeToString(), path, str(path)):
        torch.testing.assert_close(ort_session(source, threads=1)(x), want, rtol=1e-4, atol=1e-4)


def test_ort_session_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no such ONNX file"):
        ort_session(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="ONNX Runtime cannot load the model"):
        ort_session(tmp_path / "junk.onnx")
    with pytest.raises(ValueError, match="threads=0 must be a positive integer"):
        ort_session(nn.Conv2d(3, 4, 1), (1, 3, 4, 4), threads=0)
    with pytest.raises(ValueError, match="optimization='max' must be one of"):
        ort_session(nn.Conv2d(3, 4, 1), (1, 3, 4, 4), optimization="max")
    with pytest.raises(ValueError, match="must be an nn.Module, an onnx.ModelProto or an .onnx path"):
        ort_session(42)


def test_onnx_runtime_fuses_conv_and_activation():
    exported = to_onnx(small_model("mobilenet_v2"), (1, 3, 32, 32))
    ops = collections.Counter(n.op_type for n in optimized_graph(exported.proto).graph.node)
    # ReLU6 (Clip) is folded into the convs: no standalone activation remains
    assert "Clip" not in ops and "Relu" not in ops
    assert ops["Conv"] + ops["FusedConv"] == exported.ops["Conv"]
