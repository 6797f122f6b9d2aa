"""Hypothesis over the two grammars a user types into: a model spec (``name:key=value,...``, parsed by
:func:`sepconv.models.parse_spec` and resolved by :func:`sepconv.resolve.resolve_model`) and every
operator's constructor arguments (:mod:`sepconv.layers`). Whatever is given, the only exceptions are
``ValueError`` and ``TypeError`` (the errors the command line turns into one line and exit code 2),
and a constructor's error names the argument. Example counts are kept small (the hostile suite's
time budget); the settings profile derandomizes, so a failure repeats."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sepconv import layers
from sepconv.models import parse_spec
from sepconv.resolve import resolve_model

# Cheap models, so that a spec whose arguments all pass builds in milliseconds; the grammar is the same
# for every name.
NAMES = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilefacenet", "espcn", "resnet18"]
KEYS = ["width_mult", "num_classes", "in_chans", "img_size", "conv", "scale", "dropout", "drop_rate", "variant",
        "padding", "depth_multiplier", "evil", "out_indices", "features_only"]
SCALARS = st.one_of(
    st.integers(-3, 3000), st.floats(-4, 4), st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e400", "true",
                                                              "None", "null", "[]", "[1,[2]]", "{}", "standard",
                                                              "'x'", "", "=", "0x10", "1_000"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
)


def _value_text(value) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return str(value)


SPECS = st.builds(
    lambda name, items: name + (":" + ",".join(f"{k}={_value_text(v)}" for k, v in items) if items else ""),
    st.sampled_from(NAMES),
    st.lists(st.tuples(st.sampled_from(KEYS), SCALARS), max_size=3),
)


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_parse_spec_raises_only_value_error(text):
    try:
        name, kwargs = parse_spec(text)
    except ValueError:
        return
    assert isinstance(name, str) and isinstance(kwargs, dict)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS)
def test_resolving_any_spec_gives_a_model_or_a_value_or_type_error(spec):
    try:
        resolved = resolve_model(spec)
    except (ValueError, TypeError) as err:
        assert str(err).strip(), spec
        return
    assert isinstance(resolved.model, torch.nn.Module)


OPERATORS = sorted(n for n in layers.__all__ if inspect.isclass(getattr(layers, n)))
ARGUMENTS = st.one_of(
    st.integers(-2, 40), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.sampled_from(["same", "valid", "tf_same", "reflect", "", "x"]),
    st.tuples(st.integers(-1, 6), st.integers(-1, 6)), st.lists(st.integers(-1, 6), max_size=3),
    st.sampled_from([torch.nn.ReLU, torch.nn.BatchNorm2d, torch.nn.ReLU(), 3.5, object()]),
    st.builds(lambda n: torch.randperm(n), st.integers(0, 8)),
)


@pytest.mark.parametrize("name", OPERATORS)
def test_every_operator_constructor_raises_only_value_or_type_error_naming_the_argument(name):
    operator = getattr(layers, name)
    parameters = [p for p in inspect.signature(operator).parameters.values() if p.name != "self"]

    @settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow])
    @given(st.fixed_dictionaries({p.name: ARGUMENTS for p in parameters if p.default is inspect.Parameter.empty},
                                 optional={p.name: ARGUMENTS for p in parameters
                                           if p.default is not inspect.Parameter.empty}))
    def construct(kwargs):
        try:
            operator(**kwargs)
        except (ValueError, TypeError) as err:
            named = getattr(err, "argument", None)
            assert named in kwargs or any(p in str(err) for p in kwargs), (name, kwargs, str(err))

    construct()
