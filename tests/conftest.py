"""Fixtures shared by the whole suite: deterministic seeds, Hypothesis settings, Keras as a reference.

Keras 3 (torch backend) is a test-only reference for layer and weight parity; tests that need it
take the ``keras`` fixture and are skipped, with the reason, where it cannot be imported.
"""

from __future__ import annotations

import importlib
import os
import random
import sys

import numpy as np
import pytest
import torch

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
