"""sepconv.models.registry: the registered names, entries, close-name suggestions, MODEL specs and the
papers' figures."""

from __future__ import annotations

import pytest
from torch import nn

import sepconv
from sepconv.models import create_model, list_models, model_entry, paper_figures, parse_spec, registry
from sepconv.models.provenance import Provenance
from sepconv.models.registry import accepted_arguments, argument_defaults, register_model

# The zoo's own models (test modules elsewhere may register small models of their own).
MODELS = [n for n in list_models() if model_entry(n).fn.__module__.startswith("sepconv.models.")]


def test_registry_lists_the_zoo():
    assert set(MODELS) >= {"mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
                           "xception", "vgg16", "mobilefacenet"}
    assert set(sepconv.list_models()) >= set(MODELS)  # other test modules may register their own


def test_unknown_model_suggests_close_names():
    with pytest.raises(ValueError, match="mobilenet_v2"):
        create_model("mobilenet_v2x")


def test_command_line_specs_give_bools_and_strings():
    from sepconv.resolve import load_model_spec

    assert parse_spec("mobilenet_v3_small:minimalistic=true,features_only=True") == (
        "mobilenet_v3_small", {"minimalistic": True, "features_only": True})
    assert parse_spec("mobilenet_v1:conv=standard,width_mult=0.50") == (
        "mobilenet_v1", {"conv": "standard", "width_mult": 0.5})
    model, _ = load_model_spec("mobilenet_v2:features_only=true,out_indices=[1,2]")
    assert model.features_only and len(model.feature_info) == 2
    with pytest.raises(ValueError, match="features_only='no' must be True or False"):
        load_model_spec("mobilenet_v2:features_only=no")


def test_entries_carry_paper_and_input_size():
    assert model_entry("xception").input_size == 299
    assert model_entry("mobilefacenet").input_size == 112
    assert all(model_entry(n).paper for n in MODELS)


def test_paper_figures_match_parsed_arguments_not_spec_text():
    half = paper_figures("mobilenet_v1", {"width_mult": 0.5})
    assert (half.params, half.macs) == (1.3e6, 149e6)
    assert paper_figures("mobilenet_v1", {"width_mult": 0.50}) is half
    assert paper_figures("mobilenet_v1", {"width_mult": 0.5, "drop_rate": 0.1}) is half  # counts unchanged
    assert paper_figures("mobilenet_v1", {"width_mult": 1}) is paper_figures("mobilenet_v1", {})
    assert paper_figures("mobilenet_v1", {"num_classes": 10}) is None  # another head: no paper figure
    assert paper_figures("mobilenet_v1", {"width_mult": 0.5, "conv": "standard"}) is None


@pytest.mark.parametrize("name, kwargs, source", [
    ("mobilenet_v1", {}, "Howard et al. 2017, MobileNets, Tables 4 and 6"),
    ("mobilenet_v1", {"conv": "standard"}, "Howard et al. 2017, MobileNets, Table 4 (Conv MobileNet)"),
    ("mobilenet_v1", {"width_mult": 0.25}, "Howard et al. 2017, MobileNets, Table 6"),
    ("mobilenet_v2", {}, "Sandler et al. 2018, MobileNetV2, Table 4"),  # Table 2 is the architecture
    ("mobilenet_v2", {"width_mult": 1.4}, "Sandler et al. 2018, MobileNetV2, Table 4"),
    ("mobilenet_v2", {"width_mult": 0.35}, "Howard et al. 2019, MobileNetV3, Table 3"),
    ("mobilenet_v3_large", {"width_mult": 0.75}, "Howard et al. 2019, MobileNetV3, Table 3"),
    ("mobilenet_v3_small", {}, "Howard et al. 2019, MobileNetV3, Table 3"),
    ("mobilefacenet", {}, "Chen et al. 2018, MobileFaceNets, Table 2"),
    ("xception", {}, "Chollet 2017, Xception, Table 3"),
    ("vgg16", {}, "Simonyan & Zisserman 2015, VGG, Table 2"),
])
def test_each_figure_cites_the_table_it_is_printed_in(name, kwargs, source):
    assert paper_figures(name, kwargs).source.startswith(source)


