"""Import failures: one ValueError naming the tensors, the model untouched; unsafe pickles refused;
saving and rebuilding (the import-weights command: tests/cli/test_import_weights.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
from support.weights import synthetic_state

import sepconv.weights as W
from sepconv import create_model
from sepconv.models.mobilenet_v2 import MobileNetV2

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weights"


def state_of(stem: str) -> dict[str, torch.Tensor]:
    keys = json.loads((FIXTURES / f"{stem}.json").read_text())["keys"]
    return {k: torch.from_numpy(v) for k, v in synthetic_state(keys).items()}


@pytest.fixture
def timm_v2() -> dict[str, torch.Tensor]:
    return state_of("timm_mobilenetv2_035")


def fresh(width: float = 0.35) -> torch.nn.Module:
    return create_model("mobilenet_v2", **W.resolve("timm", "mobilenet_v2")[1], width_mult=width)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_missing_unexpected_and_misshaped_are_listed_by_name(timm_v2) -> None:
    state = dict(timm_v2)
    del state["blocks.3.1.bn2.running_var"]
    state["extra.weight"] = torch.zeros(3)
    state["bn1.running_mean"] = torch.zeros(5)
    model = fresh()
    before = snapshot(model)
    with pytest.raises(ValueError) as err:
        W.load(model, "timm", state)
    message = str(err.value)
    assert "1 missing: blocks.3.1.bn2.running_var" in message
    assert "1 unexpected: extra.weight" in message
    assert "1 mis-shaped: bn1.running_mean (5,) (for stem.norm.running_mean (16,))" in message
    assert_same(model, before)


def test_weights_of_another_width_name_the_first_few_and_count(timm_v2) -> None:
    model = fresh(width=1.0)
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"\d+ mis-shaped: conv_stem.weight \(16, 3, 3, 3\) .* and \d+ more.*"
                                         r"another width_mult"):
        W.load(model, "timm", timm_v2)
    assert_same(model, before)


def test_weights_of_another_model_are_refused(timm_v2) -> None:
    model = create_model("mobilenet_v3_small", **W.resolve("timm", "mobilenet_v3_small")[1])
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"\d+ missing: .*blocks.0.0.se.conv_reduce.weight.*\d+ unexpected"):
        W.load(model, "timm", timm_v2)
    assert_same(model, before)


def test_weights_of_another_source_are_recognised() -> None:
    torchvision_state = state_of("torchvision_mobilenet_v2")
    with pytest.raises(ValueError, match=r"missing: conv_stem.weight.*unexpected: features.0.0.weight.*"
                                         r"look like torchvision weights: pass source='torchvision'"):
        W.create_with_weights("mobilenet_v2", torchvision_state, "timm")


def test_source_file_kinds_and_names_are_checked(tmp_path: Path, timm_v2) -> None:
    model = fresh()
    with pytest.raises(ValueError, match="source='caffe' must be one of 'torchvision', 'timm', 'keras'"):
        W.load(model, "caffe", timm_v2)
    with pytest.raises(ValueError, match=r"source='timm' reads .pth, .pt, .bin, .safetensors files"):
        W.load(model, "timm", tmp_path / "model.weights.h5")
    with pytest.raises(ValueError, match="no such file"):
        W.load(model, "timm", tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="source='torchvision' has no weights for it; it covers mobilenet_v2"):
        W.create_with_weights("mobilenet_v1", tmp_path / "w.pth", "torchvision")
    xception = create_model("xception", num_classes=10)
    with pytest.raises(ValueError, match="source='torchvision' has no xception weights"):
        W.load(xception, "torchvision", timm_v2)


def test_a_model_built_for_another_source_is_refused(timm_v2) -> None:
    keras_like = create_model("mobilenet_v2", width_mult=0.35, bn_eps=1e-3, padding="tf_same")
    with pytest.raises(ValueError, match=r"computes differently from timm's \(bn_eps=0.001 \(needs bn_eps=1e-05\); "
                                         r"padding=tf_same \(needs padding='same'\)\)"):
        W.load(keras_like, "timm", timm_v2)


def test_an_unsafe_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pth"
    torch.save({"conv_stem.weight": torch.zeros(1), "payload": Payload()}, path)
    assert b"system" in path.read_bytes()  # the file really asks for os.system
    with pytest.raises(ValueError, match=r"refused: its pickle would import or call code \(it asks for posix.system\)"):
        W.create_with_weights("mobilenetv2_035", path, "timm")
    assert not marker.exists()


def test_unreadable_files_are_value_errors(tmp_path: Path) -> None:
    for name in ("garbage.pth", "garbage.safetensors"):
        (tmp_path / name).write_bytes(b"\x00not a checkpoint" * 10)
        with pytest.raises(ValueError, match="not a readable"):
            W.read("timm", tmp_path / name)
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(ValueError, match="holds no state dict"):
        W.read("timm", tmp_path / "meta.pth")


def test_a_failure_while_copying_restores_every_tensor(timm_v2, monkeypatch) -> None:
    model = fresh()
    before = snapshot(model)
    original = model.load_state_dict
    calls = []

    def copy_some_then_fail(state, strict=True):
        calls.append(1)
        if len(calls) == 1:  # copy one tensor in, then fail, as an interrupted load would
            model.stem.conv.weight.data.copy_(state["stem.conv.weight"])
            raise RuntimeError("interrupted")
        return original(state, strict=strict)

    monkeypatch.setattr(model, "load_state_dict", copy_some_then_fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        W.load(model, "timm", timm_v2)
    assert_same(model, before)


def test_strict_false_skips_missing_and_unexpected_only(timm_v2) -> None:
    state = {k: v for k, v in timm_v2.items() if not k.startswith("classifier.")}
    state["aux.weight"] = torch.zeros(2)
    model = fresh()
    classifier = model.classifier.weight.clone()
    report = W.load(model, "timm", state, strict=False)
    assert report.missing == ["classifier.weight", "classifier.bias"]
    assert report.unexpected == ["aux.weight"]
    assert torch.equal(model.classifier.weight, classifier)
    assert torch.equal(model.stem.conv.weight, state["conv_stem.weight"])
    state["bn1.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match="mis-shaped: bn1.weight"):
        W.load(model, "timm", state, strict=False)


def test_models_built_from_the_class_load_too(timm_v2) -> None:
    model = MobileNetV2(width_mult=0.35)  # no registry config: the family comes from the class
    assert W.load(model, "timm", timm_v2).loaded == len(timm_v2)


def test_saved_import_rebuilds_from_the_file_alone(tmp_path: Path, timm_v2) -> None:
    torch.save(timm_v2, tmp_path / "w.pth")
    model = create_model("mobilenetv2_035", weights=tmp_path / "w.pth", weights_source="timm").eval()
    path = W.save(model, tmp_path / "out" / "m.safetensors")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["model"] == "mobilenet_v2"
    assert sidecar["kwargs"] == {"bn_eps": 1e-5, "padding": "same", "width_mult": 0.35, "num_classes": 1000}
    assert sidecar["weights"]["source"] == "timm" and sidecar["weights"]["loaded"] == len(timm_v2)
    assert sidecar["weights"]["input_normalization"]["std"] == [0.229, 0.224, 0.225]
    rebuilt = create_model(None, weights=path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))
    # saving the rebuilt model again keeps where its weights came from
    assert rebuilt.provenance == model.provenance
    again = json.loads(W.save(rebuilt, tmp_path / "again.safetensors").with_suffix(".json").read_text())
    assert again["weights"] == sidecar["weights"]
    # a separated copy no longer has the imported layers: it says what it was separated from
    from sepconv.separation import separate

    new, _ = separate(rebuilt)
    assert new.provenance.weights == {"separated_from": model.provenance.weights}
    assert rebuilt.provenance == model.provenance


def test_a_foreign_file_without_weights_source_names_the_sources(tmp_path: Path, timm_v2) -> None:
    """create_model(name, weights=x.pth) with no weights_source takes x for a sepconv checkpoint;
    the error says what to pass for torchvision, timm or Keras weights instead."""
    torch.save(timm_v2, tmp_path / "w.pth")
    hint = "pass weights_source='torchvision', 'timm' or 'keras'"
    with pytest.raises(ValueError, match=r"'.*w.pth': no JSON sidecar w.json beside it, so not a sepconv "
                                         r"checkpoint; for torchvision, timm or Keras weights " + re.escape(hint)):
        create_model("mobilenet_v2", weights=tmp_path / "w.pth")
    with pytest.raises(ValueError, match=r"weights is a dict, not a sepconv checkpoint's path; .*" + re.escape(hint)):
        create_model("mobilenet_v2", weights=timm_v2)
    with pytest.raises(ValueError, match="no such file"):  # a missing file still says so
        create_model("mobilenet_v2", weights=tmp_path / "absent.safetensors")
