"""sepconv.train.distributed in one process (without torchrun): no process group, every helper a
no-op; devices named and checked. Two processes under torchrun: tests/cli/test_train.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.train.distributed import DistInfo, all_reduce_sum, barrier, cleanup, device_for, setup, wrap


def test_one_process_is_rank_0_of_1_and_every_helper_is_a_no_op(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = setup("cpu")
    assert info == DistInfo(0, 1, 0, torch.device("cpu")) and info.is_main and not info.distributed
    model = nn.Linear(2, 2)
    assert wrap(model, info) is model
    t = torch.ones(3)
    assert all_reduce_sum(t, info) is t and torch.equal(t, torch.ones(3))
    barrier(info)
    cleanup(info)
    assert not torch.distributed.is_initialized()


def test_rank_and_world_properties():
    assert not DistInfo(rank=1, world_size=2).is_main and DistInfo(rank=1, world_size=2).distributed


def test_devices():
    assert device_for("cpu") == torch.device("cpu")
    assert device_for("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device='tpu' must be 'auto', 'cpu' or 'cuda'"):
        device_for("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' but torch sees no CUDA GPU"):
            device_for("cuda")
