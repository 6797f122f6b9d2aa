"""Exact parameter and MAC counts: the reference implementations' figures and the papers' tables.

Reference counts are torchvision's and timm's (params) and fvcore-style Conv2d + Linear MACs of
the same implementations; the papers' figures are checked to the stated tolerance.
"""

from __future__ import annotations

import pytest

from sepconv.cost import analyze
from sepconv.models import create_model


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("mobilenet_v1", {"width_mult": 1.0}, 4_231_976),
        ("mobilenet_v1", {"width_mult": 0.75}, 2_585_560),
        ("mobilenet_v1", {"width_mult": 0.5}, 1_331_592),
        ("mobilenet_v1", {"width_mult": 0.25}, 470_072),
        ("mobilenet_v2", {"width_mult": 1.0}, 3_504_872),
        ("mobilenet_v2", {"width_mult": 1.4}, 6_108_776),
        ("mobilenet_v2", {"width_mult": 0.35}, 1_677_128),
        ("mobilenet_v3_large", {}, 5_483_032),
        ("mobilenet_v3_small", {}, 2_542_856),
        ("xception", {}, 22_855_952),
        ("vgg16", {}, 138_357_544),
    ],
)
def test_parameter_counts_equal_reference_implementations(name, kwargs, expected):
    assert params(create_model(name, **kwargs)) == expected


@pytest.mark.parametrize(
    "name, kwargs, size, expected",
    [
        ("mobilenet_v1", {}, 224, 568_740_352),
        ("mobilenet_v1", {}, 192, 418_121_728),
        ("mobilenet_v1", {}, 160, 290_675_200),
        ("mobilenet_v1", {}, 128, 186_400_768),
        ("mobilenet_v2", {}, 224, 300_774_272),
        ("mobilenet_v2", {"width_mult": 1.4}, 224, 582_195_824),
        ("mobilenet_v2", {"width_mult": 0.35}, 224, 59_285_808),
        ("mobilenet_v3_large", {}, 224, 216_589_760),
        ("mobilenet_v3_large", {"width_mult": 0.75}, 224, 154_560_624),
        ("mobilenet_v3_small", {}, 224, 56_510_400),
        ("mobilenet_v3_small", {"width_mult": 0.75}, 224, 43_399_344),
        ("xception", {}, 299, 8_357_403_496),
    ],
)
def test_macs_equal_reference_implementations(name, kwargs, size, expected):
    report = analyze(create_model(name, **kwargs), (1, 3, size, size))
    assert report.macs == expected


def test_conv_mobilenet_matches_paper_table_4():
    """Table 4: Conv MobileNet 4866M mult-adds, 29.3M params (within 0.1%)."""
    model = create_model("mobilenet_v1", conv="standard")
    macs = analyze(model, (1, 3, 224, 224)).macs
    assert abs(macs - 4866e6) / 4866e6 < 1e-3
    assert abs(params(model) - 29.3e6) / 29.3e6 < 1e-3


@pytest.mark.parametrize("alpha, paper", [(0.75, 325e6), (0.5, 149e6), (0.25, 41e6)])
def test_mobilenet_v1_width_rows_match_paper_table_6(alpha, paper):
    macs = analyze(create_model("mobilenet_v1", width_mult=alpha), (1, 3, 224, 224)).macs
    assert abs(macs - paper) / paper < 0.02


def test_mobilefacenet_against_paper():
    """Paper: 0.99M parameters, 221M MACs at 112 px (the difference is in the docstring)."""
    model = create_model("mobilefacenet")
    assert params(model) == 995_617
    assert analyze(model, (1, 3, 112, 112)).macs == 220_965_376


def test_v3_rounding_conventions_agree_at_width_one():
    a = create_model("mobilenet_v3_large", rounding="timm")
    b = create_model("mobilenet_v3_large", rounding="torchvision")
    assert params(a) == params(b)
    assert params(create_model("mobilenet_v3_large", width_mult=0.75, rounding="torchvision")) == 3_377_576


def test_models_command_json_shows_paper_difference(capsys):
    import json

    from sepconv.cli import main

    assert main(["models", "mobilenet_v3_small", "mobilenet_v1:conv=standard", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    small = rows["mobilenet_v3_small"]
    assert small["params"] == 2_542_856 and small["macs"] == 56_510_400
    assert small["paper_macs"] == 56e6 and small["macs_diff_pct"] == 0.91
    assert rows["mobilenet_v1:conv=standard"]["paper_macs"] == 4866e6


def test_models_command_bad_name_exits_2(capsys):
    from sepconv.cli import main

    assert main(["models", "mobilenet_v9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mobilenet_v9" in err and "Traceback" not in err
