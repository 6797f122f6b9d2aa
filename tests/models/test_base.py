"""sepconv.models._base, the parts every family shares: argument checks, the feature levels a
backbone offers and out_indices picks (the zoo-wide checks are in test_zoo.py and test_weight_init.py)."""

from __future__ import annotations

import pytest
from torch import nn

from sepconv.models._base import (
    Body,
    FeatureInfo,
    activation,
    batch_norm,
    check_width,
    chosen_levels,
    classifier_layer,
    cumulative,
    feature_levels,
    first_conv,
)


def test_activation_names():
    assert activation("relu6") is nn.ReLU6 and activation("hardswish") is nn.Hardswish
    with pytest.raises(ValueError, match="act='gelu' must be one of 'relu', 'relu6', 'hardswish', 'prelu'"):
        activation("gelu")


def test_batch_norm_eps():
    assert batch_norm(1e-3)(4).eps == 1e-3
    for eps in (0, 1, -1e-5, True, "1e-3"):
        with pytest.raises(ValueError, match="bn_eps=.* must be a number in \\(0, 1\\)"):
            batch_norm(eps)


def test_width_must_keep_one_channel_in_the_narrowest_layer():
    assert check_width(1, 16) == 1.0 and isinstance(check_width(1, 16), float)
    assert check_width(1 / 16, 16) == 1 / 16
    with pytest.raises(ValueError, match="width_mult=0.05 must be at least 1/16 = 0.0625"):
        check_width(0.05, 16)
    for bad in (0, -0.5, True, "1"):
        with pytest.raises(ValueError, match="must be a positive number"):
            check_width(bad, 16)


def test_first_conv_and_classifier():
    stem = first_conv(1, 8)
    assert stem.conv.in_channels == 1 and stem.conv.stride == (2, 2) and stem.conv.kernel_size == (3, 3)
    with pytest.raises(ValueError, match="in_chans=0 must be a positive integer"):
        first_conv(0, 8)
    assert isinstance(classifier_layer(8, 10), nn.Linear) and isinstance(classifier_layer(8, 0), nn.Identity)


def test_feature_levels_are_the_last_module_at_each_stride():
    assert cumulative([2, 1, 2, 2, 1]) == [2, 2, 4, 8, 8]
    assert cumulative([2, 2], start=4) == [8, 16]
    body = Body(stem=nn.Identity(), blocks=[nn.Identity()] * 4, strides=[2, 1, 2, 1, 2], channels=[8, 16, 24, 24, 32])
    assert body.width == 32
    assert feature_levels(body) == [(1, FeatureInfo("blocks.0", 2, 16)), (3, FeatureInfo("blocks.2", 4, 24)),
                                    (4, FeatureInfo("blocks.3", 8, 32))]


@pytest.mark.parametrize("out_indices, levels, chosen", [
    (None, 4, [0, 1, 2, 3]), ((2, 0), 4, [0, 2]), ([-1], 4, [3]), ((1, -3), 4, [1]),
])
def test_chosen_levels(out_indices, levels, chosen):
    assert chosen_levels(out_indices, levels) == chosen


@pytest.mark.parametrize("out_indices", [(), "01", 3, (4,), (-5,), (0, 1.5), (True,)])
def test_chosen_levels_refuses_what_indexes_no_level(out_indices):
    with pytest.raises(ValueError, match="out_indices=.*each indexing one of the 4 feature levels") as err:
        chosen_levels(out_indices, 4)
    assert err.value.argument == "out_indices"
