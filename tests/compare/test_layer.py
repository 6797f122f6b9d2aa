"""compare_layer: every form of one conv layer, its MACs against the closed-form ratio, and the forms
that do not apply."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sepconv.compare.layer import compare_layer


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 12), n=st.integers(1, 12), k=st.integers(1, 5), size=st.integers(1, 12),
       stride=st.integers(1, 3), d=st.integers(1, 3), batch=st.integers(1, 2))
def test_measured_ratio_equals_closed_form(m, n, k, size, stride, d, batch):
    assume(not (k % 2 == 0 and stride > 1 and size == 1))  # symmetric "same" leaves no output: see below
    result = compare_layer(m, n, k, size, stride, depth_multiplier=d, batch=batch, repeats=0)
    for row in result.forms:
        if row.applicable:
            assert row.macs_ratio == row.theory, row.form
    if k % 2:
        assert result.form("standard").macs == batch * n * m * k * k * (-(-size // stride)) ** 2
    assert result.form("depthwise_separable").theory == Fraction(d, n) + Fraction(d, k * k)
    if result.config.groups:
        assert result.form("grouped").theory == Fraction(1, result.config.groups)


def test_explicit_groups_and_segments():
    result = compare_layer(32, 64, 3, 8, groups=4, segments=64, repeats=0)
    assert result.form("grouped").macs_ratio == Fraction(1, 4)
    assert result.form("segmented").macs_ratio == Fraction(1, 9) + Fraction(64, 32 * 64)
    assert not compare_layer(4, 4, 1, 8, repeats=0).form("spatially_separable").applicable


def test_even_kernel_strided_on_one_pixel_is_refused():
    with pytest.raises(ValueError, match="size=1"):
        compare_layer(kernel=2, size=1, stride=2, repeats=0)


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"size": 100000}, "size"), ({"kernel": 100000}, "kernel"), ({"batch": 100000000}, "batch"),
    ({"in_channels": 10000000}, "in_channels"), ({"depth_multiplier": 100000000}, "depth_multiplier"),
    ({"out_channels": 100000000}, "out_channels"),
])
def test_huge_sizes_are_refused_before_any_allocation(kwargs, argument):
    from sepconv._util.checks import ArgumentError

    with pytest.raises(ArgumentError, match=r"would need .* but only .* is available") as info:
        compare_layer(**kwargs, repeats=0)
    assert info.value.argument == argument
    assert f"{argument}={next(iter(kwargs.values()))}" in str(info.value)


def test_the_memory_estimate_bounds_what_a_comparison_uses():
    """The estimate is an upper bound: the default layer's real tensors fit well inside it."""
    from sepconv.compare.layer import CompareConfig, memory_needed

    config = CompareConfig(64, 128, 3, 56, 1, 8, 1, 8, 4, 0, 0)
    need = memory_needed(config)
    assert need["weights"] >= 4 * 128 * 64 * 9  # the standard conv alone
    assert need["activations"] >= 4 * 4 * (64 + 128) * 56 * 56  # input and output at batch 4
    trained = memory_needed(CompareConfig(64, 128, 3, 56, 1, 8, 1, 8, 4, 0, 0, ("native",), True))
    assert trained["activations"] == 3 * need["activations"]
