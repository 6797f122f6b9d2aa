"""sepconv.models.provenance: where a model came from as one typed value, JSON types only, equal after a round trip."""

from __future__ import annotations

import doctest
import json

import pytest
from torch import nn

from sepconv.formats.checkpoint import save_model
from sepconv.models import create_model, provenance
from sepconv.models.provenance import MAX_DEPTH, Provenance, json_typed, provenance_of
from sepconv.resolve import resolve_model


def test_provenance_is_declared_typed_and_survives_a_round_trip(tmp_path):
    model = create_model("mobilenet_v3_small", features_only=True, out_indices=(1, 2), width_mult=0.5)
    assert model.provenance == Provenance("mobilenet_v3_small",
                                          {"features_only": True, "out_indices": [1, 2], "width_mult": 0.5})
    assert type(model).provenance is None  # declared on the class, set on the instance
    rebuilt = resolve_model(save_model(model, tmp_path / "m.safetensors")).model
    assert rebuilt.provenance == model.provenance
    with pytest.raises(ValueError, match="did not build .*no provenance"):
        save_model(nn.Conv2d(3, 3, 1), tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="it is saved as JSON"):
        Provenance("mobilenet_v2", {"width_mult": object()})


@pytest.mark.parametrize("value, expected", [
    (None, None), ("x", "x"), (True, True), (3, 3), (0.5, 0.5),
    ((1, (2, 3)), [1, [2, 3]]),
    ({"a": (1,), "b": {"c": None}}, {"a": [1], "b": {"c": None}}),
])
def test_json_typed_gives_json_types_only(value, expected):
    assert json_typed("v", value) == expected
    assert json.loads(json.dumps(json_typed("v", value))) == expected


@pytest.mark.parametrize("value, objects, error, message", [
    (float("nan"), True, ValueError, r"v=nan must be a finite number \(JSON has no NaN or Infinity\)"),
    ([1, float("inf")], True, ValueError, r"v\[1\]=inf must be a finite number"),
    ({1: "a"}, True, TypeError, "v has the key 1; keys must be strings"),
    ({"a": 1}, False, TypeError, r"v=\{'a': 1\} is a dict; it must be a str, bool, int, float, None, list \(it is"),
    ({"a": {1, 2}}, True, TypeError, r"v\['a'\]=\{1, 2\} is a set; it must be .* or dict"),
])
def test_json_typed_names_the_value_it_refuses(value, objects, error, message):
    with pytest.raises(error, match=message):
        json_typed("v", value, objects=objects)


def test_json_typed_refuses_nesting_beyond_the_limit():
    deep: list = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ValueError, match=f"nested deeper than {MAX_DEPTH} levels"):
        json_typed("v", deep)
    assert json_typed("v", deep[0]) == json.loads(json.dumps(deep[0]))  # one level less is fine


def test_to_json_writes_only_what_is_set_and_from_json_inverts_it():
    bare = Provenance("mobilenet_v2", {"width_mult": 0.5})
    assert bare.to_json() == {"model": "mobilenet_v2", "kwargs": {"width_mult": 0.5}}
    full = Provenance("mobilenet_v2", {}, weights={"source": "timm", "loaded": 3},
                      separation=[{"to": "depthwise", "layers": {"stem.conv": {"to": "depthwise", "setting": 2}}}])
    assert set(full.to_json()) == {"model", "kwargs", "weights", "separation"}
    assert Provenance.from_json({**full.to_json(), "format": "sepconv", "train": {}}) == full  # other keys ignored
    assert Provenance.from_json({"model": "vgg16"}) == Provenance("vgg16")
    assert Provenance("vgg16", separation=[]).separation is None  # an empty list says nothing


@pytest.mark.parametrize("kwargs, message", [
    (dict(model=""), "model='' must be a model name"),
    (dict(model=3), "model=3 must be a model name"),
    (dict(model="m", kwargs=[("a", 1)]), "must be a dict of the model's arguments"),
    (dict(model="m", kwargs={1: 2}), "kwargs has the key 1; argument names are strings"),
    (dict(model="m", kwargs={"a": {"b": 1}}), "a=.* is a dict"),  # argument values are scalars or lists
    (dict(model="m", weights=["timm"]), "weights=.* must be a dict"),
    (dict(model="m", separation={"to": "grouped"}), "separation=.* must be a list of stages"),
])
def test_bad_fields_are_type_errors_naming_the_field(kwargs, message):
    with pytest.raises(TypeError, match=message):
        Provenance(**kwargs)


def test_provenance_of_a_module_the_registry_did_not_build_is_none():
    assert provenance_of(create_model("mobilenet_v1", width_mult=0.25)) == Provenance("mobilenet_v1",
                                                                                      {"width_mult": 0.25})
    assert provenance_of(nn.Conv2d(3, 3, 1)) is None
    odd = nn.Conv2d(3, 3, 1)
    odd.provenance = {"model": "mobilenet_v1"}  # not a Provenance: not trusted as one
    assert provenance_of(odd) is None


def test_docstring_examples():
    result = doctest.testmod(provenance, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2 and result.failed == 0
