"""``sepconv compare --padding valid``: 81 against 72 on the command line, and its bad input (one line, exit 2)."""

from __future__ import annotations

import json

import pytest

from sepconv.cli import main

SEED = ["compare", "--padding", "valid", "--in-channels", "1", "--out-channels", "1", "--size", "5", "--repeats", "0"]


def test_compare_valid_padding_prints_81_and_72(capsys):
    assert main(SEED) == 0
    out = capsys.readouterr().out
    assert "no padding" in out
    standard = next(line for line in out.splitlines() if "standard 3x3" in line)
    spatial = next(line for line in out.splitlines() if "spatial 3x1+1x3" in line)
    assert " 81 " in standard and " 72 " in spatial


def test_compare_valid_padding_json(capsys):
    assert main([*SEED, "--json"]) == 0
    forms = {f["form"]: f for f in json.loads(capsys.readouterr().out)["forms"]}
    assert (forms["standard"]["macs"], forms["spatially_separable"]["macs"]) == (81, 72)


@pytest.mark.parametrize("argv, message", [
    (["--padding", "valid", "--size", "2"], "--size=2 is smaller than kernel=3: padding='valid' needs size >= kernel"),
    (["--padding", "valid", "--kernel", "7", "--size", "5"], "--size=5 is smaller than kernel=7"),
    (["--padding", "full"], "argument --padding: invalid choice: 'full'"),
])
def test_compare_bad_padding_is_one_line_and_exit_2(capsys, argv, message):
    assert main(["compare", "--repeats", "0", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
