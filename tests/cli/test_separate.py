"""``sepconv separate`` end to end: the report, the written model, accuracy with --data (BatchNorm
re-estimated, fine-tuned), and one-line errors with exit 2."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sepconv.cli import main
from sepconv.formats.checkpoint import load_model
from sepconv.layers import SeparableConv2d
from sepconv.separation import PermutedGroupedConv2d

SPEC = "mobilenet_v1:conv=standard,width_mult=0.25,num_classes=10"
SMALL = ["--input-size", "32", "--batch", "2"]
DIGITS = "mobilenet_v1:conv=standard,width_mult=0.25,in_chans=1,num_classes=10"  # for --data digits


def test_separate_writes_a_loadable_model_and_a_json_report(tmp_path, capsys):
    out = tmp_path / "sep.safetensors"
    code = main(["separate", SPEC, *SMALL, "--depth-multiplier", "2", "--layers", "blocks.0.conv,blocks.5.conv",
                 "--no-time", "--json", "--out", str(out)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in report["layers"] if r["status"] == "separated"] == ["blocks.0.conv", "blocks.5.conv"]
    assert report["input_shape"] == [2, 3, 32, 32] and report["macs_after"] < report["macs_before"]
    model = load_model(out)
    assert isinstance(model.blocks[5].conv, SeparableConv2d) and model.blocks[5].conv.dw.depth_multiplier == 2

    # the separated checkpoint is a valid input: separate it again, to grouped
    code = main(["separate", str(out), *SMALL, "--to", "grouped", "--groups", "2", "--layers", "blocks.6.conv",
                 "--out", str(tmp_path / "again.safetensors")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "blocks.6.conv" in printed and "speed-up" in printed and "wrote" in printed
    again = load_model(tmp_path / "again.safetensors")
    assert isinstance(again.blocks[6].conv, PermutedGroupedConv2d)
    x = torch.randn(1, 3, 32, 32)
    assert again.eval()(x).shape == (1, 10)


@pytest.mark.parametrize("argv,message", [
    (["--depth-multiplier", "10"], "depth_multiplier=10 is out of range for 14 layer(s): layer 'stem.conv' "
                                   "(3x3 3->8 s2): valid range 1..8 = min(out_channels=8, kh*kw=9)"),
    (["--to", "spatial", "--rank", "30"], "rank=30 is out of range for 2 layer(s): layer 'stem.conv'"),
    (["--to", "grouped"], "groups is required for to='grouped'"),
    (["--layers", "blocks.0"], "layers: no Conv2d named 'blocks.0' (did you mean 'blocks.0.conv'?); the model's convs: stem.conv, "),
    (["--out", "model.pt"], "--out='model.pt' must end in .safetensors"),
])
def test_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(["separate", SPEC, *SMALL, "--no-time", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sepconv: error: ") and message in err and err.count("\n") == 1


def test_missing_checkpoint_and_bad_choice_exit_2(tmp_path, capsys):
    assert main(["separate", str(tmp_path / "none.safetensors")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["separate", SPEC, "--to", "pointwise"]) == 2
    assert "invalid choice: 'pointwise'" in capsys.readouterr().err


def test_reports_accuracy_before_after_and_finetuned(tmp_path, capsys):
    argv = ["separate", DIGITS, "--data", "digits", "--input-size", "16", "--batch", "32", "--layers", "blocks.12.conv",
            "--recalibrate-bn", "--finetune", "1", "--no-time", "--json", "--out", str(tmp_path / "s.safetensors")]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["accuracy"]) == {"original", "separated", "finetuned"}
    assert all(0 <= v <= 1 and not math.isnan(v) for v in report["accuracy"].values())
    assert report["input_shape"] == [32, 1, 16, 16] and report["bn_recalibrated"] == 14


def test_data_errors(capsys):
    assert main(["separate", DIGITS, "--finetune", "1", "--input-size", "16"]) == 2
    assert "--finetune needs --data SPEC" in capsys.readouterr().err
    assert main(["separate", DIGITS, "--recalibrate-bn", "--input-size", "16"]) == 2
    assert "--recalibrate-bn needs --data SPEC" in capsys.readouterr().err
    assert main(["separate", "mobilenet_v1:conv=standard,width_mult=0.25", "--data", "digits"]) == 2
    assert "the model takes 3 input channels; digits images have 1" in capsys.readouterr().err


def test_a_checkpoint_already_at_out_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "sep.safetensors"
    argv = ["separate", SPEC, *SMALL, "--no-time", "--out", str(out)]
    assert main(argv) == 0
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    capsys.readouterr()
    assert main(argv) == 2  # refused before any work, naming the file and the flag
    err = capsys.readouterr().err
    assert err == (f"sepconv: error: --out={str(out)!r} already holds a sepconv checkpoint (with sep.json); pass "
                   "--overwrite to replace it\n")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == saved
    assert main([*argv, "--depth-multiplier", "2", "--overwrite"]) == 0
    assert load_model(out).blocks[1].conv.dw.depth_multiplier == 2
    (tmp_path / "mine.json").mkdir()
    assert main(["separate", SPEC, *SMALL, "--no-time", "--out", str(tmp_path / "mine.safetensors")]) == 2
    assert "mine.json' is a directory" in capsys.readouterr().err
