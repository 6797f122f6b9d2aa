"""Helpers shared by the deploy tests: small zoo instances, BN statistics that make folding matter."""

from __future__ import annotations

import torch
from torch import nn

from sepconv.engines.synthetic import lively_weights
from sepconv.models import create_model, list_models

MODELS = list_models(task="classification")
# the baselines the papers compare against run at a quarter of their width here, to keep the suite's time
NARROW = {"alexnet", "googlenet", "inception_v3", "resnet18", "resnet50", "resnet152"}


def small_size(name: str) -> int:
    """A small input size each model accepts (MobileFaceNet's GDC is built for 112 here; Inception v3
    needs 75 px)."""
    return {"mobilefacenet": 112, "inception_v3": 75}.get(name, 64)


def small_model(name: str, size: int | None = None, **kwargs) -> nn.Module:
    """A 10-class zoo model with live activations (see sepconv.engines.synthetic), in eval mode."""
    size = size or small_size(name)
    if name == "mobilefacenet":
        kwargs.setdefault("img_size", size)
    if name in NARROW:
        kwargs.setdefault("width_mult", 0.25)
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, **kwargs)
    batch = 8 if size < 200 else 2  # BN statistics from 8 images (VGG at 224 has no BN to calibrate)
    return lively_weights(model, torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)))


def randomize_norms(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters (fresh ones fold to the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if m.weight is not None:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model


def tiny_digits_net() -> nn.Module:
    """A 3-conv network for 1x8x8 digits, with BN, ReLU6 and a linear head."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )
