"""profile_model: the cost model, per-layer and whole-model timing in one Profile, threads restored,
backends timed at batch 1 too."""

from __future__ import annotations

import torch
from torch import nn

from sepconv.profile import profile_model


def test_profile_model_restores_threads(small_net, machine):
    before = torch.get_num_threads()
    profile_model(small_net, (1, 3, 16, 16), threads=1, repeats=1, warmup=0, machine=machine)
    assert torch.get_num_threads() == before


def test_backends_are_timed_at_batch_1_always(machine):
    """--input 4x... --batch 8 times batch 1 (the issue's latency), the input's 4 and 8."""
    tiny = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    profile = profile_model(tiny, (4, 3, 8, 8), backends=["eager", "channels_last"], batch=8, threads=1,
                            repeats=1, warmup=0, budget_s=None, machine=machine)
    assert [(r.backend, r.batch) for r in profile.backends] == [
        ("eager", 1), ("eager", 4), ("eager", 8), ("channels_last", 1), ("channels_last", 4), ("channels_last", 8)]
    assert all(r.status == "ok" for r in profile.backends)
