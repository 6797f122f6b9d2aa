"""`sepconv compare`, the CLI front end and the timing helper, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

import sepconv
from sepconv import cli
from sepconv._util import timing
from sepconv.compare.layer import compare_layer


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def forms_by_name(document: dict) -> dict[str, dict]:
    return {row["form"]: row for row in document["forms"]}


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


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 12), n=st.integers(1, 12), k=st.integers(1, 5), size=st.integers(1, 12),
       stride=st.integers(1, 3), d=st.integers(1, 3), batch=st.integers(1, 2))
def test_measured_ratio_equals_closed_form(m, n, k, size, stride, d, batch):
    assume(not (k % 2 == 0 and stride > 1 and size == 1))  # symmetric "same" leaves no output: see below
    result = compare_layer(m, n, k, size, stride, depth_multiplier=d, batch=batch, repeats=0)
    for row in result.forms:
        if row.applicable:
            assert row.macs_ratio == row.theory, row.form
    if k % 2:
        assert result.form("standard").macs == batch * n * m * k * k * (-(-size // stride)) ** 2
    assert result.form("depthwise_separable").theory == Fraction(d, n) + Fraction(d, k * k)
    if result.config.groups:
        assert result.form("grouped").theory == Fraction(1, result.config.groups)


def test_explicit_groups_and_segments():
    result = compare_layer(32, 64, 3, 8, groups=4, segments=64, repeats=0)
    assert result.form("grouped").macs_ratio == Fraction(1, 4)
    assert result.form("segmented").macs_ratio == Fraction(1, 9) + Fraction(64, 32 * 64)
    assert not compare_layer(4, 4, 1, 8, repeats=0).form("spatially_separable").applicable


def test_even_kernel_strided_on_one_pixel_is_refused():
    with pytest.raises(ValueError, match="size=1"):
        compare_layer(kernel=2, size=1, stride=2, repeats=0)


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
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, "compare", "--repeats", "0", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sepconv: error: ") and message in err
    assert "Traceback" not in err


def test_debug_shows_the_exception(monkeypatch):
    monkeypatch.setenv("SEPCONV_DEBUG", "1")
    with pytest.raises(ValueError, match="kernel=0"):
        cli.main(["compare", "--kernel", "0"])


@pytest.mark.parametrize(("argv", "message"), [
    (["compare", "--bogus"], "sepconv: error: unrecognized arguments: --bogus (see 'sepconv --help')"),
    ([], "sepconv: error: the following arguments are required: COMMAND"),
    (["compare", "--kernel", "abc"], "sepconv compare: error: argument --kernel: invalid int value: 'abc' "
                                     "(see 'sepconv compare --help')"),
    (["frobnicate"], "sepconv: error: argument COMMAND: invalid choice: 'frobnicate'"),
    (["export", "mobilenet_v2"], "sepconv export: error: the following arguments are required: --out"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(message), err


def test_usage_errors_and_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sepconv {sepconv.__version__}"


def test_an_unimportable_command_breaks_only_itself(capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, "sepconv.cli._not_a_module", "sepconv._nor_this:alpha,beta"])
    for name in ("_not_a_module", "alpha", "beta"):
        code, out, err = run_cli(capsys, name, "--anything")
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and f"'{name}' is unavailable" in err and "ModuleNotFoundError" in err
    code, out, _ = run_cli(capsys, "compare", "--json", "--repeats", "0")
    assert code == 0 and json.loads(out)["forms"][0]["params"] == 108


def test_console_script_and_python_m():
    """Real processes: the installed ``sepconv`` script (or ``python -m sepconv``) and an error."""
    script = Path(sys.executable).with_name("sepconv")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sepconv"]
    done = subprocess.run([*command, "compare", "--json", "--repeats", "1"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    forms = forms_by_name(json.loads(done.stdout))
    assert forms["standard"]["params"] == 108 and forms["depthwise_separable"]["params"] == 39
    failed = subprocess.run([sys.executable, "-m", "sepconv", "compare", "--kernel", "0"], capture_output=True,
                            text=True, timeout=300)
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr == "sepconv: error: --kernel=0 must be a positive integer\n"  # the flag, not the argument


def test_measure_median_and_p90(monkeypatch):
    calls = []
    clock = iter(t / 1e3 for pair in ((0, d) for d in (5, 1, 4, 2, 3, 10, 7, 6, 9, 8)) for t in pair)
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    result = timing.measure(lambda: calls.append(1), repeats=10, warmup=2)
    assert len(calls) == 12
    assert result.samples_ms == (5, 1, 4, 2, 3, 10, 7, 6, 9, 8)
    assert result.median_ms == 5.5 and result.p90_ms == 9
    assert result.to_dict()["samples_ms"] == list(result.samples_ms)


@pytest.mark.parametrize("kwargs, message", [(dict(repeats=0), "repeats=0"), (dict(warmup=-1), "warmup=-1"),
                                             (dict(fn=3), "fn=3")])
def test_measure_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timing.measure(**{"fn": lambda: None, **kwargs})


def test_time_module_restores_training_flags():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model.train()
    model[1].eval()
    result = timing.time_module(model, torch.zeros(1, 3, 8, 8), repeats=3, warmup=1)
    assert len(result.samples_ms) == 3 and result.median_ms <= result.p90_ms
    assert model.training and model[0].training and not model[1].training
