"""sepconv.train.width_sweep: the width multipliers a sweep trains, parsed and checked (the sweep itself
runs end to end in tests/cli/test_train.py)."""

from __future__ import annotations

import doctest

import pytest

from sepconv.train import width_sweep
from sepconv.train.width_sweep import parse_widths


@pytest.mark.parametrize("text, widths", [("0.25,0.5,1", [0.25, 0.5, 1.0]), (" 1.0 , 0.5 ", [1.0, 0.5]),
                                          ("0.75,", [0.75]), ("2", [2.0])])
def test_parse_widths_keeps_the_given_order(text, widths):
    assert parse_widths(text) == widths


@pytest.mark.parametrize("text", ["", ",", "0.5,0.5", "0,0.5", "-1", "half", "0.5;1", "nan"])
def test_parse_widths_refuses_what_is_not_distinct_positive_numbers(text):
    with pytest.raises(ValueError, match="must be distinct positive numbers separated by commas"):
        parse_widths(text)


def test_docstring_example():
    result = doctest.testmod(width_sweep)
    assert result.attempted > 0 and result.failed == 0
