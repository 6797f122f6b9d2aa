"""``sepconv models`` lists MobileNets' Table 7 (the resolution multiplier) beside the paper."""

from __future__ import annotations

import json

import pytest

from sepconv.cli import main
from sepconv.cli.models import default_specs


def test_default_listing_has_table_7_rows():
    assert {f"mobilenet_v1:img_size={s}" for s in (192, 160, 128)} <= set(default_specs())


def test_models_table_7_against_the_paper(capsys):
    specs = [f"mobilenet_v1:img_size={s}" for s in (192, 160, 128)]
    assert main(["models", "mobilenet_v1", *specs, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = [(r["input_size"], r["macs"], r["paper_macs"], r["paper_params"]) for r in rows]
    assert got == [(224, 568_740_352, 569e6, 4.2e6), (192, 418_121_728, 418e6, 4.2e6),
                   (160, 290_675_200, 290e6, 4.2e6), (128, 186_400_768, 186e6, 4.2e6)]
    assert all("Table 7" in r["paper_source"] for r in rows)
    assert all(abs(r["macs_diff_pct"]) < 0.3 for r in rows)


@pytest.mark.parametrize("spec, message", [
    ("mobilenet_v1:img_size=0", "img_size=0 must be a positive integer"),
    ("mobilenet_v2:img_size=100000", "img_size=100000: one input image and its first feature map would need"),
    ("mobilenet_v3_small:project_act=relu6", "project_act='relu6' (mobilenet_v3_small has no such switch)"),
    ("mobilenet_v1:groups=2", "groups=2 makes conv='standard' layers Deep Roots' root modules"),
])
def test_models_bad_switch_is_one_line_and_exit_2(capsys, spec, message):
    assert main(["models", spec]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
