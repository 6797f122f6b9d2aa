"""SqueezeExcite against a step-by-step functional reference: the squeeze width, the gate, the activation."""

from __future__ import annotations

import pytest
import torch
from support.layers import se_ref
from torch import nn
from torch.testing import assert_close

from sepconv.layers import SqueezeExcite


@pytest.mark.parametrize("channels, squeeze", [(16, 8), (72, 24), (96, 24), (120, 32), (240, 64), (960, 240)])
def test_squeeze_width_is_make_divisible_quarter(channels, squeeze):
    se = SqueezeExcite(channels)
    assert se.fc1.out_channels == squeeze and se.fc2.in_channels == squeeze and se.fc2.out_channels == channels


def test_squeeze_excite_matches_manual_computation():
    x = torch.randn(2, 16, 5, 5)
    se = SqueezeExcite(16)
    with torch.no_grad():  # spread the gate over its linear part and both saturated ends
        se.fc2.bias.uniform_(-4.0, 4.0)
    assert_close(se(x), se_ref(x, se))


def test_squeeze_excite_other_gate_and_width():
    x = torch.randn(1, 12, 4, 4)
    se = SqueezeExcite(12, gate=nn.Sigmoid, act_layer=None, squeeze_channels=5)
    assert se.fc1.out_channels == 5
    s = x.mean((2, 3))
    z = (s @ se.fc1.weight[:, :, 0, 0].T + se.fc1.bias) @ se.fc2.weight[:, :, 0, 0].T + se.fc2.bias
    assert_close(se(x), x * torch.sigmoid(z)[:, :, None, None])
