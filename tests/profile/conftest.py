"""Fixtures of the profile tests: one small training profile, measured once per module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.layers import ConvNormAct, SeparableConv2d
from sepconv.machine import Machine
from sepconv.profile import profile_model, to_dict


@pytest.fixture(scope="module")
def training_doc(tmp_path_factory) -> dict:
    """The JSON document of a training profile of a stem, a separable block and a classifier
    (batch 2, 32 px, one thread, fp32 steps on eager at batches 2 and 4), on the made-up machine of
    ``tests/conftest.py`` (100 GFLOP/s, 20 GB/s)."""
    torch.manual_seed(0)
    net = nn.Sequential(ConvNormAct(3, 16, 3, stride=2), SeparableConv2d(16, 32, 3, mid_norm=nn.BatchNorm2d,
                                                                         mid_act=nn.ReLU),
                        ConvNormAct(32, 32, 3, groups=4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    machine = Machine(cpu="test CPU", threads=1, torch_version=torch.__version__, peak_gflops_per_s=100.0,
                      bandwidth_gb_per_s=20.0, gemm_n=1024, stream_bytes=3 << 26,
                      measured_at="2026-01-01T00:00:00+00:00", load_average=0.1, cores=2)
    profile = profile_model(net, (2, 3, 32, 32), spec="small_net", batch=4, threads=1, repeats=2, warmup=0,
                            machine=machine, train=True, precisions="fp32")
    return to_dict(profile)
