"""sepconv.formats.checkpoint: a model saved as safetensors + sidecar rebuilds from the file alone;
names, overrides and files that do not fit are refused with one ValueError, touching nothing."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from sepconv.formats.checkpoint import (
    load_model,
    load_state_dict_exact,
    load_with_sidecar,
    read_config,
    save_model,
    sidecar_path,
)
from sepconv.models import create_model

KWARGS = {"width_mult": 0.25, "num_classes": 3}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("mobilenet_v1", **KWARGS).eval()
    path = save_model(model, tmp_path_factory.mktemp("ckpt") / "net.safetensors", extra={"ema": True})
    return model, path


def test_save_writes_tensors_and_sidecar_and_load_rebuilds_the_model(saved):
    model, path = saved
    assert sidecar_path(path) == path.with_suffix(".json")
    doc = json.loads(sidecar_path(path).read_text())
    assert doc == {"format": "sepconv", "model": "mobilenet_v1", "kwargs": KWARGS, "ema": True}
    assert read_config(path) == doc
    assert load_file(str(path)).keys() == model.state_dict().keys()
    loaded, side = load_with_sidecar(path)
    assert side.ema is True and loaded.provenance == model.provenance
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model(x))


def test_load_checks_the_name_and_takes_overrides(saved):
    _, path = saved
    assert load_model(path, "mobilenet_v1", drop_rate=0.5).provenance.kwargs == {**KWARGS, "drop_rate": 0.5}
    with pytest.raises(ValueError, match=r"holds a mobilenet_v1, not a mobilenet_v2") as err:
        load_model(path, "mobilenet_v2")
    assert err.value.argument == "name"
    with pytest.raises(ValueError, match=r"net.json \(the sidecar of net.safetensors\): cannot build the model it "
                                         r"describes .*width_mult=-1"):
        load_model(path, width_mult=-1)
    with pytest.raises(ValueError, match="weights do not fit the model"):
        load_model(path, num_classes=4)  # builds, but the classifier has another shape


def test_a_corrupt_tensor_file_is_a_value_error(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "net.safetensors"
    bad.write_bytes(b"\x00" * 16)
    sidecar_path(bad).write_text(sidecar_path(path).read_text())
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_model(bad)


def test_save_refuses_another_suffix_and_writes_nothing(tmp_path):
    model = create_model("mobilenet_v1", **KWARGS)
    with pytest.raises(ValueError, match=r"path='.*net.pt' must end in .safetensors"):
        save_model(model, tmp_path / "net.pt")
    assert list(tmp_path.iterdir()) == []


def test_load_state_dict_exact_lists_every_mismatch_and_touches_nothing():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {"0.weight": torch.zeros(3, 2), "0.bias": torch.zeros(4),
             **{f"extra.{i}": torch.zeros(1) for i in range(7)}}
    with pytest.raises(ValueError) as err:
        load_state_dict_exact(model, state, "w.safetensors")
    message = str(err.value)
    assert message.startswith("w.safetensors: weights do not fit the model (")
    assert "2 missing: 1.weight, 1.bias" in message
    assert "7 unexpected: extra.0, extra.1, extra.2, extra.3, extra.4 ..." in message  # the first five, then ...
    assert "1 mis-shaped: 0.bias (4,) != (3,)" in message
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    good = {k: torch.ones_like(v) for k, v in before.items()}
    load_state_dict_exact(model, good, "w.safetensors")
    assert all(torch.equal(v, torch.ones_like(v)) for v in model.state_dict().values())
