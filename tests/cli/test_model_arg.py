"""sepconv.cli.model_arg: every command takes MODEL, --weights and --weights-source the same way,
resolves them through sepconv.resolve, and names the flag the user typed in an error."""

from __future__ import annotations

import argparse
import doctest

import pytest
from support.cli import make_run_dir

from sepconv.cli import main, model_arg
from sepconv.cli.model_arg import add_model_arguments, resolve_args

SMALL = "mobilenet_v1:width_mult=0.25,num_classes=10"


@pytest.fixture
def run_dir(tmp_path):
    return make_run_dir(tmp_path)


def test_the_commands_name_their_flags(run_dir, tmp_path, capsys):
    """Library errors name Python arguments; the command line says the flag the user typed."""
    path = str(run_dir / "model.safetensors")
    assert main(["export", path, "--weights", path, "--out", str(tmp_path / "m.onnx")]) == 2
    assert f"--weights='{path}': model='{path}' is a sepconv checkpoint" in capsys.readouterr().err
    assert main(["profile", SMALL, "--weights-source", "timm"]) == 2
    assert "--weights-source='timm' needs weights, the file to read" in capsys.readouterr().err
    assert main(["separate", SMALL, "--input-size", "0", "--no-time"]) == 2
    assert "--input-size=0 must be a positive integer" in capsys.readouterr().err


def test_export_and_profile_take_the_same_spec(tmp_path, capsys, monkeypatch):
    """``export`` and ``profile`` resolve through the same function as ``separate``."""
    from sepconv import resolve

    seen = []
    real = resolve.resolve_model

    def spy(*args, **kwargs):
        seen.append(args[0])
        raise ValueError("stop here")

    monkeypatch.setattr(resolve, "resolve_model", spy)
    for argv in (["export", "mobilefacenet:img_size=96", "--out", str(tmp_path / "m.onnx")],
                 ["bench", "mobilefacenet:img_size=96"], ["profile", "mobilefacenet:img_size=96"],
                 ["separate", "mobilefacenet:img_size=96"]):
        assert main(argv) == 2 and "stop here" in capsys.readouterr().err
    assert seen == ["mobilefacenet:img_size=96"] * 4 and real is not spy


def test_model_is_required_unless_there_is_a_default(capsys):
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args([])
    capsys.readouterr()
    args = parser.parse_args(["vgg16", "--weights", "w.pth", "--weights-source", "timm"])
    assert (args.model, args.weights, args.weights_source) == ("vgg16", "w.pth", "timm")
    with pytest.raises(SystemExit):
        parser.parse_args(["vgg16", "--weights-source", "caffe"])  # one of the importers' sources
    capsys.readouterr()
    defaulted = argparse.ArgumentParser()
    add_model_arguments(defaulted, default="mobilenet_v2")
    args = defaulted.parse_args([])
    assert (args.model, args.weights, args.weights_source) == ("mobilenet_v2", None, None)


def test_resolve_args_passes_everything_to_the_resolver(monkeypatch):
    from sepconv import resolve

    seen = []
    monkeypatch.setattr(resolve, "resolve_model", lambda model, **kwargs: seen.append((model, kwargs)) or "resolved")
    args = argparse.Namespace(model=SMALL, weights="w.safetensors", weights_source=None)
    assert resolve_args(args) == "resolved"
    assert seen == [(SMALL, {"weights": "w.safetensors", "weights_source": None})]


def test_docstring_example():
    result = doctest.testmod(model_arg)
    assert result.attempted > 0 and result.failed == 0
