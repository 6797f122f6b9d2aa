"""``compare_layer(padding="valid")``: the seed's worked example, 81 multiplications for a 3x3 kernel on a 5x5
map without padding against 45 + 27 = 72 for 3x1 then 1x3, and the closed forms under valid padding."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sepconv._util.checks import ArgumentError
from sepconv.compare import compare_layer


def test_valid_padding_gives_the_seeds_81_against_72():
    result = compare_layer(1, 1, 3, 5, padding="valid", repeats=0)
    assert result.form("standard").macs == 81
    assert result.form("spatially_separable").macs == 45 + 27
    assert result.form("spatially_separable").theory == Fraction(72, 81)
    assert result.to_dict()["config"]["padding"] == "valid"


def test_same_padding_keeps_the_map_and_the_document():
    result = compare_layer(1, 1, 3, 5, repeats=0)
    assert (result.form("standard").macs, result.form("spatially_separable").macs) == (225, 150)
    assert "padding" not in result.to_dict()["config"]  # the plain document is as it was


@pytest.mark.parametrize("kwargs", [dict(in_channels=8, out_channels=16, kernel=3, size=9),
                                    dict(in_channels=8, out_channels=16, kernel=5, size=12, stride=2),
                                    dict(in_channels=4, out_channels=8, kernel=3, size=3)])
def test_valid_padding_theory_equals_the_cost_model_for_every_form(kwargs):
    result = compare_layer(**kwargs, padding="valid", repeats=0)
    for row in result.forms:
        if row.applicable:
            assert row.macs_ratio == row.theory, row.form


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=2, padding="valid"), r"size=2 is smaller than kernel=3: padding='valid' needs size >= kernel"),
    (dict(kernel=7, size=5, padding="valid"), r"size=5 is smaller than kernel=7"),
    (dict(padding="full"), r"padding='full' must be one of"),
])
def test_bad_padding_input(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        compare_layer(repeats=0, **kwargs)
