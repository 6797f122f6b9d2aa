"""export_onnx / to_onnx: clean graphs, checked, equal to PyTorch on every zoo model."""

from __future__ import annotations

import collections

import onnx
import pytest
import torch
from support.deploy import MODELS, small_model, small_size
from torch import nn

from sepconv.deploy import export_onnx, ort_session, to_onnx
from sepconv.layers import Conv2d, MaxPool2d
from sepconv.models import create_model

pytestmark = pytest.mark.usefixtures("threads_unchanged")

# Ops a static-shape (dynamic-batch) export of a zoo model must not contain: padding subgraphs,
# shape arithmetic, un-folded BatchNorm.
FORBIDDEN = {"Pad", "Shape", "Gather", "Concat", "ConstantOfShape", "Cast", "Slice", "Identity",
             "BatchNormalization", "Constant"}


def variants():
    for name in MODELS:
        yield name, {}
    yield "mobilenet_v1", {"padding": "tf_same"}  # TF's asymmetric padding on stride-2 convs


@pytest.mark.parametrize(("name", "kwargs"), list(variants()), ids=lambda v: str(v) if isinstance(v, str) else
                         ",".join(f"{k}={w}" for k, w in v.items()) or "default")
def test_export_every_zoo_model_clean_and_equal_to_pytorch(name, kwargs, tmp_path):
    # VGG's 7x7 adaptive pool cannot be exported when it would upsample (see the test below)
    # VGG's and AlexNet's adaptive pools cannot be exported when they would upsample (see the test below)
    big = name in ("vgg16", "alexnet")
    size = 224 if big else small_size(name)
    model = small_model(name, size, **kwargs)
    path = tmp_path / f"{name}.onnx"
    exported = export_onnx(model, path, (1 if big else 2, 3, size, size))
    with torch.no_grad():
        scale = model(torch.randn(1 if big else 2, 3, size, size)).abs().max().item()
    assert exported.max_abs_diff <= 1e-4 + 1e-3 * scale  # float32 rounding, relative to the logits' size
    with torch.no_grad():
        assert model(torch.randn(2, 3, size, size)).std() > 0.1, "activations died: parity would be empty"
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    # Inception modules concatenate their branches by design; elsewhere a Concat is shape arithmetic
    assert not (FORBIDDEN - ({"Concat"} if name in ("googlenet", "inception_v3") else set())) & set(ops), ops
    if name.startswith("mobilenet_v3"):
        assert ops["HardSwish"] > 0 and ops["HardSigmoid"] > 0
        assert "ReduceMean" not in ops  # squeeze-excite's mean is a GlobalAveragePool
    if name == "googlenet" or name == "alexnet":
        assert ops["LRN"] > 0  # the paper variants' LocalResponseNorm: one ONNX node each
    if big:
        return  # hundreds of MB of weights: one parity check is enough
    # the batch axis is dynamic: another batch size runs and matches
    x = torch.randn(3, 3, size, size)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(ort_session(path)(x), want, rtol=1e-4, atol=1e-4 + 1e-3 * want.abs().max().item())


def test_tf_same_padding_merges_into_conv_and_pool_pads():
    model = nn.Sequential(Conv2d(3, 4, 3, stride=2, padding="tf_same"), MaxPool2d(3, 2, padding="tf_same")).eval()
    exported = to_onnx(model, (1, 3, 12, 12), dynamic_batch=False)
    assert exported.ops == {"Conv": 1, "MaxPool": 1}
    pads = {n.op_type: list(onnx.helper.get_attribute_value(a)) for n in exported.proto.graph.node
            for a in n.attribute if a.name == "pads"}
    assert pads == {"Conv": [0, 0, 1, 1], "MaxPool": [0, 0, 1, 1]}  # TF pads the extra row/column after
    x = torch.randn(1, 3, 12, 12)
    torch.testing.assert_close(ort_session(exported.proto)(x), model(x), rtol=1e-5, atol=1e-5)


class Shuffle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv(x))


def test_unsupported_layer_is_named_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match=r"layer 'shuffle' \(ChannelShuffle\).*channel_shuffle.*not supported"):
        export_onnx(Shuffle(), tmp_path / "x.onnx", (1, 4, 8, 8))
    assert list(tmp_path.iterdir()) == []
    # VGG at 64 px: its 7x7 adaptive pool would upsample a 2x2 map, which ONNX cannot express
    with pytest.raises(ValueError, match=r"layer 'global_pool' \(AdaptiveAvgPool2d\).*not factor of input size$"):
        to_onnx(create_model("vgg16", num_classes=10), (1, 3, 64, 64))


class Noisy(nn.Module):
    """Exports fine, but ONNX Runtime draws other random numbers than torch: parity must fail."""

    def forward(self, x):
        return x + torch.rand_like(x)


def test_nothing_is_written_when_parity_fails(tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous")
    with pytest.raises(ValueError, match="differs from PyTorch's.*nothing written"):
        export_onnx(Noisy(), out, (1, 3, 4, 4))
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_bad_arguments(tmp_path):
    model = small_model("mobilenet_v3_small")
    with pytest.raises(ValueError, match=r"opset=13 must be an integer in \[14, 20\]"):
        to_onnx(model, (1, 3, 32, 32), opset=13)
    with pytest.raises(ValueError, match="input_shape=.*4 positive integers"):
        to_onnx(model, (3, 32, 32))
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        to_onnx(model, (1, 1, 32, 32))
