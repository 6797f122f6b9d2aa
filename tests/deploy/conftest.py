"""Deploy tests change torch's thread count (``compile(threads=...)``): give it back after each."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
