"""The zoo initialises its weights as torchvision's MobileNetV2/V3 do (``ConvNet.init_weights``), and a
fresh model's output depends on its input (DESIGN.md, style rule 4)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sepconv.models import create_model, list_models, model_entry
from sepconv.models.registry import argument_defaults

MODELS = [n for n in list_models(task="classification") if model_entry(n).fn.__module__.startswith("sepconv.models.")]
SHOWN = 3
# The classification baselines are checked at a quarter of their width (the same layers; test_counts.py
# builds and runs them at full width).
NARROW = {name: {"width_mult": 0.25} for name in ("alexnet", "googlenet", "inception_v3", "resnet18", "resnet50",
                                                   "resnet152")}


def std(weight: torch.Tensor) -> float:
    return float(weight.detach().std())


def fan_out_std(conv: nn.Conv2d) -> float:
    """Kaiming-normal, fan-out mode: std = sqrt(2 / fan_out), fan_out = out_channels * kh * kw."""
    return math.sqrt(2.0 / (conv.weight.shape[0] * conv.weight[0, 0].numel()))


@pytest.fixture(scope="module")
def v3() -> nn.Module:
    """Every layer type the rule covers: convs with and without bias (squeeze-excite's have one), BatchNorm,
    linear layers (the head's and the classifier)."""
    torch.manual_seed(0)
    return create_model("mobilenet_v3_large")


def test_conv_weights_are_kaiming_normal_fan_out(v3):
    convs = [m for m in v3.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) > 60
    # Each large conv's own std (std error ~1/sqrt(2n) < 1% for n >= 10^4)...
    large = [(c, std(c.weight) / fan_out_std(c)) for c in convs if c.weight.numel() >= 10_000]
    assert len(large) > 20
    off = [(c, round(r, 3)) for c, r in large if abs(r - 1) > 0.05]
    assert not off, off[:SHOWN]
    # ... and every conv's weights, each divided by its own expected std: one standard normal sample.
    pooled = torch.cat([c.weight.detach().flatten() / fan_out_std(c) for c in convs])
    assert abs(float(pooled.std()) - 1) < 0.01 and abs(float(pooled.mean())) < 0.01


def test_conv_biases_are_zero(v3):
    biased = [m for m in v3.modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    assert biased  # squeeze-excite's 1x1 convs
    assert all(not m.bias.any() for m in biased)


def test_batch_norm_is_identity_affine(v3):
    norms = [m for m in v3.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any() for m in norms)


def test_linear_weights_are_normal_std_001_with_zero_bias(v3):
    linears = [v3.head_fc, v3.classifier]
    for m in linears:
        assert abs(std(m.weight) - 0.01) < 0.0003, m
        assert abs(float(m.weight.detach().mean())) < 0.0003, m
        assert not m.bias.any(), m
    assert {m for m in v3.modules() if isinstance(m, nn.Linear)} == set(linears)


def test_group_norm_and_batch_norm_1d_are_reset_too():
    """The rule covers every norm a family may use: BatchNorm1d (MobileFaceNet's embedding) and GroupNorm."""
    torch.manual_seed(0)
    model = create_model("mobilefacenet")
    model.blocks[0].dw.norm = nn.GroupNorm(4, model.blocks[0].dw.norm.num_features)
    norms = [model.embed_norm, model.blocks[0].dw.norm]
    with torch.no_grad():
        for m in norms:
            m.weight.normal_()
            m.bias.normal_()
    model.init_weights()
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any() for m in norms)


@pytest.mark.parametrize("name", MODELS)
def test_every_layer_follows_the_rule(name):
    """No module escapes the initialisation: the head's layers are built before it runs, once."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, **NARROW.get(name, {}))
    for label, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.weight.numel() >= 10_000:
            assert abs(std(m.weight) / fan_out_std(m) - 1) < 0.05, label
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            assert not m.bias.any(), label
        if isinstance(m, nn.Linear):
            assert abs(std(m.weight) - 0.01) < 0.001, label
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):  # Inception v3's paper variant has no gamma
            assert m.weight is None or torch.equal(m.weight, torch.ones_like(m.weight)), label
            assert not m.bias.any(), label


@pytest.mark.parametrize("name", MODELS)
def test_fresh_model_output_depends_on_its_input(name):
    """At its default input size, in eval mode, two random inputs give outputs that differ by more than
    0.1% of the output: the features reach the head (PyTorch's default initialisation let them vanish,
    MobileNetV2's two outputs differing by ~4e-9)."""
    size = argument_defaults(model_entry(name)).get("img_size", model_entry(name).input_size)
    torch.manual_seed(0)
    model = create_model(name, **NARROW.get(name, {})).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, size, size))
    assert torch.isfinite(y).all()
    assert float((y[0] - y[1]).norm() / y[0].norm()) > 1e-3
