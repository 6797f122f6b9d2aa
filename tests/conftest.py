"""Fixtures shared by the whole suite: deterministic seeds, Hypothesis settings, Keras as a reference,
a machine cache per test, a made-up machine and a small network for the profiler, and torch's thread count.

Keras 3 (torch backend) is a test-only reference for layer and weight parity; tests that need it
take the ``keras`` fixture and are skipped, with the reason, where it cannot be imported.

Modules opt in to the thread fixtures with ``pytestmark = pytest.mark.usefixtures(...)``:
``threads_unchanged`` (the deploy and engine tests: library code restores what it sets) and
``one_thread`` (the training tests: tiny models gain nothing from a second thread).
Helpers that tests import (``support.deploy``, ``support.layers``, ...) live in ``tests/support``,
on ``sys.path`` through pytest's ``pythonpath`` setting.
"""

from __future__ import annotations

import importlib
import os
import random
import sys

import numpy as np
import pytest
import torch
from torch import nn

from sepconv.layers import ConvNormAct, SeparableConv2d
from sepconv.machine import Machine

try:
    from hypothesis import settings
except ImportError:  # hypothesis is a test extra; only the property tests need it
    settings = None

if settings is not None:
    # No example database (nothing written into the checkout), no deadline (2 shared cores make
    # timings noisy), derandomized so a failure reproduces on the next run.
    settings.register_profile("sepconv", deadline=None, database=None, derandomize=True, max_examples=25)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "sepconv"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Seed Python, NumPy and torch before every test, so random weights and inputs repeat."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def keras():
    """The ``keras`` module on the torch backend, or a skip saying why it is unavailable."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "torch"
    try:
        module = importlib.import_module("keras")
    except ImportError as exc:
        pytest.skip(f"keras 3 (the layer-parity reference, `pip install keras`) cannot be imported: {exc}")
    if not module.__version__.startswith("3."):
        pytest.skip(f"keras {module.__version__} is installed; the parity tests need keras 3")
    backend = module.backend.backend()
    if backend != "torch":
        pytest.skip(f"keras was imported with the {backend!r} backend before the tests set KERAS_BACKEND=torch")
    return module


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    """Keep the machine cache of every test in its own temporary directory."""
    monkeypatch.setenv("SEPCONV_CACHE", str(tmp_path / "cache"))


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


@pytest.fixture
def threads_unchanged():
    """Check that the test leaves torch's thread count as it found it: library code (optimize, the
    runners, bench with ``--threads``) sets threads only for its own work and restores them."""
    threads = torch.get_num_threads()
    yield
    after = torch.get_num_threads()
    torch.set_num_threads(threads)  # the next test starts as this one did, even when this one fails
    assert after == threads, f"the test left torch.set_num_threads({after}), was {threads}"


@pytest.fixture
def one_thread():
    """Run the test with torch on one thread (restored after it).

    Tiny models on tiny batches gain nothing from a second thread, and on a shared 2-core machine
    OpenMP threads that wait for a busy core make them 5x slower; results do not depend on it.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
