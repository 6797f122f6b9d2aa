"""sepconv._util.checks: every check passes good values through and raises an ArgumentError (a
ValueError) naming the argument, the value and the rule, with the argument's name in ``.argument``."""

from __future__ import annotations

import doctest
import functools

import pytest
import torch
from torch import nn

from sepconv._util import checks
from sepconv._util.checks import (
    ArgumentError,
    boolean,
    divides,
    four_d,
    input_channels,
    int_pair,
    non_negative_int,
    one_of,
    optional_callable,
    positive_int,
)


def test_argument_error_is_a_value_error_with_the_argument():
    err = ArgumentError("threads", "threads=0 must be a positive integer")
    assert isinstance(err, ValueError) and err.argument == "threads"
    assert str(err) == "threads=0 must be a positive integer"


@pytest.mark.parametrize("check, value, expected", [
    (positive_int, 1, 1), (positive_int, 10**12, 10**12),
    (non_negative_int, 0, 0), (non_negative_int, 7, 7),
    (boolean, True, True), (boolean, False, False),
    (functools.partial(int_pair, minimum=1), 3, (3, 3)),
    (functools.partial(int_pair, minimum=1), (2, 5), (2, 5)),
    (functools.partial(int_pair, minimum=1), [2, 5], (2, 5)),
    (functools.partial(int_pair, minimum=0), 0, (0, 0)),
    (functools.partial(one_of, choices=("sgd", "adamw")), "sgd", "sgd"),
    (optional_callable, None, None), (optional_callable, nn.ReLU, nn.ReLU),
])
def test_good_values_pass_through(check, value, expected):
    assert check("x", value) == expected


@pytest.mark.parametrize("check, value, message", [
    (positive_int, 0, "x=0 must be a positive integer"),
    (positive_int, -3, "x=-3 must be a positive integer"),
    (positive_int, 2.0, "x=2.0 must be a positive integer"),
    (positive_int, True, "x=True must be a positive integer"),  # a bool is no count
    (positive_int, "4", "x='4' must be a positive integer"),
    (non_negative_int, -1, "x=-1 must be a non-negative integer"),
    (non_negative_int, False, "x=False must be a non-negative integer"),
    (boolean, 1, "x=1 must be True or False"),
    (boolean, "no", "x='no' must be True or False"),
    (boolean, None, "x=None must be True or False"),
    (functools.partial(int_pair, minimum=1), 0, "x=0 must be an integer >= 1 or a pair of them"),
    (functools.partial(int_pair, minimum=1), (1, 2, 3), r"x=\(1, 2, 3\) must be an integer >= 1"),
    (functools.partial(int_pair, minimum=1), (1, True), r"x=\(1, True\) must be an integer >= 1"),
    (functools.partial(int_pair, minimum=0), (0, -1), r"x=\(0, -1\) must be an integer >= 0 or a pair"),
    (functools.partial(int_pair, minimum=1), "3", "x='3' must be an integer >= 1"),
    (functools.partial(one_of, choices=("sgd", "adamw")), "lamb", "x='lamb' must be one of 'sgd', 'adamw'"),
    (optional_callable, 3, "x=3 must be a callable that builds a module"),
    (optional_callable, nn.ReLU(), r"x=ReLU\(\) must be a callable that builds a module .*not a module instance"),
])
def test_bad_values_name_the_argument_the_value_and_the_rule(check, value, message):
    with pytest.raises(ArgumentError, match=f"^{message}") as err:
        check("x", value)
    assert err.value.argument == "x"


def test_one_of_takes_any_iterable_of_choices():
    assert one_of("mode", 2, iter([1, 2])) == 2
    with pytest.raises(ArgumentError, match="mode=3 must be one of 1, 2"):
        one_of("mode", 3, (c for c in (1, 2)))


def test_divides_names_both_arguments():
    divides("groups", 4, "in_channels", 32)
    with pytest.raises(ArgumentError, match="^groups=3 must divide in_channels=32$") as err:
        divides("groups", 3, "in_channels", 32)
    assert err.value.argument == "groups"


def test_input_checks_name_where_and_the_shape():
    input_channels(torch.zeros(2, 3, 4, 4), 3, "Net")
    four_d(torch.zeros(1, 1, 1, 1), "Net")
    with pytest.raises(ValueError, match=r"^Net: input must be 4-D \(B, C, H, W\), got shape \(3, 4, 4\)$"):
        four_d(torch.zeros(3, 4, 4), "Net")
    with pytest.raises(ValueError, match=r"^Net: input must be 4-D"):
        input_channels(torch.zeros(3, 4, 4), 3, "Net")  # the dimensions are checked first
    with pytest.raises(ValueError, match=r"^Net: expected 3 input channels, got 1 \(input shape \(2, 1, 4, 4\)\)$"):
        input_channels(torch.zeros(2, 1, 4, 4), 3, "Net")


def test_docstring_example():
    result = doctest.testmod(checks)
    assert result.attempted > 0 and result.failed == 0
