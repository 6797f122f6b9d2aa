"""``sepconv models``: paper figures matched on parsed arguments, per-row citations, inputs built
from the model, and a table that never cuts a model name or a count."""

from __future__ import annotations

import json
import re

import pytest

from sepconv.cli import main
from sepconv.cli import models as models_cli
from sepconv.cli.models import default_specs, zoo_rows
from sepconv.models import paper_figures


def test_paper_figures_match_parsed_arguments_not_spec_text():
    half = paper_figures("mobilenet_v1", {"width_mult": 0.5})
    assert (half.params, half.macs) == (1.3e6, 149e6)
    assert paper_figures("mobilenet_v1", {"width_mult": 0.50}) is half
    assert paper_figures("mobilenet_v1", {"width_mult": 0.5, "drop_rate": 0.1}) is half  # counts unchanged
    assert paper_figures("mobilenet_v1", {"width_mult": 1}) is paper_figures("mobilenet_v1", {})
    assert paper_figures("mobilenet_v1", {"num_classes": 10}) is None  # another head: no paper figure
    assert paper_figures("mobilenet_v1", {"width_mult": 0.5, "conv": "standard"}) is None
    rows = zoo_rows(["mobilenet_v1:width_mult=0.50", "mobilenet_v1:width_mult=0.5,num_classes=10"])
    assert rows[0]["paper_macs"] == 149e6 and rows[0]["macs_diff_pct"] == 0.33
    assert rows[1]["paper_macs"] is None and rows[1]["macs_diff_pct"] is None


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


def test_input_is_built_for_the_model(capsys):
    assert main(["models", "mobilenet_v1:in_chans=1", "mobilefacenet:img_size=96", "--json"]) == 0
    one, face = json.loads(capsys.readouterr().out)
    assert (one["in_chans"], one["input_size"]) == (1, 224)
    assert one["params"] == 4_231_976 - 2 * 3 * 3 * 32  # the stem sees one channel instead of three
    assert one["paper_params"] is None  # the paper's figures are for RGB input
    assert face["input_size"] == 96


@pytest.fixture(scope="module")
def zoo():
    return zoo_rows()


@pytest.mark.parametrize("columns", [80, 100])
def test_table_never_cuts_a_model_name_or_count(zoo, columns, monkeypatch, capsys):
    monkeypatch.setattr(models_cli, "zoo_rows", lambda specs: zoo)
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns
    assert "…" not in out
    words = out.split()
    for row in zoo:
        assert row["model"] in words
        assert f"{row['params']:,}" in words and f"{row['macs']:,}" in words
    assert [r["model"] for r in zoo] == default_specs()
    # the sources are numbered notes under the table, not a column that squeezes the others
    assert any(re.fullmatch(r"\[\d+\] Howard et al\. 2017, MobileNets, Table 4 \(Conv MobileNet\)", line)
               for line in lines)
