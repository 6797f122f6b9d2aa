"""``sepconv models``: paper figures matched on parsed arguments, the difference from the paper, inputs
built from the model, a table that never cuts a model name or a count, and a bad name's one-line error."""

from __future__ import annotations

import json
import re

import pytest

from sepconv.cli import main
from sepconv.cli import models as models_cli
from sepconv.cli.models import default_specs, zoo_rows


def test_input_is_built_for_the_model(capsys):
    assert main(["models", "mobilenet_v1:in_chans=1", "mobilefacenet:img_size=96", "--json"]) == 0
    one, face = json.loads(capsys.readouterr().out)
    assert (one["in_chans"], one["input_size"]) == (1, 224)
    assert one["params"] == 4_231_976 - 2 * 3 * 3 * 32  # the stem sees one channel instead of three
    assert one["paper_params"] is None  # the paper's figures are for RGB input
    assert face["input_size"] == 96


def test_rows_compare_with_the_figures_of_the_parsed_arguments():
    rows = zoo_rows(["mobilenet_v1:width_mult=0.50", "mobilenet_v1:width_mult=0.5,num_classes=10"])
    assert rows[0]["paper_macs"] == 149e6 and rows[0]["macs_diff_pct"] == 0.33
    assert rows[1]["paper_macs"] is None and rows[1]["macs_diff_pct"] is None


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


def test_json_shows_the_difference_from_the_paper(capsys):
    assert main(["models", "mobilenet_v3_small", "mobilenet_v1:conv=standard", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    small = rows["mobilenet_v3_small"]
    assert small["params"] == 2_542_856 and small["macs"] == 56_510_400
    assert small["paper_macs"] == 56e6 and small["macs_diff_pct"] == 0.91
    assert rows["mobilenet_v1:conv=standard"]["paper_macs"] == 4866e6


def test_bad_name_exits_2(capsys):
    assert main(["models", "mobilenet_v9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mobilenet_v9" in err and "Traceback" not in err
