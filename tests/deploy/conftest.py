"""Every deploy test checks that torch's thread count is what it was: library code (optimize, the
runners, bench with ``--threads``) sets threads only for its own work and restores them."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _threads_unchanged():
    threads = torch.get_num_threads()
    yield
    after = torch.get_num_threads()
    torch.set_num_threads(threads)  # the next test starts as this one did, even when this one fails
    assert after == threads, f"the test left torch.set_num_threads({after}), was {threads}"
