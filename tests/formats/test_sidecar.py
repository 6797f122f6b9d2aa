"""The checkpoint sidecar is untrusted input with a declared schema: every bad file is one ValueError
naming the file, the key, the value and the rule — through ``create_model(weights=...)`` and through
``sepconv eval`` / ``sepconv profile`` (one line on stderr, exit status 2). Old files still load."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from support.cli import TRAIN

from sepconv import create_model
from sepconv.cli import main
from sepconv.formats.checkpoint import save_model
from sepconv.formats.sidecar import SCHEMA, read_sidecar, validate_sidecar
from sepconv.separation import separate

KWARGS = {"width_mult": 0.25, "num_classes": 10, "conv": "standard"}
GOOD = {"format": "sepconv", "model": "mobilenet_v1", "kwargs": KWARGS, "train": TRAIN}
STAGE = {"to": "grouped", "layers": {"blocks.0.conv": {"to": "grouped", "setting": 2, "permute_in": True,
                                                        "permute_out": False}}}


@pytest.fixture(scope="module")
def tensors(tmp_path_factory):
    """One checkpoint's tensors; each test writes its own sidecar beside a copy."""
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_model(create_model("mobilenet_v1", **KWARGS), path, extra={"train": TRAIN})
    return path


def write(tmp_path, tensors, sidecar: object | str) -> str:
    path = tmp_path / "model.safetensors"
    shutil.copy(tensors, path)
    text = sidecar if isinstance(sidecar, str) else json.dumps(sidecar)
    path.with_suffix(".json").write_text(text)
    return str(path)


