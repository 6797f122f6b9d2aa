"""The training loop and its checkpoints: exact resume, EMA, optimizers, AMP, state files."""

from __future__ import annotations

import json

import pytest
import support.train  # noqa: F401 - registers tiny_train_net
import torch
from safetensors.torch import load_file

from sepconv.formats.checkpoint import load_model
from sepconv.train import TrainConfig, Trainer
from sepconv.train.state import read_state

pytestmark = pytest.mark.usefixtures("one_thread")


def config(out, **kw):
    base = dict(model="tiny_train_net", data="digits", img_size=16, epochs=2, batch_size=128, progress=False,
                out=str(out) if out else None)
    return TrainConfig(**{**base, **kw})


def tensors_equal(a_file, b_file):
    a, b = load_file(str(a_file)), load_file(str(b_file))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_an_epoch_is_exact(tmp_path):
    kw = dict(ema=0.9, model_kwargs={"drop_rate": 0.2})  # dropout: the global RNG must be restored too
    whole = Trainer(config(tmp_path / "whole", **kw)).fit()
    Trainer(config(tmp_path / "split", **kw)).fit(until_epoch=1)
    assert read_state(tmp_path / "split")["epoch"] == 1
    again = Trainer(config(tmp_path / "split", resume=True, **kw)).fit()
    for name in ("model.safetensors", "ema.safetensors"):
        assert tensors_equal(tmp_path / "whole" / name, tmp_path / "split" / name), name
    state = read_state(tmp_path / "split")
    assert tensors_equal(tmp_path / "whole" / state["files"]["optim"], tmp_path / "split" / state["files"]["optim"])
    assert again["val_acc"] == whole["val_acc"] and again["epochs_done"] == 2
    rows = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2] and rows[-1]["val_acc"] == whole["val_acc"]
    assert 0 < whole["val_acc"] <= 1 and whole["val_images"] == 359


def test_resume_mid_epoch_is_exact(tmp_path, monkeypatch):
    class Killed(Exception):
        pass

    whole = Trainer(config(tmp_path / "whole", optimizer="adamw", save_every=4)).fit()
    save = Trainer.save

    def save_then_die(self, epoch):  # a kill right after the mid-epoch checkpoint of step 8
        save(self, epoch)
        if epoch == 1 and self.step_in_epoch == 8:
            raise Killed

    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(Killed):
        Trainer(config(tmp_path / "split", optimizer="adamw", save_every=4)).fit()
    monkeypatch.setattr(Trainer, "save", save)
    state = read_state(tmp_path / "split")
    assert (state["epoch"], state["step_in_epoch"]) == (1, 8)
    again = Trainer(config(tmp_path / "split", optimizer="adamw", save_every=4, resume=True)).fit()
    assert tensors_equal(tmp_path / "whole" / "model.safetensors", tmp_path / "split" / "model.safetensors")
    assert again["train_acc"] == pytest.approx(whole["train_acc"])  # the resumed epoch's partial sums kept


def test_resume_removes_what_a_killed_write_left(tmp_path):
    # A SIGKILL can land inside any write: ours (".NAME.XXXX.tmp", ".NAME.PID.link") or safetensors'
    # own temporary file (".tmpXXXXXX", which its save_file writes beside the target before renaming).
    Trainer(config(tmp_path)).fit(until_epoch=1)
    leftovers = [".model-00000001.safetensors.ab12cd.tmp", ".model.safetensors.4242.link", ".tmpV3D4WJ"]
    for name in leftovers:
        (tmp_path / name).write_bytes(b"half-written")
    (tmp_path / "notes.tmp").write_text("a user's file")  # not ours: kept
    Trainer(config(tmp_path, resume=True)).fit()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert (tmp_path / "notes.tmp").read_text() == "a user's file"


def test_checkpoint_files_and_model_sidecar(tmp_path):
    Trainer(config(tmp_path, epochs=1)).fit()
    names = sorted(p.name for p in tmp_path.iterdir())
    state = read_state(tmp_path)
    steps = state["step"]
    assert names == sorted(["curve.png", "metrics.csv", "metrics.json", "model.json", "model.safetensors",
                            f"model-{steps:08d}.json", f"model-{steps:08d}.safetensors",
                            f"optim-{steps:08d}.safetensors", "state.json"])
    assert steps == 1438 // 128 and state["epoch"] == 1 and state["step_in_epoch"] == 0
    assert {"torch", "numpy", "python"} <= set(state["rng"]) and state["config"]["model"] == "tiny_train_net"
    model = load_model(tmp_path / "model.safetensors")
    assert model.classifier.out_features == 10 and model.stem.conv.in_channels == 1
    sidecar = json.loads((tmp_path / "model.json").read_text())
    assert sidecar["train"]["img_size"] == 16 and sidecar["train"]["data"] == "digits"
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "train_images_per_s"} <= set(header)
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_a_second_epoch_replaces_the_step_files(tmp_path):
    Trainer(config(tmp_path, epochs=2)).fit()
    assert len(list(tmp_path.glob("model-*.safetensors"))) == 1 and len(list(tmp_path.glob("optim-*"))) == 1
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_existing_run_is_not_overwritten_and_resume_checks_the_model(tmp_path):
    Trainer(config(tmp_path, epochs=1)).fit()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match="already holds a training run; pass resume=True"):
        Trainer(config(tmp_path, epochs=1))
    with pytest.raises(ValueError, match=r"state.json: holds a run of tiny_train_net \{\}, not mobilenet_v2"):
        Trainer(config(tmp_path, model="mobilenet_v2", resume=True))
    with pytest.raises(ValueError, match=r"must repeat the run's options; changed: batch_size=128 \(now 64\)"):
        Trainer(config(tmp_path, epochs=1, batch_size=64, resume=True))
    with pytest.raises(ValueError, match=r"changed: .*ema=None \(now 0.9\)"):
        Trainer(config(tmp_path, epochs=1, resume=True, ema=0.9))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_resume_needs_a_state(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint to resume from"):
        Trainer(config(tmp_path / "nothing", resume=True))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="state.json: not a readable checkpoint state"):
        Trainer(config(tmp_path / "bad", resume=True))


def test_bf16_autocast_and_channels_last_train():
    summary = Trainer(config(None, epochs=1, amp=True, channels_last=True, optimizer="adamw")).fit()
    assert summary["epochs_done"] == 1 and summary["out"] is None and summary["train_loss"] < 10


@pytest.mark.parametrize("bad, message", [
    (dict(epochs=0), "epochs=0 must be a positive integer"),
    (dict(optimizer="rmsprop"), "optimizer='rmsprop' must be one of sgd, adamw"),
    (dict(lr=-1.0), "lr=-1.0 must be a positive number"),
    (dict(ema=1.5), "ema=1.5 must be in"),
    (dict(crop_scale=(0.5, 0.2)), "crop_scale"),
    (dict(batch_size=4096), "batch_size=4096 is larger than the 1438 training images"),
    (dict(model_kwargs={"num_classes": 3}), "num_classes=3 does not fit digits, which has 10"),
    (dict(model_kwargs={"depth": 3}), "unknown argument"),
])
def test_bad_config(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        Trainer(config(tmp_path, **bad))
    assert not (tmp_path / "state.json").exists()
