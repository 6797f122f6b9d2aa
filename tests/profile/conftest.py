"""Fixtures of the profiler tests: a fixed machine (no micro-benchmarks), a small model, a cache dir."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.layers import ConvNormAct, SeparableConv2d
from sepconv.machine import Machine


@pytest.fixture
def machine() -> Machine:
    """Ceilings of a made-up machine: 100 GFLOP/s, 20 GB/s, so the ridge is at 5 FLOPs/byte."""
    return Machine(cpu="test CPU", threads=1, torch_version=torch.__version__, peak_gflops_per_s=100.0,
                   bandwidth_gb_per_s=20.0, gemm_n=1024, stream_bytes=3 << 26, measured_at="2026-01-01T00:00:00+00:00",
                   load_average=0.1, cores=2)


@pytest.fixture
def small_net() -> nn.Module:
    """A stem, two separable blocks and a classifier: every kind the profile groups by, in 10 ms."""
    torch.manual_seed(0)
    return nn.Sequential(
        ConvNormAct(3, 32, 3, stride=2),
        SeparableConv2d(32, 64, 3, mid_norm=nn.BatchNorm2d, mid_act=nn.ReLU),
        ConvNormAct(64, 64, 3, groups=4),
        SeparableConv2d(64, 64, 3, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    ).eval()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    """Keep the machine cache of every test in its own temporary directory."""
    monkeypatch.setenv("SEPCONV_CACHE", str(tmp_path / "cache"))