DEEP = 100_000
BAD = {  # id: (sidecar document or JSON text, what the message must contain after the file name)
    "top-level list": ([1, 2], "top level=[1, 2] must be a JSON object with the keys format, model"),
    "top-level string": ('"sepconv"', "top level='sepconv' must be a JSON object"),
    "top-level null": ("null", "top level=None must be a JSON object"),
    "kwargs list": ({**GOOD, "kwargs": [0.25]}, "kwargs=[0.25] must be an object of the model's arguments"),
    "kwargs string": ({**GOOD, "kwargs": "width_mult=0.25"}, "kwargs='width_mult=0.25' must be an object"),
    "kwargs null": ({**GOOD, "kwargs": None}, "kwargs=None must be an object"),
    "kwargs object value": ({**GOOD, "kwargs": {**KWARGS, "conv": {"a": 1}}},
                            "kwargs['conv']={'a': 1} must be a JSON scalar or list, not an object"),
    "unknown kwarg": ({**GOOD, "kwargs": {**KWARGS, "depth": 3}},
                      "kwargs['depth']=3 is no argument of mobilenet_v1; accepted: width_mult,"),
    "kwarg the builder refuses": ({**GOOD, "kwargs": {**KWARGS, "width_mult": -1}},
                                  "cannot build the model it describes (width_mult=-1 must be a positive number)"),
    "NaN kwarg": ('{"format": "sepconv", "model": "mobilenet_v1", "kwargs": {"width_mult": NaN}}',
                  "kwargs['width_mult']=nan must be a finite number (JSON has no NaN or Infinity)"),
    "Infinity in weights": ('{"format": "sepconv", "model": "mobilenet_v1", "weights": {"loaded": Infinity}}',
                            "weights['loaded']=inf must be a finite number"),
    "-Infinity in train": (json.dumps({**GOOD, "train": {**TRAIN, "mean": [0, 0, "X"]}}).replace('"X"', "-Infinity"),
                           "train['mean'][2]=-inf must be a finite number"),
    "huge number": ('{"format": "sepconv", "model": "mobilenet_v1", "kwargs": {"width_mult": 1e999}}',
                    "kwargs['width_mult']=inf must be a finite number"),
    "deeply nested arrays": ('{"format": "sepconv", "model": "mobilenet_v1", "weights": {"a": '
                             + "[" * DEEP + "]" * DEEP + "}}", "nested too deeply to be a sepconv sidecar"),
    "nested beyond the limit": ({**GOOD, "weights": {"a": json.loads("[" * 40 + "]" * 40)}},
                                "weights['a'][0][0]"),
    "not JSON": ("{'format': 'sepconv'}", "not valid JSON"),
    "wrong format": ({**GOOD, "format": "timm"}, "format='timm' must be 'sepconv'"),
    "unregistered model": ({**GOOD, "model": "resnet9000"}, "model='resnet9000' must be a registered model name"),
    "model not a string": ({**GOOD, "model": ["mobilenet_v1"]}, "model=['mobilenet_v1'] must be a registered"),
    "no model": ({"format": "sepconv"}, "lacks the key 'model': not a sepconv checkpoint sidecar"),
    "unknown key": ({**GOOD, "sepconv_config": {}}, "key 'sepconv_config'={} is not part of a sepconv sidecar"),
    "weights a list": ({**GOOD, "weights": ["timm"]}, "weights=['timm'] must be an object"),
    "separation an object": ({**GOOD, "separation": STAGE}, "separation={'to': 'grouped', "),
    "stage without layers": ({**GOOD, "separation": [{"to": "grouped"}]},
                             "separation[0]={'to': 'grouped'} must be a stage"),
    "stage to unknown": ({**GOOD, "separation": [{**STAGE, "to": "pointwise"}]},
                         "separation[0]['to']='pointwise' must be one of depthwise, spatial, grouped"),
    "layers a list": ({**GOOD, "separation": [{"to": "grouped", "layers": ["blocks.0.conv"]}]},
                      "separation[0]['layers']=['blocks.0.conv'] must be an object"),
    "setting zero": ({**GOOD, "separation": [{"to": "depthwise", "layers": {"blocks.0.conv": {
        "to": "depthwise", "setting": 0}}}]},
        "separation[0]['layers']['blocks.0.conv']['setting']=0 must be a positive int"),
    "setting a string": ({**GOOD, "separation": [{"to": "depthwise", "layers": {"blocks.0.conv": {
        "to": "depthwise", "setting": "2"}}}]}, "['setting']='2' must be a positive int"),
    "setting true": ({**GOOD, "separation": [{"to": "depthwise", "layers": {"blocks.0.conv": {
        "to": "depthwise", "setting": True}}}]}, "['setting']=True must be a positive int"),
    "permute_in not a bool": ({**GOOD, "separation": [{"to": "grouped", "layers": {"blocks.0.conv": {
        **STAGE["layers"]["blocks.0.conv"], "permute_in": "yes"}}}]}, "['permute_in']='yes' must be true or false"),
    "entry to differs": ({**GOOD, "separation": [{"to": "grouped", "layers": {"blocks.0.conv": {
        "to": "spatial", "setting": 2}}}]}, "['to']='spatial' must be the stage's 'to'"),
    "entry unknown key": ({**GOOD, "separation": [{"to": "depthwise", "layers": {"blocks.0.conv": {
        "to": "depthwise", "setting": 2, "rank": 3}}}]}, "must be an object with 'to' and 'setting'"),
    "layer that is no conv": ({**GOOD, "separation": [{"to": "depthwise", "layers": {"blocks.0": {
        "to": "depthwise", "setting": 2}}}]}, "separation[0]: layer 'blocks.0' is not a Conv2d of MobileNetV1"),
    "setting too large to allocate": ({**GOOD, "separation": [{"to": "depthwise", "layers": {"blocks.0.conv": {
        "to": "depthwise", "setting": 10**9}}}]}, "setting=1000000000, above any valid one for this conv"),
    "train a list": ({**GOOD, "train": [1]}, "train=[1] must be an object"),
    "train img_size a float": ({**GOOD, "train": {**TRAIN, "img_size": 32.5}}, "train['img_size']=32.5 must be a positive int"),
    "train without data": ({**GOOD, "train": {k: v for k, v in TRAIN.items() if k != "data"}}, "lacks 'data'"),
    "ema a string": ({**GOOD, "ema": "yes"}, "ema='yes' must be true or false"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_create_model_names_the_file_key_value_and_rule(case, tmp_path, tensors):
    sidecar, message = BAD[case]
    path = write(tmp_path, tensors, sidecar)
    with pytest.raises(ValueError) as err:
        create_model(weights=path)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'model.json'} (the sidecar of model.safetensors): ") and message in text
    assert len(text) < 600  # a huge value is shortened, not printed whole


@pytest.mark.parametrize("case", ["top-level null", "kwargs string", "unknown kwarg", "NaN kwarg",
                                  "deeply nested arrays", "stage to unknown", "train img_size a float"])
@pytest.mark.parametrize("command", ["eval", "profile"])
def test_eval_and_profile_print_one_line_and_exit_2(case, command, tmp_path, tensors, capsys):
    sidecar, message = BAD[case]
    path = write(tmp_path, tensors, sidecar)
    assert main([command, path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sepconv: error: {tmp_path / 'model.json'} (the sidecar of model.safetensors): ")
    assert err.count("\n") == 1
    assert message in err


def test_a_sidecar_that_is_not_utf8_or_is_too_large(tmp_path, tensors):
    path = write(tmp_path, tensors, "{}")
    (tmp_path / "model.json").write_bytes(b'{"format": "\xff"}')
    with pytest.raises(ValueError, match="cannot be read as UTF-8 text"):
        create_model(weights=path)
    with open(tmp_path / "model.json", "wb") as f:
        f.truncate(17 * 2**20)
    with pytest.raises(ValueError, match="a sepconv sidecar is at most"):
        create_model(weights=path)


def test_files_of_earlier_versions_load(tmp_path, tensors):
    """The keys sepconv has always written (format, model, kwargs, weights, separation) and those of
    training (train, ema) load as before; the file round-trips through the typed sidecar."""
    model = create_model("mobilenet_v1", **KWARGS)
    separated, _ = separate(model, "grouped", groups=2, layers=["blocks.0.conv"], input_shape=(1, 3, 32, 32),
                            measure_time=False)
    save_model(separated, tmp_path / "sep.safetensors")
    old = json.loads((tmp_path / "sep.json").read_text())
    old.update(weights={"source": "timm", "loaded": 3, "file": None}, train=TRAIN, ema=True)
    (tmp_path / "sep.json").write_text(json.dumps(old, indent=1))
    loaded = create_model(weights=tmp_path / "sep.safetensors")
    assert loaded.provenance.weights == old["weights"] and loaded.provenance.separation == old["separation"]
    side = read_sidecar(tmp_path / "sep.safetensors")
    assert side.to_json() == old and side.train == TRAIN and side.ema is True
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), separated.eval()(x))


def test_the_schema_is_declared_once_and_saving_checks_it_too(tmp_path):
    assert list(SCHEMA) == ["format", "model", "kwargs", "weights", "separation", "train", "ema", "tensors_sha256"]
    assert validate_sidecar(GOOD, "m.json").provenance.kwargs == KWARGS
    with pytest.raises(ValueError, match=r"x.json: train\['img_size'\]=0 must be a positive int"):
        save_model(create_model("mobilenet_v1", **KWARGS), tmp_path / "x.safetensors",
                   extra={"train": {**TRAIN, "img_size": 0}})
    assert not (tmp_path / "x.safetensors").exists()  # sepconv never writes a sidecar it would refuse


@pytest.mark.parametrize("value", ["abc", "A" * 64, 7, None, ["0" * 64], "0" * 63 + "g"])
def test_the_tensors_hash_must_be_a_sha256(value):
    with pytest.raises(ValueError, match=r"m.json: tensors_sha256=.* must be the SHA-256 of the tensors file"):
        validate_sidecar({**GOOD, "tensors_sha256": value}, "m.json")
    assert validate_sidecar({**GOOD, "tensors_sha256": "0" * 64}, "m.json").tensors_sha256 == "0" * 64
