"""sepconv.resolve: one resolver for every command — the forms of a model reference, weights, run
directories, the input-shape rule, and the commands agreeing on it (the mobilefacenet:img_size bug)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from sepconv import create_model
from sepconv.cli import main
from sepconv.formats.checkpoint import save_model
from sepconv.models.provenance import Provenance
from sepconv.resolve import Resolved, default_input_shape, resolve_model

SMALL = "mobilenet_v1:width_mult=0.25,num_classes=10"
TRAIN = {"data": "digits", "classes": [str(i) for i in range(10)], "channels": 3, "mean": [0.5] * 3,
         "std": [0.25] * 3, "eval_crop": 1.0, "img_size": 32, "epoch": 1, "val_acc": 0.5}


@pytest.fixture
def run_dir(tmp_path):
    """A run directory as ``sepconv train`` leaves it: model.safetensors (+ sidecar with ``train``)."""
    run = tmp_path / "run"
    save_model(create_model("mobilenet_v1", width_mult=0.25, num_classes=10), run / "model.safetensors",
               extra={"train": TRAIN})
    return run


def test_mobilefacenet_img_size_is_the_input_size_for_every_command(capsys):
    """The bug: ``separate`` took the registry's 112 px and failed with "expected a 6x6 feature map,
    got 7x7" while ``profile`` used img_size=96; both now ask the one resolver."""
    resolved = resolve_model("mobilefacenet:img_size=96")
    assert resolved.input_shape == (1, 3, 96, 96)
    assert resolved.model.eval()(torch.zeros(resolved.input_shape)).shape == (1, 128)
    assert main(["separate", "mobilefacenet:img_size=96", "--no-time", "--batch", "1", "--layers", "stem.0.conv",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_shape"] == [1, 3, 96, 96]


def test_resolved_is_a_small_frozen_value():
    resolved = resolve_model(SMALL)
    assert isinstance(resolved, Resolved) and resolved.sidecar is None
    with pytest.raises(AttributeError):
        resolved.description = "x"
    assert resolved.shape() == (1, 3, 224, 224)
    assert resolved.shape(batch=8, input_size=32) == (8, 3, 32, 32)
    with pytest.raises(ValueError, match="input_size=0 must be a positive integer") as err:
        resolved.shape(input_size=0)
    assert err.value.argument == "input_size"  # the CLI turns it into --input-size


def test_a_module_resolves_to_itself():
    net = nn.Sequential(nn.Conv2d(1, 4, 3))
    resolved = resolve_model(net)
    assert resolved.model is net and resolved.description == "Sequential"
    assert resolved.input_shape == (1, 1, 224, 224)


def test_run_directory_and_its_ema(run_dir):
    resolved = resolve_model(run_dir)
    assert resolved.checkpoint == run_dir / "model.safetensors"
    assert resolved.sidecar.train == TRAIN and resolved.description == f"mobilenet_v1 from {run_dir}/model.safetensors"
    with pytest.raises(ValueError, match="without ema.safetensors: not a sepconv run directory trained with an EMA"):
        resolve_model(run_dir, ema=True)
    with pytest.raises(ValueError, match="ema=True picks a run directory's EMA weights"):
        resolve_model(run_dir / "model.safetensors", ema=True)
    with pytest.raises(ValueError, match="without model.safetensors"):
        resolve_model(run_dir.parent)


def test_weights_load_into_the_registry_model_the_spec_names(run_dir):
    path = run_dir / "model.safetensors"
    resolved = resolve_model(SMALL, weights=path)
    assert resolved.description == f"{SMALL} with weights '{path}'"
    reference = resolve_model(path).model
    for (name, a), (_, b) in zip(reference.state_dict().items(), resolved.model.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="holds a mobilenet_v1, not a mobilenet_v2"):
        resolve_model("mobilenet_v2", weights=path)
    with pytest.raises(ValueError, match="is a sepconv checkpoint and brings its own weights"):
        resolve_model(path, weights=path)


def test_the_commands_name_their_flags(run_dir, tmp_path, capsys):
    """Library errors name Python arguments; the command line says the flag the user typed."""
    path = str(run_dir / "model.safetensors")
    assert main(["export", path, "--weights", path, "--out", str(tmp_path / "m.onnx")]) == 2
    assert f"--weights='{path}': model='{path}' is a sepconv checkpoint" in capsys.readouterr().err
    assert main(["profile", SMALL, "--weights-source", "timm"]) == 2
    assert "--weights-source='timm' needs weights, the file to read" in capsys.readouterr().err
    assert main(["separate", SMALL, "--input-size", "0", "--no-time"]) == 2
    assert "--input-size=0 must be a positive integer" in capsys.readouterr().err


def test_the_input_shape_rule():
    """img_size, else the registry size; in_chans; other modules: 224 and the first conv's channels."""
    assert default_input_shape(create_model("mobilefacenet")) == (1, 3, 112, 112)
    assert default_input_shape(create_model("xception", in_chans=1, num_classes=0)) == (1, 1, 299, 299)
    assert default_input_shape(nn.Sequential(nn.ReLU(), nn.Conv2d(2, 3, 1)), batch=4) == (4, 2, 224, 224)


def test_provenance_is_declared_typed_and_survives_a_round_trip(tmp_path):
    model = create_model("mobilenet_v3_small", features_only=True, out_indices=(1, 2), width_mult=0.5)
    assert model.provenance == Provenance("mobilenet_v3_small",
                                          {"features_only": True, "out_indices": [1, 2], "width_mult": 0.5})
    assert type(model).provenance is None  # declared on the class, set on the instance
    rebuilt = resolve_model(save_model(model, tmp_path / "m.safetensors")).model
    assert rebuilt.provenance == model.provenance
    with pytest.raises(ValueError, match="did not build .*no provenance"):
        save_model(nn.Conv2d(3, 3, 1), tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="it is saved as JSON"):
        Provenance("mobilenet_v2", {"width_mult": object()})


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