def test_vgg_macs_come_from_mobilenets_table_8():
    vgg = paper_figures("vgg16", {})
    assert (vgg.params, vgg.macs) == (138e6, 15300e6) and "MobileNets, Table 8" in vgg.source


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry for the test to register into; the real one is left as it was."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_register_bind_defaults_and_create(scratch_registry):
    @register_model("tiny_registry_net", paper="a test", input_size=32, width=3)
    def tiny(width: int = 1, bias: bool = True) -> nn.Module:
        return nn.Conv2d(3, width, 1, bias=bias)

    assert "tiny_registry_net" in list_models() and list_models() == sorted(list_models())
    entry = model_entry("tiny_registry_net")
    assert (entry.paper, entry.input_size, entry.defaults) == ("a test", 32, {"width": 3})
    model = create_model("tiny_registry_net", bias=False)
    assert model.out_channels == 3 and model.bias is None  # the bound default, the caller's argument
    assert model.provenance == Provenance("tiny_registry_net", {"bias": False})  # what the caller asked for
    # img_size: every classification model's input side (the resolution multiplier), its registry size by default
    assert accepted_arguments(entry) == ["width", "bias", "img_size"]
    assert argument_defaults(entry) == {"width": 3, "bias": True, "img_size": 32}
    assert create_model("tiny_registry_net", img_size=16).provenance == Provenance("tiny_registry_net",
                                                                                   {"img_size": 16})
    with pytest.raises(ValueError, match="tiny_registry_net: unknown argument.* depth=2 .*; accepted: width, bias"):
        create_model("tiny_registry_net", depth=2)
    with pytest.raises(ValueError, match="model name 'tiny_registry_net' is registered twice"):
        register_model("tiny_registry_net", paper="again")(tiny)


def test_a_kwargs_builder_accepts_the_arguments_of_the_classes_it_returns():
    entry = model_entry("mobilenet_v2")
    defaults = argument_defaults(entry)
    assert defaults["width_mult"] == 1.0 and defaults["num_classes"] == 1000 and defaults["features_only"] is False
    assert set(accepted_arguments(entry)) == set(defaults)


def test_unknown_names_list_the_known_ones_when_nothing_is_close():
    with pytest.raises(ValueError, match="model='zzz' is not a registered model; known: .*mobilenet_v1"):
        model_entry("zzz")
    with pytest.raises(ValueError, match="did you mean mobilenet_v2"):
        model_entry("mobilenet_v2x")


@pytest.mark.parametrize("spec, expected", [
    ("mobilenet_v1", ("mobilenet_v1", {})),
    (" mobilenet_v1 : width_mult = 0.5 ", ("mobilenet_v1", {"width_mult": 0.5})),
    ("m:out_indices=[1,2],num_classes=10", ("m", {"out_indices": [1, 2], "num_classes": 10})),
    ("m:a=True,b=false,c=None,d=null", ("m", {"a": True, "b": False, "c": None, "d": None})),
    ("m:conv=standard", ("m", {"conv": "standard"})),
    ("m:x=NaN,y=1e999,z=Infinity", ("m", {"x": "NaN", "y": "1e999", "z": "Infinity"})),  # kept as text
    ("m:a=1,", ("m", {"a": 1})),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["m:width", "m:1x=2", "m:=3"])
def test_parse_spec_refuses_items_that_are_not_key_value(spec):
    with pytest.raises(ValueError, match="must be key=value"):
        parse_spec(spec)


def test_tasks_partition_the_registry_and_super_resolution_states_its_input(scratch_registry):
    @register_model("tiny_upscaler", paper="a test", input_size=16, task="super_resolution", sr_input="upsampled")
    def tiny(scale: int = 2) -> nn.Module:
        return nn.Conv2d(1, 1, 3, padding=1)

    entry = model_entry("tiny_upscaler")
    assert (entry.task, entry.sr_input) == ("super_resolution", "upsampled")
    assert "tiny_upscaler" in list_models(task="super_resolution")
    assert "tiny_upscaler" not in list_models(task="classification")
    assert sorted(list_models(task="classification") + list_models(task="super_resolution")) == list_models()
    assert model_entry("mobilenet_v2").task == "classification" and model_entry("mobilenet_v2").sr_input is None
    assert set(registry.TASKS) == {"classification", "super_resolution"}
    with pytest.raises(ValueError, match="sr_input='lr' must be one of low_resolution, upsampled"):
        register_model("tiny_bad_contract", paper="-", task="super_resolution", sr_input="lr")(tiny)
