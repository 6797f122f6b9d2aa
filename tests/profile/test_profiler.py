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


def test_training_profile_checks_its_input_first(machine):
    import pytest

    with pytest.raises(ValueError, match="input_shape=1x3x8x8: a training profile needs a batch of at least 2"):
        profile_model(nn.Conv2d(3, 4, 3), (1, 3, 8, 8), train=True, machine=machine)
    with pytest.raises(ValueError, match="model='relu' has none"):
        profile_model(nn.ReLU(), (2, 3, 8, 8), spec="relu", train=True, machine=machine)
    with pytest.raises(ValueError, match="precision='int8' must be 'all'"):
        profile_model(nn.Conv2d(3, 4, 3), (2, 3, 8, 8), train=True, precisions=["int8"], machine=machine)
    with pytest.raises(ValueError, match="impl='caffe' must be one of"):
        profile_model(nn.Conv2d(3, 4, 3), (2, 3, 8, 8), impl="caffe", machine=machine)


def test_im2col_profile(machine):
    tiny = nn.Sequential(nn.Conv2d(3, 4, 3, groups=1), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=4))
    profile = profile_model(tiny, (2, 3, 8, 8), threads=1, repeats=1, warmup=0, machine=machine, impl="im2col",
                            train=True, precisions="fp32")
    assert profile.impl == "im2col" and [row.type for row in profile.cost.layers] == [
        "Im2colConv2d", "ReLU", "Im2colConv2d"]
    assert [row.kind for row in profile.cost.layers] == ["standard", "activation", "depthwise"]
    dw = profile.training.layers.layers[2]
    assert dw.backward is not None and dw.input_grad is None  # im2col's own autograd: not split
    assert type(tiny[0]) is nn.Conv2d  # the model given is unchanged
