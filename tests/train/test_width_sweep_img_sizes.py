"""``sweep(..., img_sizes=...)``: the resolution axis of ``sepconv sweep`` (MobileNets Section 4.2), every width
at every input size, each trained and measured at its size."""

from __future__ import annotations

import json

import pytest
from support.train import NAME  # noqa: F401 - registers tiny_train_net

from sepconv._util.checks import ArgumentError
from sepconv.train import TrainConfig
from sepconv.train.width_sweep import parse_img_sizes, sweep, sweep_table


@pytest.mark.parametrize("text, sizes", [("224,192,160,128", [224, 192, 160, 128]), (" 32, 16 ", [32, 16]),
                                         ("16,", [16])])
def test_parse_img_sizes(text, sizes):
    assert parse_img_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "0", "-32", "32,32", "1.5", "big", "32;16"])
def test_parse_img_sizes_refuses_what_is_not_distinct_positive_integers(text):
    with pytest.raises(ArgumentError, match=r"img_sizes=.* must be distinct positive integers"):
        parse_img_sizes(text)


def config(**kwargs) -> TrainConfig:
    return TrainConfig("tiny_train_net", data="digits", epochs=1, batch_size=256, precision="fp32", compile=False,
                       channels_last=False, progress=False, **kwargs)


@pytest.mark.parametrize("kwargs, sizes, match", [
    ({"img_size": 16}, [8, 16], r"the run already fixes img_size=16"),
    ({"model_kwargs": {"img_size": 16}}, [8], r"the run already fixes img_size=16"),
    ({}, [0], r"img_sizes=\[0\] must be a non-empty list of positive integers"),
    ({}, [], r"must be a non-empty list"),
])
def test_sweep_refuses_a_fixed_or_bad_size(tmp_path, kwargs, sizes, match):
    with pytest.raises(ArgumentError, match=match):
        sweep(config(**kwargs), [1.0], tmp_path / "s", img_sizes=sizes)
    assert not (tmp_path / "s").exists()  # checked before anything trains


def test_sweep_over_widths_and_sizes(tmp_path):
    doc = sweep(config(), [0.5, 1.0], tmp_path / "s", img_sizes=[16, 8], repeats=1, warmup=0)
    got = [(p["width_mult"], p["img_size"], p["input_shape"][-1]) for p in doc["points"]]
    assert got == [(0.5, 16, 16), (0.5, 8, 8), (1.0, 16, 16), (1.0, 8, 8)]
    assert doc["img_sizes"] == [16, 8] and (tmp_path / "s" / "width-0.5-img-8" / "model.safetensors").is_file()
    by = {(p["width_mult"], p["img_size"]): p for p in doc["points"]}
    assert by[(1.0, 16)]["macs"] > 3 * by[(1.0, 8)]["macs"]  # the convs' MACs go with the map's area (rho^2)
    assert by[(1.0, 16)]["params"] == by[(1.0, 8)]["params"]  # the parameters do not
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["points"][0]["img_size"] == 16
    assert "input px" in [c.header for c in sweep_table(doc).columns]
