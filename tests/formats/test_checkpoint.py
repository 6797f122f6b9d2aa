"""sepconv.formats.checkpoint: a model saved as safetensors + sidecar rebuilds from the file alone;
names, overrides and files that do not fit are refused with one ValueError, touching nothing."""

from __future__ import annotations

import errno
import hashlib
import json
import os

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from sepconv._util.checks import ArgumentError
from sepconv.formats import checkpoint
from sepconv.formats.checkpoint import (
    check_checkpoint_output,
    checkpoint_state,
    load_model,
    load_state_dict_exact,
    load_with_sidecar,
    read_config,
    save_model,
    sidecar_path,
)
from sepconv.formats.sidecar import MismatchedSidecar
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
    assert doc == {"format": "sepconv", "model": "mobilenet_v1", "kwargs": KWARGS, "ema": True,
                   "tensors_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}  # the tensors it belongs to
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
    with pytest.raises(MismatchedSidecar, match=r"net.json \(the sidecar of net.safetensors\): records the tensors "
                                                r"file with SHA-256 [0-9a-f]{12}\.\.\., but net.safetensors has"):
        load_model(bad)  # the sidecar names other tensors: refused before they are read
    doc = json.loads(sidecar_path(path).read_text())
    del doc["tensors_sha256"]  # as sidecars before the hash: the tensors are read, and refused there
    sidecar_path(bad).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_model(bad)


def test_an_old_sidecar_without_the_hash_still_loads(saved, tmp_path):
    model, path = saved
    old = tmp_path / "old.safetensors"
    old.write_bytes(path.read_bytes())
    doc = json.loads(sidecar_path(path).read_text())
    del doc["tensors_sha256"]
    sidecar_path(old).write_text(json.dumps(doc))
    assert checkpoint_state(old) == "complete"
    assert load_model(old).provenance == model.provenance


def test_tensors_and_a_sidecar_that_do_not_belong_together_are_refused(saved, tmp_path):
    _, path = saved
    torch.manual_seed(1)  # other weights than the saved ones
    other = save_model(create_model("mobilenet_v1", **KWARGS), tmp_path / "other.safetensors")
    mixed = tmp_path / "mixed.safetensors"
    mixed.write_bytes(other.read_bytes())
    sidecar_path(mixed).write_text(sidecar_path(path).read_text())
    with pytest.raises(MismatchedSidecar, match="the two files do not belong together"):
        load_model(mixed)
    assert checkpoint_state(mixed) == "unfinished"  # what a write killed between its two renames leaves


def test_checkpoint_state_and_the_output_check(saved, tmp_path):
    _, path = saved
    out = tmp_path / "out.safetensors"
    assert checkpoint_state(out) == "absent" and check_checkpoint_output(out) == out
    out.write_bytes(path.read_bytes())
    assert checkpoint_state(out) == "unfinished"  # sepconv's tensors, no sidecar yet: a killed write
    check_checkpoint_output(out)  # replaced without asking
    sidecar_path(out).write_text(sidecar_path(path).read_text())
    assert checkpoint_state(out) == "complete"
    with pytest.raises(ArgumentError, match=r"out='.*out.safetensors' already holds a sepconv checkpoint \(with "
                                            r"out.json\); pass overwrite=True to replace it"):
        check_checkpoint_output(out)
    assert check_checkpoint_output(out, overwrite=True) == out
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"a user's own file")
    assert checkpoint_state(mine) == "other"
    with pytest.raises(ArgumentError, match=r"mine.safetensors already exists and is not a sepconv checkpoint"):
        check_checkpoint_output(mine)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ArgumentError, match=r"out='.*dir.json' is a directory"):
        check_checkpoint_output(tmp_path / "dir.safetensors")
    with pytest.raises(ArgumentError, match=r"out='.*m.pt' must end in .safetensors"):
        check_checkpoint_output(tmp_path / "m.pt")


def test_a_full_disk_while_saving_keeps_the_old_pair(saved, tmp_path, monkeypatch):
    model, path = saved
    out = tmp_path / "net.safetensors"
    out.write_bytes(path.read_bytes())
    sidecar_path(out).write_text(sidecar_path(path).read_text())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:  # the sidecar's, after the tensors were written: neither is renamed yet
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match=r"could not write .*net.json: No space left on device") as info:
        save_model(model, out)
    assert info.value.errno == errno.ENOSPC
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary, the old pair whole


def test_a_file_too_large_from_safetensors_is_an_os_error(tmp_path, monkeypatch):
    import safetensors.torch

    def efbig(*args, **kwargs):
        raise RuntimeError("Error while serializing: I/O error: File too large (os error 27)")

    monkeypatch.setattr(safetensors.torch, "save_file", efbig)
    monkeypatch.setattr(checkpoint, "save_file", efbig)
    with pytest.raises(OSError, match="File too large") as info:
        save_model(create_model("mobilenet_v1", **KWARGS), tmp_path / "big.safetensors")
    assert info.value.errno == errno.EFBIG and list(tmp_path.iterdir()) == []


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
