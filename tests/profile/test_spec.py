"""MODEL arguments: registry names with arguments, package.module:callable, checkpoints, and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.formats.checkpoint import save_model
from sepconv.models import create_model
from sepconv.models.provenance import Provenance
from sepconv.resolve import default_input_shape, load_model_spec, resolve_model


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
    ("resnet50", "is not one of: a registered name .*package.module:callable.*\\.safetensors.*run directory"),
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
