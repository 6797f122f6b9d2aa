"""``sepconv compare`` end to end: the forms of one layer as JSON and a table, timing with threads
restored, --sweep as a table, JSON and a chart, and one-line errors with exit 2."""

from __future__ import annotations

import json
import sys
from fractions import Fraction

import pytest
import torch
from support.cli import forms_by_name, run_cli


def test_default_example_json(capsys):
    code, out, err = run_cli(capsys, "compare", "--json", "--repeats", "0")
    assert code == 0 and err == ""
    document = json.loads(out)
    assert document["config"]["in_channels"] == 3 and document["config"]["out_channels"] == 4
    forms = forms_by_name(document)
    assert list(forms) == ["standard", "grouped", "depthwise_separable", "spatially_separable", "segmented"]
    standard, separable = forms["standard"], forms["depthwise_separable"]
    assert (standard["params"], standard["macs"], standard["flops"]) == (108, 3 * 4 * 9 * 64 * 64, 2 * 442368)
    assert (separable["params"], separable["macs"]) == (39, (27 + 12) * 64 * 64)
    assert separable["theory_exact"] == "13/36" == str(Fraction(1, 4) + Fraction(1, 9))
    assert separable["macs_ratio"] == pytest.approx(13 / 36) and separable["theory_formula"] == "1/N + 1/K²"
    # 3x1 (3 -> 4) then 1x3 (4 -> 4): (3 + 4) / (3 * 3) of the standard conv.
    assert forms["spatially_separable"]["theory_exact"] == "7/9"
    # 1x1 (3 -> 4) then 3x3 in S=2 segments (4 -> 4): 1/K^2 + N/(M S) = 1/9 + 4/6.
    assert forms["segmented"]["theory_exact"] == str(Fraction(1, 9) + Fraction(4, 6))
    grouped = forms["grouped"]  # no group count > 1 divides both 3 and 4
    assert not grouped["applicable"] and "give groups" in grouped["reason"] and grouped["params"] is None
    assert all(row["latency_ms"] is None for row in document["forms"])


def test_table_output(capsys):
    code, out, err = run_cli(capsys, "compare", "--repeats", "1", "--warmup", "0")
    assert code == 0 and err == ""
    assert "dw-separable d=1" in out and "n/a" in out and "1/N + 1/K²" in out and "torch threads" in out


def test_timing_rows_and_threads_restored(capsys):
    threads = torch.get_num_threads()
    code, out, _ = run_cli(capsys, "compare", "--json", "--repeats", "2", "--warmup", "0", "--threads", "1")
    assert code == 0 and torch.get_num_threads() == threads
    document = json.loads(out)
    assert document["threads"] == 1
    for row in document["forms"]:
        if row["applicable"]:
            assert len(row["latency_ms"]["samples_ms"]) == 2 and row["speedup"] > 0
    assert forms_by_name(document)["standard"]["speedup"] == 1.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--kernel", "0"], "kernel=0"),
        (["--groups", "3", "--in-channels", "64"], "groups=3 must divide in_channels=64"),
        (["--segments", "3"], "segments=3 must divide out_channels=4"),
        (["--threads", "0"], "threads=0"),
        (["--repeats", "-1"], "repeats=-1"),
        (["--size", "0"], "size=0"),
        (["--impl", "cudnn"], "--impl='cudnn'"),
        (["--impl", "native,caffe"], "available: native, im2col"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, "compare", "--repeats", "0", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sepconv: error: ") and message in err
    assert "Traceback" not in err


def test_impl_native_and_im2col_json_and_table(capsys):
    code, out, err = run_cli(capsys, "compare", "--in-channels", "8", "--out-channels", "16", "--size", "8",
                             "--batch", "2", "--impl", "native,im2col", "--repeats", "1", "--warmup", "0", "--json")
    assert code == 0 and err == ""
    document = json.loads(out)
    assert document["config"]["impl"] == ["native", "im2col"] and "train" not in document["config"]
    separable = forms_by_name(document)["depthwise_separable"]
    native, caffe = separable["by_impl"]
    assert native["impl"] == "native" and caffe["impl"] == "im2col"
    assert native["latency_ms"]["median_ms"] > 0 and caffe["latency_ms"]["median_ms"] > 0 and caffe["speedup"] > 0
    assert caffe["calls"]["forward"]["gemv_shaped"] == 2 * 8  # N*C depthwise GEMVs
    code, out, err = run_cli(capsys, "compare", "--impl", "native,im2col", "--train", "--repeats", "1",
                             "--warmup", "0")
    assert code == 0 and err == ""
    assert "im2col" in out and "GEMV" in out and "bwd" in out


def test_sweep_with_impls(capsys):
    code, out, err = run_cli(capsys, "compare", "--sweep", "kernel=1,3", "--size", "8", "--impl", "native,im2col",
                             "--repeats", "1", "--warmup", "0")
    assert code == 0 and err == "" and "im2col" in out


def test_sweep_plot_without_matplotlib_fails_before_measuring(capsys, monkeypatch):
    from sepconv.compare import sweep

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(sweep, "sweep_layer", lambda *a, **k: pytest.fail("measured before refusing"))
    code, out, err = run_cli(capsys, "compare", "--sweep", "kernel=1,3", "--plot", "s.png")
    assert code == 2 and "plot='s.png' needs matplotlib" in err


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
