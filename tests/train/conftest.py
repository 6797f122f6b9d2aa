"""Training tests run torch on one thread (restored after each test).

Tiny models on tiny batches gain nothing from a second thread, and on a shared 2-core machine
OpenMP threads that wait for a busy core make them 5x slower; results do not depend on it.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
