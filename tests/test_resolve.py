"""sepconv.resolve: one resolver for every command — the forms of a model reference (registry names
with arguments, package.module:callable, checkpoints, run directories), weights, errors, and the
input-shape rule the commands agree on (the mobilefacenet:img_size bug)."""

from __future__ import annotations

import json

import pytest
import torch
from support.cli import TRAIN, make_run_dir
from torch import nn

from sepconv import create_model
from sepconv.cli import main
from sepconv.formats.checkpoint import save_model
from sepconv.models.provenance import Provenance
from sepconv.resolve import Resolved, default_input_shape, load_model_spec, resolve_model

SMALL = "mobilenet_v1:width_mult=0.25,num_classes=10"


@pytest.fixture
def run_dir(tmp_path):
    return make_run_dir(tmp_path)


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


def test_the_input_shape_rule():
    """img_size, else the registry size; in_chans; other modules: 224 and the first conv's channels."""
    assert default_input_shape(create_model("mobilefacenet")) == (1, 3, 112, 112)
    assert default_input_shape(create_model("xception", in_chans=1, num_classes=0)) == (1, 1, 299, 299)
    assert default_input_shape(nn.Sequential(nn.ReLU(), nn.Conv2d(2, 3, 1)), batch=4) == (4, 2, 224, 224)


def test_registry_name_with_arguments():
    resolved = resolve_model("mobilenet_v1:width_mult=0.25,num_classes=7")
    assert resolved.description == "mobilenet_v1:width_mult=0.25,num_classes=7"
    assert resolved.input_shape == (1, 3, 224, 224) and resolved.checkpoint is None
    assert resolved.model(torch.zeros(1, 3, 64, 64)).shape == (1, 7)
    assert resolved.model.provenance == Provenance("mobilenet_v1", {"width_mult": 0.25, "num_classes": 7})


def test_user_callable_found_from_the_current_directory(tmp_path, monkeypatch):
    package = tmp_path / "mynets"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tiny.py").write_text(
        "from torch import nn\n"
        "def build():\n    return nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU())\n"
        "class Net(nn.Conv2d):\n    def __init__(self):\n        super().__init__(3, 2, 1)\n"
        "NOT_A_MODEL = 3\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # restored after the test, whatever the resolver adds
    resolved = resolve_model("mynets.tiny:build")
    assert resolved.description == "mynets.tiny:build" and isinstance(resolved.model[0], nn.Conv2d)
    assert resolved.input_shape == (1, 3, 224, 224) and not hasattr(resolved.model, "provenance")
    assert isinstance(resolve_model("mynets.tiny:Net").model, nn.Conv2d)
    with pytest.raises(ValueError, match="NOT_A_MODEL.*not a callable"):
        resolve_model("mynets.tiny:NOT_A_MODEL")
    with pytest.raises(ValueError, match="has no attribute 'missing'"):
        resolve_model("mynets.tiny:missing")
    with pytest.raises(ValueError, match="weights load into a registered model"):
        resolve_model("mynets.tiny:build", weights="w.safetensors")


def test_checkpoint(tmp_path):
    model = create_model("mobilenet_v2", width_mult=0.35, num_classes=3)
    path = save_model(model, tmp_path / "net.safetensors")
    resolved = resolve_model(str(path))
    assert resolved.description == f"mobilenet_v2 from {path}" and resolved.checkpoint == path
    assert resolved.sidecar.provenance == model.provenance == resolved.model.provenance
    for (name, a), (_, b) in zip(model.state_dict().items(), resolved.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_load_model_spec_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="use resolve_model"):
        model, what = load_model_spec("mobilenet_v1:width_mult=0.25,num_classes=7")
    assert what == "mobilenet_v1:width_mult=0.25,num_classes=7" and model.provenance.kwargs["num_classes"] == 7


@pytest.mark.parametrize("spec, message", [
    ("resnet9000", "is not one of: a registered name .*package.module:callable.*\\.safetensors.*run directory"),
    ("", "must be one of"),
    ("mobilenet_v1:depth=3", "unknown argument"),
    ("no_such_package_xyz.mod:build", "cannot import 'no_such_package_xyz.mod'"),
    ("collections:OrderedDict", "returned a OrderedDict, not an nn.Module"),
    ("missing/net.safetensors", "no such file"),
])
def test_bad_specs_are_value_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        resolve_model(spec)


def test_default_input_shape():
    assert default_input_shape(create_model("xception", num_classes=10), batch=2) == (2, 3, 299, 299)
    assert default_input_shape(create_model("mobilenet_v2", in_chans=1)) == (1, 1, 224, 224)
    assert default_input_shape(create_model("mobilefacenet", img_size=96)) == (1, 3, 96, 96)
    assert default_input_shape(nn.Sequential(nn.Linear(3, 3))) == (1, 3, 224, 224)
    assert default_input_shape(nn.Sequential(nn.Conv2d(5, 3, 1))) == (1, 5, 224, 224)


def test_img_size_is_every_classification_models_input_size():
    """The resolution multiplier (MobileNets Section 4.2) is the input: ``img_size`` sets the shape every command
    builds, is kept in the provenance (so a checkpoint rebuilds with it) and leaves the network as it is;
    MobileFaceNet's own ``img_size`` still sizes its GDC."""
    resolved = resolve_model("mobilenet_v2:img_size=96")
    assert resolved.input_shape == (1, 3, 96, 96) and resolved.model.provenance.kwargs == {"img_size": 96}
    assert default_input_shape(create_model("xception", img_size=150)) == (1, 3, 150, 150)
    assert default_input_shape(create_model("xception")) == (1, 3, 299, 299)
    assert create_model("mobilefacenet", img_size=96).gdc.kernel_size == (6, 6)  # 96 px / 16
