"""sepconv.train.state: optimizer state as tensors and JSON, RNG state, the checkpoint files of a run."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from sepconv.models import create_model
from sepconv.train.optim import build_optimizer
from sepconv.train.state import (
    STATE_FILE,
    join_optimizer_state,
    load_checkpoint,
    read_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    split_optimizer_state,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_optimizer_state_round_trips_through_tensors_and_json():
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, "adamw", lr=0.1, weight_decay=0.01)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = split_optimizer_state(opt)
    assert set(tensors) == {f"state.{i}.{k}" for i in (0, 1) for k in ("step", "exp_avg", "exp_avg_sq")}
    json.dumps(meta)
    fresh = build_optimizer(model, "adamw", lr=0.1, weight_decay=0.01)
    fresh.load_state_dict(join_optimizer_state(tensors, meta))
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_state_is_json_and_restores_every_generator():
    state = json.loads(json.dumps(rng_state()))
    first = draws()
    assert draws() != first
    set_rng_state(state)
    assert draws() == first


def tiny() -> tuple[nn.Module, torch.optim.Optimizer]:
    model = create_model("mobilenet_v1", width_mult=0.25, num_classes=2, in_chans=1)
    opt = build_optimizer(model, "sgd", lr=0.1, weight_decay=1e-4)
    model(torch.randn(2, 1, 32, 32)).sum().backward()
    opt.step()
    return model, opt


PAYLOAD = {"epoch": 1, "config": {"model": "mobilenet_v1"}}


def test_save_read_and_load_a_checkpoint(tmp_path):
    model, opt = tiny()
    path = save_checkpoint(tmp_path, step=10, model=model, optimizer=opt, payload=PAYLOAD, ema=model)
    assert path == tmp_path / STATE_FILE
    state = read_state(tmp_path)
    assert state["step"] == 10 and state["epoch"] == 1
    assert state["files"] == {"model": "model-00000010.safetensors", "optim": "optim-00000010.safetensors",
                              "ema": "ema-00000010.safetensors"}
    # the stable names are the newest step files
    assert (tmp_path / "model.safetensors").read_bytes() == (tmp_path / state["files"]["model"]).read_bytes()
    assert json.loads((tmp_path / "ema.json").read_text())["ema"] is True
    fresh, fresh_opt = tiny()
    ema = create_model("mobilenet_v1", width_mult=0.25, num_classes=2, in_chans=1)
    torch.rand(5)  # moves torch's generator away from the saved state
    load_checkpoint(tmp_path, state, model=fresh, optimizer=fresh_opt, ema=ema)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(ema.classifier.weight, model.classifier.weight)
    assert fresh_opt.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    assert rng_state()["torch"] == state["rng"]["torch"]  # the RNG states are restored too


def test_a_later_checkpoint_replaces_the_step_files_and_clears_unfinished_writes(tmp_path):
    model, opt = tiny()
    save_checkpoint(tmp_path, step=10, model=model, optimizer=opt, payload=PAYLOAD)
    (tmp_path / ".model-00000020.safetensors.123.tmp").write_bytes(b"half")  # a killed write
    (tmp_path / ".tmpAbC123").write_bytes(b"half")  # safetensors' own temporary file
    save_checkpoint(tmp_path, step=20, model=model, optimizer=opt, payload={**PAYLOAD, "epoch": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model-00000020.json", "model-00000020.safetensors", "model.json", "model.safetensors",
        "optim-00000020.safetensors", "state.json"]
    assert read_state(tmp_path)["epoch"] == 2


def test_read_state_refuses_what_it_cannot_resume_from(tmp_path):
    with pytest.raises(ValueError, match="state.json: no checkpoint to resume from"):
        read_state(tmp_path)
    model, opt = tiny()
    save_checkpoint(tmp_path, step=1, model=model, optimizer=opt, payload=PAYLOAD)
    good = json.loads((tmp_path / STATE_FILE).read_text())
    for doc, message in [({**good, "version": 99}, "state version 99; this sepconv reads version 1"),
                         ({k: v for k, v in good.items() if k != "rng"}, "not a sepconv training state"),
                         ([good], "not a sepconv training state"),
                         ({**good, "files": {**good["files"], "optim": "gone.safetensors"}},
                          "gone.safetensors: missing, but .*state.json names it")]:
        (tmp_path / STATE_FILE).write_text(json.dumps(doc))
        with pytest.raises(ValueError, match=message):
            read_state(tmp_path)


def test_load_checkpoint_refuses_an_ema_the_run_did_not_train_and_an_optimizer_that_does_not_fit(tmp_path):
    model, opt = tiny()
    save_checkpoint(tmp_path, step=1, model=model, optimizer=opt, payload=PAYLOAD)
    state = read_state(tmp_path)
    fresh, fresh_opt = tiny()
    with pytest.raises(ValueError, match="trained without --ema; resume it without --ema"):
        load_checkpoint(tmp_path, state, model=fresh, optimizer=fresh_opt, ema=fresh)
    other = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="optim-00000001.safetensors: does not fit the optimizer"):
        load_checkpoint(tmp_path, state, model=fresh, optimizer=other)
    (tmp_path / state["files"]["optim"]).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_checkpoint(tmp_path, state, model=fresh, optimizer=fresh_opt)


def test_an_optimizer_that_does_not_fit_leaves_the_model_unchanged(tmp_path):
    model, opt = tiny()
    save_checkpoint(tmp_path, step=1, model=model, optimizer=opt, payload=PAYLOAD)
    fresh, _ = tiny()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    other = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="does not fit the optimizer"):
        load_checkpoint(tmp_path, read_state(tmp_path), model=fresh, optimizer=other)
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())
