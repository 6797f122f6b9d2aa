"""The input check at the top of every forward: 4-D, the channel count, groups, the map size; the
same ValueError from a traced graph, and the function stays one node of it."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

from sepconv.layers import _input
from sepconv.layers._input import checked, checked_input


def test_a_good_input_is_returned_as_is():
    x = torch.zeros(2, 6, 5, 4)
    assert checked_input(x, "Net", 6) is x
    assert checked_input(x, "Net", None, groups=3, size=(5, 4)) is x


@pytest.mark.parametrize("x, kwargs, message", [
    (torch.zeros(6, 5, 4), dict(channels=6), "Net"),
    (torch.zeros(1, 6, 5, 4, 1), dict(channels=None), "Net"),
    (torch.zeros(1, 5, 4, 4), dict(channels=6), "expected 6 input channels, got 5"),
    (torch.zeros(1, 6, 4, 4), dict(channels=None, groups=4), "groups=4 must divide the input's 6 channels"),
    (torch.zeros(1, 6, 7, 7), dict(channels=6, size=(6, 6)), "expected a 6x6 feature map, got 7x7"),
])
def test_a_bad_input_names_where_what_was_expected_and_what_came(x, kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        checked_input(x, "Net", **kwargs)
    assert str(err.value).startswith("Net")


def test_checked_uses_the_module_class_name_and_its_in_channels():
    conv = nn.Conv2d(3, 4, 1)
    with pytest.raises(ValueError, match="^Conv2d: expected 3 input channels, got 2"):
        checked(conv, torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="^ReLU: .*4-D"):
        checked(nn.ReLU(), torch.zeros(2, 4))  # no in_channels: any channel count, still 4-D


def test_module_docstring_example():
    result = doctest.testmod(_input, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
