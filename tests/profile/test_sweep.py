"""``sepconv compare --sweep``: cost and time over one parameter, as a table, JSON and a chart."""

from __future__ import annotations

import json

import pytest

from sepconv import cli
from sepconv.compare.layer import compare_layer
from sepconv.compare.sweep import parse_sweep, sweep_layer


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("text, config, expected", [
    ("segments", {"out_channels": 12}, ("segments", [1, 2, 3, 4, 6, 12])),
    ("kernel=7,3,3,5", {}, ("kernel", [7, 3, 5])),
    ("depth-multiplier", {}, ("depth_multiplier", [1, 2, 4, 8])),
    ("groups", {"in_channels": 8, "out_channels": 12}, ("groups", [1, 2, 4])),
])
def test_parse_sweep(text, config, expected):
    assert parse_sweep(text, config) == expected


@pytest.mark.parametrize("text, message", [
    ("width", "the parameter must be one of segments"),
    ("kernel=3,0", "positive integers"),
    ("kernel=", "positive integers"),
])
def test_bad_sweeps(text, message):
    with pytest.raises(ValueError, match=message):
        parse_sweep(text, {})


def test_xception_spectrum_macs_follow_compare():
    doc = sweep_layer("segments", [1, 2, 4, 8], in_channels=8, out_channels=8, size=8, repeats=0)
    assert doc["sweep"] == {"parameter": "segments", "values": [1, 2, 4, 8]}
    segmented = [next(f for f in p["forms"] if f["form"] == "segmented")["macs"] for p in doc["points"]]
    assert segmented == [compare_layer(8, 8, size=8, segments=s, repeats=0).form("segmented").macs
                         for s in (1, 2, 4, 8)]
    # 1x1 (8 -> 8) then 3x3 in S groups: 8*8*64 + 9*8*(8/S)*64 MACs, falling with S.
    assert segmented == [64 * (64 + 72 * 8 // s) for s in (1, 2, 4, 8)]
    standard = {next(f for f in p["forms"] if f["form"] == "standard")["macs"] for p in doc["points"]}
    assert standard == {9 * 8 * 8 * 64}


def test_channels_sets_both(capsys):
    doc = sweep_layer("channels", [4, 8], repeats=0)
    assert [(p["config"]["in_channels"], p["config"]["out_channels"]) for p in doc["points"]] == [(4, 4), (8, 8)]


def test_cli_table_json_and_plot(capsys, tmp_path):
    chart = tmp_path / "sweep.png"
    code, out, err = run_cli(capsys, "compare", "--in-channels", "8", "--out-channels", "8", "--size", "8",
                             "--sweep", "kernel=1,3", "--repeats", "2", "--warmup", "0", "--plot", str(chart))
    assert code == 0, err
    assert "sweep of kernel" in out and "dw-separable" in out and f"wrote {chart}" in err
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run_cli(capsys, "compare", "--sweep", "depth-multiplier=1,2", "--repeats", "1", "--json")
    doc = json.loads(out)
    assert code == 0 and [p["value"] for p in doc["points"]] == [1, 2]
    assert all(f["latency_ms"] is not None for p in doc["points"] for f in p["forms"] if f["applicable"])


@pytest.mark.parametrize("argv, message", [
    (["--plot", "x.png"], "draws a sweep: give --sweep PARAM as well"),
    (["--sweep", "segments", "--plot", "x.svg"], "must end in .png"),
    (["--sweep", "colour"], "the parameter must be one of"),
    (["--sweep", "groups=3", "--in-channels", "4", "--out-channels", "4"], "groups=3 must divide"),
])
def test_cli_errors(capsys, argv, message):
    code, out, err = run_cli(capsys, "compare", "--repeats", "0", *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err, err


def test_compare_without_sweep_is_unchanged(capsys):
    code, out, _ = run_cli(capsys, "compare", "--json", "--repeats", "0")
    assert code == 0 and "forms" in json.loads(out) and "sweep" not in json.loads(out)
