"""SeparationReport: separated and skipped layers, JSON, and the table's per-layer rows, sums and notes."""

from __future__ import annotations

import json

from rich.console import Console

from sepconv.separation.report import LayerReport, SeparationReport


def report(timed: bool = False, **kwargs) -> SeparationReport:
    times = {"time_before_ms": 2.0, "time_after_ms": 0.5} if timed else {}
    layers = [
        LayerReport("stem.conv", "3x3 3->32 s2", "skipped", "3 input channels: kept", params_before=864,
                    params_after=864, macs_before=10_838_016, macs_after=10_838_016),
        LayerReport("blocks.0.conv", "3x3 32->64", "separated", setting=2, weight_error=0.125, output_error=0.5,
                    params_before=18_432, params_after=4_672, macs_before=4_000_000, macs_after=1_000_000, **times),
    ]
    defaults = dict(to="depthwise", setting_name="depth_multiplier", layers=layers, params_before=20_000,
                    params_after=6_240, macs_before=15_000_000, macs_after=12_000_000, output_error=0.25,
                    input_shape=(8, 3, 32, 32), threads=1)
    whole = {"time_before_ms": 4.0, "time_after_ms": 3.0} if timed else {}
    return SeparationReport(**{**defaults, **kwargs, **whole})


def text(r: SeparationReport) -> str:
    console = Console(record=True, width=240)
    console.print(r.table())
    return console.export_text()


def test_separated_and_skipped_layers():
    r = report()
    assert [x.name for x in r.separated] == ["blocks.0.conv"] and [x.name for x in r.skipped] == ["stem.conv"]


def test_json_holds_every_field():
    r = report(plan={"blocks.0.conv": {"to": "depthwise", "setting": 2}}, accuracy={"original": 0.9})
    doc = json.loads(r.to_json())
    assert doc == json.loads(json.dumps(r.to_dict()))
    assert doc["layers"][1]["setting"] == 2 and doc["plan"]["blocks.0.conv"]["setting"] == 2
    assert doc["input_shape"] == [8, 3, 32, 32] and doc["accuracy"] == {"original": 0.9}


def test_table_rows_sums_and_units():
    out = text(report())
    assert "separate to=depthwise, depth_multiplier d, calibration batch (8, 3, 32, 32), 1 thread" in out
    separated = next(line for line in out.splitlines() if "blocks.0.conv" in line)
    assert "12.50%" in separated and "50.00%" in separated  # weight and output errors
    assert "18.4K->4672" in separated  # K from 10,000 up, M and G from a million and a billion
    assert "4M->1M" in separated and "4.00x" in separated
    skipped = next(line for line in out.splitlines() if "stem.conv" in line)
    assert skipped.split("│")[6].strip() == "864" and skipped.split("│")[7].strip() == "10.8M"  # no arrows
    assert "3 input channels: kept" in skipped
    sums = next(line for line in out.splitlines() if "separated layers" in line)
    assert "1 of 2 convs" in sums and "4M->1M" in sums
    whole = next(line for line in out.splitlines() if "whole model" in line)
    assert "25.00%" in whole and "15M->12M" in whole and "1.25x" in whole
    assert "speed-up" not in out and "BatchNorm" not in out  # untimed: no time columns; no notes


def test_times_notes_and_accuracy_when_given():
    out = text(report(timed=True, bn_recalibrated=3, accuracy={"original": 0.9, "separated": 0.5}))
    assert "speed-up" in out
    separated = next(line for line in out.splitlines() if "blocks.0.conv" in line)
    assert "2.000->0.500" in separated and "4.00x" in separated
    whole = next(line for line in out.splitlines() if "whole model" in line)
    assert "4.000->3.000" in whole and "1.33x" in whole
    note = " ".join(out.split())  # the note column wraps
    assert "BatchNorm re-estimated (3 layers); original acc" in note and "separated acc 50.00%" in note


def test_str_is_the_table():
    r = report(setting_name="groups", to="grouped", threads=2)
    assert "separate to=grouped, groups G" in str(r) and "2 threads" in str(r)
