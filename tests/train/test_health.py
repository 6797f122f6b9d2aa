"""sepconv.train.health (``sepconv inspect``): per depthwise conv, its dead kernels, the BatchNorm after
it and the channels its ReLU keeps inactive, read from the weights alone."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

from sepconv.models import create_model
from sepconv.train import health
from sepconv.train.health import inspect_model

pytestmark = pytest.mark.usefixtures("one_thread")


def net() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(4, 4, 3, stride=2, groups=4, bias=False), nn.BatchNorm2d(4), nn.ReLU6(),
        nn.Conv2d(4, 8, 1), nn.BatchNorm2d(8), nn.ReLU(),  # pointwise: not inspected
        nn.Conv2d(8, 8, 5, groups=8), nn.Hardswish(),  # depthwise without a BatchNorm
    )
    with torch.no_grad():
        model[0].weight[1].zero_()  # a dead kernel
        model[0].weight[2].fill_(1e-5)  # another, below the tolerance
        model[1].weight.copy_(torch.tensor([1.0, -0.5, 1e-4, 2.0]))
        model[1].bias.copy_(torch.tensor([0.0, 2.0, -1.0, -6.0]))  # beta + 3|gamma| <= 0: channels 2 and 3
    return model


def test_dead_kernels_bn_scales_and_inactive_channels():
    first, second = inspect_model(net())
    assert (first.name, first.channels, first.kernel, first.stride) == ("0", 4, "3x3", 2)
    assert first.dead == 2 and first.dead_fraction == 0.5 and first.norm_min == 0.0
    assert (first.bn, first.act) == ("1", "ReLU6")
    assert (first.gamma_min, first.gamma_max) == (pytest.approx(1e-4), 2.0) and first.small_gamma == 1
    assert first.inactive == 2
    assert (second.name, second.kernel, second.dead) == ("6", "5x5", 0)
    assert second.bn is None and second.act is None and second.inactive is None  # no BN: nothing to read
    assert second.to_dict()["dead_fraction"] == 0.0


def test_the_tolerance_decides_what_is_dead():
    assert inspect_model(net(), tol=1e-6)[0].dead == 1  # only the zeroed kernel
    assert inspect_model(net(), tol=10.0)[0].dead == 4
    for tol in (0, -1, True, "1e-3"):
        with pytest.raises(ValueError, match="tol=.* must be a positive number"):
            inspect_model(net(), tol=tol)


def test_a_bn_of_another_width_or_after_another_conv_is_not_the_layers():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.BatchNorm2d(5), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
    (row,) = inspect_model(model)
    assert row.bn is None


def test_docstring_example():
    result = doctest.testmod(health, extraglobs={"create_model": create_model})
    assert result.attempted > 0 and result.failed == 0
