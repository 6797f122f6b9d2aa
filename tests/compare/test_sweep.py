"""sweep_layer: the forms of one layer over the values of one parameter, and how --sweep is parsed."""

from __future__ import annotations

import pytest

from sepconv.compare.layer import compare_layer
from sepconv.compare.sweep import parse_sweep, save_sweep_plot, sweep_layer, sweep_table


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


@pytest.mark.parametrize("parameter, values, message", [
    ("width", [1], "parameter='width' must be one of segments"),
    ("kernel", [], "values for kernel must not be empty"),
])
def test_sweep_layer_refuses_bad_arguments(parameter, values, message):
    with pytest.raises(ValueError, match=message):
        sweep_layer(parameter, values, repeats=0)


def test_table_has_a_row_per_value_and_a_dash_where_a_form_does_not_apply():
    from rich.console import Console

    doc = sweep_layer("kernel", [1, 3], in_channels=4, out_channels=4, size=8, repeats=0)
    console = Console(record=True, width=240)
    console.print(sweep_table(doc))
    text = console.export_text()
    assert f"sweep of kernel: MACs and median time per form ({doc['threads']} threads)" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 3}
    assert set(rows) >= {"1", "3"}
    assert "—" in rows["1"]  # no 1x1 spatially separable conv: that form does not apply at kernel 1
    assert f"{doc['points'][1]['forms'][0]['macs'] / 1e6:,.3f}" in rows["3"]  # the standard conv's MMACs


def test_plot_is_a_png_and_only_a_png(tmp_path):
    doc = sweep_layer("segments", [1, 2], in_channels=4, out_channels=4, size=8, repeats=1, warmup=0)
    assert save_sweep_plot(doc, tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"plot='.*s\.svg' must end in \.png"):
        save_sweep_plot(doc, tmp_path / "s.svg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.png"]


def test_parse_sweep_keeps_the_first_of_repeated_values_and_allows_spaces():
    assert parse_sweep(" stride = 2 , 1 , 2 ", {}) == ("stride", [2, 1])
