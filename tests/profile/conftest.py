"""Fixtures of the profile tests: one small training profile, measured once per module, and a
made-up machine with every ceiling (memory levels, precision peaks)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.layers import ConvNormAct, SeparableConv2d
from sepconv.machine import Machine, MemoryLevel, Peak
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


@pytest.fixture
def levelled_machine() -> Machine:
    """A made-up machine with every ceiling: L1 200 GB/s to 32 KiB, L2 100 to 1 MiB, L3 50 to 16 MiB,
    DRAM 20; fp32 100 GFLOP/s, bf16 200, fp16 unavailable (with the reason), int8 400 GOP/s."""
    kib, mib = 1024, 1024 * 1024
    levels = (MemoryLevel("L1", 200.0, 32 * kib, 16 * kib, False, "sysfs: 32 KiB per core x 1 thread"),
              MemoryLevel("L2", 100.0, mib, 256 * kib, False, "sysfs: 1 MiB per core x 1 thread"),
              MemoryLevel("L3", 50.0, 16 * mib, 4 * mib, True, "shared: where the sweep's plateau ends"),
              MemoryLevel("DRAM", 20.0, None, 256 * mib, True, "the sweep's largest sizes"))
    peaks = (Peak("fp32", 100.0, "torch/MKL", "torch.mm 1024x1024x1024"),
             Peak("bf16", 200.0, "torch/oneDNN", "torch.mm 1024x1024x1024 bf16"),
             Peak("fp16", None, "torch/oneDNN", "", "oneDNN reports no fp16 support on this CPU"),
             Peak("int8", 400.0, "onnxruntime", "MatMulInteger u8 x s8 -> s32"))
    return Machine(cpu="test CPU", threads=1, torch_version=torch.__version__, peak_gflops_per_s=100.0,
                   bandwidth_gb_per_s=20.0, gemm_n=1024, stream_bytes=256 * mib,
                   measured_at="2026-01-01T00:00:00+00:00", load_average=0.1, cores=2, levels=levels, peaks=peaks,
                   versions={"torch": torch.__version__, "numpy": "2.0"},
                   sweep=((16 * kib, 200.0), (512 * kib, 100.0), (4 * mib, 50.0), (256 * mib, 20.0)))
