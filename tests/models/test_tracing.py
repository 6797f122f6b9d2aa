"""Every zoo model traces with ``torch.fx.symbolic_trace`` and ``torch.export`` and computes what eager
computes; a traced model refuses a wrong input with eager's ValueError (DESIGN.md, style rule 4)."""

from __future__ import annotations

import pytest
import torch

from sepconv.layers._input import checked_input
from sepconv.models import create_model, list_models, model_entry

# The zoo's own models (test modules elsewhere may register small models of their own).
MODELS = [n for n in list_models(task="classification") if model_entry(n).fn.__module__.startswith("sepconv.models.")]
SIZE = 32  # most zoo models take it (the stride-32 map is 1x1), and it keeps the test fast
# The smallest inputs of the others: AlexNet's three unpadded 3x3/2 pools, Inception v3's unpadded reductions.
SIZES = {"alexnet": 64, "inception_v3": 75}
# The classification baselines trace at a quarter of their width (the same layers, 16x fewer parameters).
NARROW = ("alexnet", "googlenet", "inception_v3", "resnet18", "resnet50", "resnet152")
# Configurations whose code paths differ: TensorFlow's SAME padding is read from the input size at run time;
# the baselines' torchvision variants (no LRN, BatchNorm without the paper's biases, the other stride, the
# average pools that count their padding).
VARIANTS = [("mobilenet_v1", {"conv": "standard", "padding": "tf_same"}), ("mobilenet_v2", {"padding": "tf_same"}),
            ("mobilenet_v3_small", {"minimalistic": True, "padding": "tf_same"}), ("xception", {"padding": "tf_same"}),
            *[(name, {"variant": "torchvision"}) for name in ("alexnet", "googlenet", "inception_v3", "resnet50")]]


def small(name: str, **kwargs) -> tuple[torch.nn.Module, torch.Tensor]:
    """An instance in eval mode, and a batch of two inputs at a small size it takes."""
    size = SIZES.get(name, SIZE)
    if name == "mobilefacenet" and not kwargs.get("features_only"):
        kwargs["img_size"] = size  # its GDC is sized for it
    if name in NARROW:
        kwargs["width_mult"] = 0.25
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    return model.eval(), torch.randn(2, 3, size, size)


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    # Relative to the output's scale: a fresh model's eval-mode outputs can be far below 1e-5.
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))


@pytest.mark.parametrize("name, kwargs", [(n, {"num_classes": 10}) for n in MODELS] + VARIANTS,
                         ids=[*MODELS, *(f"{n}-{'-'.join(k)}" for n, k in VARIANTS)])
def test_symbolic_trace_computes_what_eager_computes(name, kwargs):
    model, x = small(name, **kwargs)
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        assert torch.equal(traced(x), model(x))
        if kwargs.get("padding") == "tf_same":  # padded for each input's size, odd sizes too
            assert torch.equal(traced(x[:, :, 1:, 1:]), model(x[:, :, 1:, 1:]))


@pytest.mark.parametrize("name", MODELS)
def test_backbone_symbolic_trace_gives_the_same_maps(name):
    model, x = small(name, features_only=True, out_indices=(1, -1))
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        for a, b in zip(traced(x), model(x), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", MODELS)
def test_export_computes_what_eager_computes(name):
    model, x = small(name, num_classes=10)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert_same(exported.module()(x), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_traced_model_raises_what_eager_raises(name):
    """The model's input check is a call in the graph (the first node), so the GraphModule names the
    model, the expected and the received channel counts exactly as eager does."""
    model, x = small(name)
    traced = torch.fx.symbolic_trace(model)
    first = next(n for n in traced.graph.nodes if n.op != "placeholder")
    assert first.target is checked_input and first.args[1:3] == (type(model).__name__, 3)
    for wrong in (torch.randn(1, 1, *x.shape[-2:]), torch.randn(3, *x.shape[-2:])):
        with pytest.raises(ValueError) as eager:
            model(wrong)
        with pytest.raises(ValueError) as graph:
            traced(wrong)
        assert str(graph.value) == str(eager.value)
    assert str(eager.value).startswith(f"{type(model).__name__}: input must be 4-D")


def test_traced_error_message():
    model, _ = small("mobilenet_v2")
    with pytest.raises(ValueError, match=r"^MobileNetV2: expected 3 input channels, got 1 \(input shape"):
        torch.fx.symbolic_trace(model)(torch.randn(1, 1, 64, 64))
