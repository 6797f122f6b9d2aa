"""recalibrate_bn (AdaBN): every BatchNorm's running statistics re-estimated from real images, nothing else changed."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

from sepconv.separation import recalibrate
from sepconv.separation.recalibrate import recalibrate_bn


def test_recalibrate_bn_matches_the_batch_statistics():
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4, momentum=0.3), nn.Dropout(0.5))
    x = torch.randn(32, 2, 6, 6)
    assert recalibrate_bn(net.train(), x, batch_size=8) == 1
    y = net[0](x)
    torch.testing.assert_close(net[1].running_mean, y.mean((0, 2, 3)), rtol=1e-5, atol=1e-5)
    assert net[1].momentum == 0.3 and net.training and net[2].training  # flags and momentum restored


def test_only_norms_that_track_statistics_are_counted_and_weights_do_not_change():
    net = nn.Sequential(nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4), nn.BatchNorm2d(4, track_running_stats=False),
                        nn.BatchNorm2d(4, affine=False)).eval()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    x = torch.randn(10, 2, 3, 3) * 3 + 1
    assert recalibrate_bn(net, x, batch_size=3) == 2  # 4 batches: 3 + 3 + 3 + 1 images
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in weights.items())
    assert not any(m.training for m in net.modules())  # eval stays eval
    # a cumulative average over the batches: the last, smaller batch weighs as much as the others
    y = net[1](net[0](x))  # eval mode: normalised with the new statistics
    chunks = [net[0](c) for c in x.split(3)]
    torch.testing.assert_close(net[1].running_mean, torch.stack([c.mean((0, 2, 3)) for c in chunks]).mean(0),
                               rtol=1e-5, atol=1e-5)
    assert int(net[1].num_batches_tracked) == 4 and y.shape == (10, 4, 3, 3)


def test_the_flags_and_momenta_come_back_after_a_failure():
    net = nn.Sequential(nn.BatchNorm2d(3, momentum=0.2), nn.Conv2d(5, 4, 1)).train()
    with pytest.raises(RuntimeError):
        recalibrate_bn(net, torch.randn(4, 3, 2, 2))  # the conv expects 5 channels
    assert net[0].momentum == 0.2 and net.training and net[0].training and net[1].training


@pytest.mark.parametrize("images, batch_size, message", [
    (torch.zeros(3, 4, 4), 8, r"images must be a 4-D \(B, C, H, W\) tensor, got torch.Size\(\[3, 4, 4\]\)"),
    ([1, 2], 8, r"images must be a 4-D .*got \[1, 2\]"),
    (torch.zeros(1, 3, 4, 4), 0, "batch_size=0 must be a positive integer"),
])
def test_bad_arguments(images, batch_size, message):
    with pytest.raises(ValueError, match=message):
        recalibrate_bn(nn.BatchNorm2d(3), images, batch_size=batch_size)


def test_docstring_example():
    result = doctest.testmod(recalibrate, extraglobs={"torch": torch, "nn": nn})
    assert result.attempted > 0 and result.failed == 0
