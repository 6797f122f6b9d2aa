"""The training loop and its checkpoints: exact resume, EMA, optimizers, AMP, state files."""

from __future__ import annotations

import dataclasses
import json

import pytest
import support.train  # noqa: F401 - registers tiny_train_net
import torch
from safetensors.torch import load_file

from sepconv.formats.checkpoint import load_model
from sepconv.train import TrainConfig, Trainer, loop, speed
from sepconv.train.state import read_state

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def steady_step_times(monkeypatch):
    """Timed steps that always say bf16 is twice as fast, so that two runs compared bit for bit
    choose alike (on this CPU's bf16 capability) whatever the machine's load does to real timings."""
    monkeypatch.setattr(speed, "measure_step_seconds",
                        lambda model, shape, precision, channels_last, device, **kw: 0.005 if precision == "bf16"
                        else 0.01)
    monkeypatch.setattr(loop, "_DECIDED", {})  # no choice carried over from another test


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


def test_bf16_autocast_and_channels_last_train(machine_caps):  # bf16 runs (emulated) on any CPU
    trainer = Trainer(config(None, epochs=1, precision="bf16", channels_last=True, ema=0.9, optimizer="adamw"))
    summary = trainer.fit()
    assert summary["epochs_done"] == 1 and summary["out"] is None and summary["train_loss"] < 10
    assert trainer.speed.channels_last and trainer.aug.channels_last
    assert all(p.dtype == torch.float32 for p in trainer.ema.module.parameters())  # EMA of the fp32 weights
    assert all(b.dtype in (torch.float32, torch.long) for b in trainer.model.buffers())  # BN statistics in fp32
    # the EMA's evaluation under the run's autocast agrees with an fp32 one to within an image or two
    fp32 = _evaluate_fp32(trainer, trainer.ema.module)
    assert abs(summary["ema_val_acc"] - fp32["acc"]) <= 5 / 359 and fp32["loss"] == pytest.approx(
        summary["ema_val_loss"], rel=0.05)


def _evaluate_fp32(trainer, model):
    speed_before = trainer.speed
    trainer.speed = dataclasses.replace(trainer.speed, precision="fp32")
    try:
        return trainer.evaluate(model)
    finally:
        trainer.speed = speed_before


# ---- speed settings: decided from capabilities and run length, recorded, reused on resume ----------------

def fake_caps(bf16=True, compile=True):
    return speed.Capabilities(device="cpu", bf16=bf16, fp16=False, compile=compile,
                              bf16_check=f"torch.ops.mkldnn._is_mkldnn_bf16_supported() is {bf16}",
                              compile_check="" if compile else "test: no torch.compile here")


@pytest.fixture
def machine_caps(monkeypatch):
    """Set the capabilities the trainer probes: ``machine_caps(bf16=..., compile=...)``."""
    def set_caps(**kw):
        monkeypatch.setattr(speed, "probe_capabilities", lambda device: fake_caps(**kw))
    set_caps()
    return set_caps


def test_the_choice_follows_capabilities_and_run_length(machine_caps, monkeypatch):
    monkeypatch.setattr(speed, "measure_step_seconds",  # a 1 s step in fp32, 0.5 s in bf16
                        lambda model, shape, precision, *a, **k: 0.5 if precision == "bf16" else 1.0)
    machine_caps(bf16=False)
    short = Trainer(config(None, epochs=1))  # 11 steps x 15% x 1 s << the estimated compile time
    assert (short.speed.precision, short.speed.channels_last, short.speed.compile) == ("fp32", True, False)
    assert "11 steps x 15% of a 1000 ms step" in short.speed.compile_reason
    machine_caps(bf16=True)
    long = Trainer(config(None, epochs=100))  # 1100 steps x 15% x 0.5 s: past the break-even
    assert (long.speed.precision, long.speed.compile) == ("bf16", True)
    assert "a timed step is faster in bf16 (500 ms against 1000 ms in fp32)" in long.speed.precision_reason
    assert isinstance(long.net, torch._dynamo.eval_frame.OptimizedModule)  # compiled lazily, on the first step
    machine_caps(bf16=True, compile=False)
    assert not Trainer(config(None, epochs=100)).speed.compile
    assert [line.split(" (")[0] for line in short.speed_lines()] == [
        "precision fp32", "channels_last on", "torch.compile off"]


def test_bad_speed_settings_are_refused_before_anything_is_written(tmp_path, machine_caps):
    machine_caps(bf16=False, compile=False)
    with pytest.raises(ValueError, match=r"^precision='bf16' cannot run on this cpu \(torch.ops.mkldnn."
                                         r"_is_mkldnn_bf16_supported\(\) is False\); available: fp32$"):
        Trainer(config(tmp_path, precision="bf16"))
    with pytest.raises(ValueError, match=r"^compile=True but torch.compile is unavailable here \(test: no "
                                         r"torch.compile here\); train without it$"):
        Trainer(config(tmp_path, compile=True))
    for bad, message in [(dict(precision="fp8"), "precision='fp8' must be one of auto, fp32, bf16, fp16"),
                         (dict(compile="yes"), "compile='yes' must be True, False or None"),
                         (dict(amp=True, precision="fp32"), "amp=True .* contradicts precision='fp32'")]:
        with pytest.raises(ValueError, match=message):
            config(tmp_path, **bad)
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == []


def test_the_choice_is_recorded_and_resume_reuses_it_though_capabilities_changed(tmp_path, machine_caps):
    whole = Trainer(config(tmp_path / "whole", ema=0.9))
    assert whole.speed.precision == "bf16"
    whole.fit()
    Trainer(config(tmp_path / "split", ema=0.9)).fit(until_epoch=1)
    state = read_state(tmp_path / "split")
    assert state["speed"] == whole.speed.to_dict()
    assert state["speed"]["precision"] == "bf16" and state["speed"]["compile"] is False
    machine_caps(bf16=False, compile=False)  # the machine changed between the two runs
    again = Trainer(config(tmp_path / "split", ema=0.9, resume=True))
    assert again.speed == whole.speed
    assert all("kept from the run's start" in line for line in again.speed_lines())
    again.fit()
    for name in ("model.safetensors", "ema.safetensors"):  # exact resume holds in bf16 too
        assert tensors_equal(tmp_path / "whole" / name, tmp_path / "split" / name), name
    rows = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert [(r["precision"], r["channels_last"], r["compile"]) for r in rows] == [("bf16", True, False)] * 2
    assert read_state(tmp_path / "split")["speed"] == whole.speed.to_dict()
    # asking for other settings on resume is a changed option, like any other
    with pytest.raises(ValueError, match=r"changed: precision='auto' \(now 'fp32'\)"):
        Trainer(config(tmp_path / "split", ema=0.9, resume=True, precision="fp32"))


def test_a_run_of_an_older_sepconv_resumes_with_its_own_settings(tmp_path, machine_caps):
    Trainer(config(tmp_path, precision="fp32", channels_last=False, epochs=2)).fit(until_epoch=1)
    path = tmp_path / "state.json"
    doc = json.loads(path.read_text())
    del doc["speed"]
    for key in ("precision", "compile"):
        del doc["config"][key]
    doc["config"]["channels_last"] = False
    path.write_text(json.dumps(doc))
    again = Trainer(config(tmp_path, epochs=2, resume=True))  # today's defaults: auto, ignored for an old run
    assert (again.speed.precision, again.speed.channels_last, again.speed.compile) == ("fp32", False, False)
    again.fit()
    assert read_state(tmp_path)["speed"]["precision"] == "fp32"


def test_amp_still_works_and_warns(machine_caps):
    with pytest.warns(DeprecationWarning, match="amp=True. is deprecated"):
        cfg = config(None, epochs=1, amp=True)
    trainer = Trainer(cfg)
    assert trainer.speed.precision == "bf16" and "amp=True (deprecated)" in trainer.speed.precision_reason
    assert trainer.fit()["epochs_done"] == 1


def test_every_rank_trains_with_rank_0s_choice(monkeypatch, machine_caps):
    # rank 1 of 2 neither probes nor measures: it takes what rank 0 broadcasts
    chosen = speed.SpeedChoice("bf16", False, False, "rank 0's", "rank 0's", "rank 0's")
    monkeypatch.setattr(loop, "wrap", lambda model, info: model)  # no process group in this test
    monkeypatch.setattr(loop, "broadcast_object", lambda obj, info: chosen.to_dict() if not info.is_main else obj)
    monkeypatch.setattr(speed, "probe_capabilities", lambda device: pytest.fail("rank 1 probed"))
    monkeypatch.setattr(speed, "measure_step_seconds", lambda *a, **k: pytest.fail("rank 1 measured"))
    rank1 = loop.DistInfo(rank=1, world_size=2)
    trainer = Trainer(config(None, epochs=1), info=rank1)
    assert trainer.speed == chosen and not trainer.aug.channels_last
    refused = {"error": "precision='bf16' cannot run on this cpu (...); available: fp32", "argument": "precision"}
    monkeypatch.setattr(loop, "broadcast_object", lambda obj, info: refused)
    with pytest.raises(ValueError, match="precision='bf16' cannot run") as err:
        Trainer(config(None, epochs=1), info=rank1)
    assert err.value.argument == "precision"  # the command line names --precision on every rank


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


def test_a_model_whose_bf16_gradients_are_wrong_here_trains_in_fp32(tmp_path, machine_caps):
    # mobilenet_v1 at 16 px: its stride-2 block 11 sees a 1x1 input (speed.bf16_hazard)
    kw = dict(model="mobilenet_v1", model_kwargs={"width_mult": 0.25}, epochs=1)
    auto = Trainer(config(None, **kw))
    assert auto.speed.precision == "fp32" and "blocks.11" in auto.speed.precision_reason
    with pytest.raises(ValueError, match="precision='bf16' cannot train this model at this input size on this CPU"):
        Trainer(config(tmp_path, precision="bf16", **kw))
    assert Trainer(config(None, img_size=32, **kw)).speed.precision == "bf16"  # 2x2 there: timed, and faster
