"""``sepconv train/eval/sweep/inspect`` end to end, bad input, SIGKILL mid-epoch, and DDP under torchrun."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import support.train
import torch
from PIL import Image
from safetensors.torch import load_file
from support.train import make_cifar10, make_folder

from sepconv.cli import main
from sepconv.formats.checkpoint import save_model
from sepconv.models import create_model
from sepconv.train import TrainConfig, Trainer, loop, speed
from sepconv.train.state import read_state

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def steady_step_times(monkeypatch):
    """In-process runs time their steps alike (bf16 twice as fast), so that runs compared bit for bit
    choose alike whatever the machine's load does; the subprocess tests ask for fp32 instead."""
    monkeypatch.setattr(speed, "measure_step_seconds",
                        lambda model, shape, precision, channels_last, device, **kw: 0.005 if precision == "bf16"
                        else 0.01)
    monkeypatch.setattr(loop, "_DECIDED", {})  # no choice carried over from another test

HELPER = Path(support.train.__file__)  # run as a script: sepconv with tiny_train_net registered
TINY = ["--data", "digits", "--img-size", "16", "--quiet"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HELPER.parent), *sys.path])}


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()} if directory.exists() else {}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sepconv: error: "), err
    return err[0]


def test_train_eval_inspect(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "tiny_train_net", *TINY, "--epochs", "2", "--ema", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_done"] == 2 and "ema_val_acc" in summary

    assert main(["eval", str(out / "model.safetensors"), "--data", "digits", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["acc"] == pytest.approx(summary["val_acc"]) and result["images"] == 359
    assert main(["eval", str(out), "--ema"]) == 0  # a run directory; the data it was trained on
    line = capsys.readouterr().out
    assert f"ema.safetensors on digits (val, 359 images, 16 px): top-1 {summary['ema_val_acc']:.4f}" in line

    assert main(["inspect", str(out)]) == 0
    table = capsys.readouterr().out
    assert "block.dw.conv" in table and "depthwise kernels dead" in table
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]


def test_inspect_counts_dead_kernels_and_inactive_channels(tmp_path, capsys):
    model = create_model("tiny_train_net", in_chans=1)
    with torch.no_grad():
        model.block.dw.conv.weight[[0, 3, 5]] = 1e-5
        model.block.dw.norm.bias[[1, 2]] = -10.0
        model.block.dw.norm.weight[7] = 0.0
    save_model(model, tmp_path / "m.safetensors")
    assert main(["inspect", str(tmp_path / "m.safetensors"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (layer,) = doc["layers"]
    assert (layer["name"], layer["channels"], layer["kernel"], layer["stride"]) == ("block.dw.conv", 8, "3x3", 2)
    assert (layer["dead"], layer["small_gamma"], layer["inactive"]) == (3, 1, 3)  # beta 0, gamma 0 is inactive too
    assert layer["bn"] == "block.dw.norm" and layer["act"] == "ReLU" and doc["dead_fraction"] == 3 / 8


def test_sweep_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "tiny_train_net", "--width-mults", "0.5,1", *TINY, "--epochs", "1", "--repeats", "2",
                 "--out", str(out)]) == 0
    assert "MACs (M)" in capsys.readouterr().out
    doc = json.loads((out / "sweep.json").read_text())
    small, large = doc["points"]
    assert (small["width_mult"], large["width_mult"]) == (0.5, 1.0)
    assert small["macs"] < large["macs"] and small["params"] < large["params"] and small["latency_ms"] > 0
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG" and (out / "width-0.5" / "model.safetensors").is_file()
    assert main(["sweep", "tiny_train_net", "--width-mults", "0.5,1", *TINY, "--epochs", "1", "--out", str(out)]) == 2
    assert "already holds a sweep; pass --resume" in one_error_line(capsys)


@pytest.mark.parametrize("case", ["missing", "empty_class", "bad_image", "corrupt_cifar", "bad_width"])
def test_bad_data_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    data = tmp_path / "data"
    named = str(data)
    if case == "empty_class":
        make_folder(data)
        (data / "zebra").mkdir()
        named = str(data / "zebra")
    elif case == "bad_image":
        make_folder(data)
        (data / "cat" / "torn.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
        named = str(data / "cat" / "torn.jpg")
    elif case == "corrupt_cifar":
        make_cifar10(data)
        (data / "test_batch").write_bytes(b"\x80\x02}q\x00(X")
        named = str(data / "test_batch")
    elif case == "bad_width":
        data, named = "digits", "width_mults='0,1'"
    out = tmp_path / "run"
    args = ["sweep", "tiny_train_net", "--width-mults", "0,1"] if case == "bad_width" else ["train", "tiny_train_net"]
    assert main([*args, "--data", str(data), "--out", str(out), "--quiet"]) == 2
    assert named in one_error_line(capsys)
    assert not out.exists()


def test_checkpoints_are_untouched_by_a_failing_resume(tmp_path, capsys):
    data = make_folder(tmp_path / "pets", per_class=4)
    out = tmp_path / "run"
    args = ["--data", str(data), "--img-size", "8", "--epochs", "2", "--batch-size", "4", "--out", str(out), "--quiet"]
    config = TrainConfig("tiny_train_net", data=str(data), img_size=8, epochs=2, batch_size=4, out=str(out),
                         progress=False)
    Trainer(config).fit(until_epoch=1)
    before = snapshot(out)
    (data / "dog" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main(["train", "tiny_train_net", *args, "--resume"]) == 2
    assert f"{data / 'dog' / '2.png'}: unreadable image" in one_error_line(capsys)
    assert main(["train", "mobilenet_v2", *args, "--resume"]) == 2
    assert f"{out / 'state.json'}: holds a run of tiny_train_net" in one_error_line(capsys)
    Image.new("RGB", (8, 8)).save(data / "dog" / "2.png")
    assert main(["eval", str(out), "--data", "digits"]) == 2  # 3-channel pets model, 1-channel digits
    assert f"{out / 'model.safetensors'}: a model of 2 classes x 3 channels" in one_error_line(capsys)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    (tmp_path / "junk.json").write_text(json.dumps({"format": "sepconv", "model": "tiny_train_net",
                                                    "train": {"img_size": 8}}))
    assert main(["inspect", str(tmp_path / "junk.safetensors")]) == 2
    assert "junk.safetensors" in one_error_line(capsys)
    assert snapshot(out) == before
    loud = [a for a in args if a != "--quiet"]
    assert main(["train", "tiny_train_net", *loud, "--resume"]) == 0  # the data fixed, the run goes on
    assert read_state(out)["epoch"] == 2
    captured = capsys.readouterr()
    assert "epoch 2: train loss" in captured.err and "img/s" in captured.err
    assert f"tiny_train_net on {data}: val acc" in captured.out


def _train_cmd(out: Path, *extra: str) -> list[str]:
    # fp32 asked for: the uninterrupted run below (another process) must choose alike, and auto
    # precision times steps on a CPU with native bf16
    return [sys.executable, str(HELPER), "train", "tiny_train_net", *TINY, "--epochs", "2", "--batch-size", "64",
            "--save-every", "5", "--precision", "fp32", "--out", str(out), *extra]


def test_sigkill_mid_epoch_resumes_exactly(tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "state.json").exists() and read_state(out)["step"] >= 10:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    time.sleep(0.05)  # into the next steps, or a checkpoint write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = read_state(out)
    print("killed after the checkpoint of epoch", killed_at["epoch"], "step", killed_at["step_in_epoch"])
    assert killed_at["epoch"] < 2
    for path in out.iterdir():  # every file a reader would open is whole
        if path.name.startswith("."):
            continue  # an unfinished temporary write: never renamed into place, removed on resume
        if path.suffix == ".safetensors":
            load_file(str(path))
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".png":
            Image.open(path).verify()
        elif path.suffix == ".csv":
            list(csv.reader(path.open()))
    resumed = subprocess.run(_train_cmd(out, "--resume"), env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-1000:]
    assert read_state(out)["epoch"] == 2 and not [p for p in out.iterdir() if p.name.startswith(".")]
    Trainer(TrainConfig("tiny_train_net", data="digits", img_size=16, epochs=2, batch_size=64, precision="fp32",
                        out=str(tmp_path / "whole"), progress=False)).fit()  # uninterrupted, in this process
    a, b = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "whole" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_two_processes_equal_one_process(tmp_path):
    # BatchNorm normalises per rank in DDP, so the equality holds for a model without it (norm=false),
    # and in fp32 (bf16 rounds a 32-image half-batch differently from the 64-image batch). Layout and
    # torch.compile are left to rank 0's automatic choice, broadcast to rank 1.
    args = ["tiny_train_net:norm=false", *TINY, "--epochs", "2", "--batch-size", "64", "--optimizer", "adamw",
            "--precision", "fp32"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(HELPER),
           "train", *args, "--out", str(tmp_path / "ddp"), "--json"]
    log = tmp_path / "writes.log"
    env = {**ENV, "SEPCONV_TEST_WRITE_LOG": str(log), "SEPCONV_TEST_WRITE_UNDER": str(tmp_path / "ddp")}
    ddp = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    # only rank 0 writes: every file opened for writing, renamed, removed or made under the run's
    # directory, by either rank, is logged (both ranks logged their start)
    events = [line.split(" ", 2) for line in log.read_text().splitlines()]
    assert sorted(rank for rank, event, _ in events if event == "start") == ["0", "1"], events
    writes = [(rank, event, path) for rank, event, path in events if event != "start"]
    assert writes and {rank for rank, _, _ in writes} == {"0"}, [w for w in writes if w[0] != "0"][:5]
    assert {Path(path).name for _, event, path in writes if event == "os.rename"} >= \
        {"model.safetensors", "model.json", "state.json"}
    single = Trainer(TrainConfig("tiny_train_net", {"norm": False}, data="digits", img_size=16, epochs=2,
                                 batch_size=64, optimizer="adamw", precision="fp32", out=str(tmp_path / "one"),
                                 progress=False)).fit()
    state = read_state(tmp_path / "ddp")
    assert state["speed"]["precision"] == "fp32" and state["speed"]["compile"] is False
    assert ddp.stderr.count("sepconv train: precision fp32 (asked for)") == 1  # rank 0 prints the choice
    assert state["world_size"] == 2 and state["step"] == single["epochs_done"] * (1438 // 64)
    a = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    b = load_file(str(tmp_path / "one" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), (k, (a[k] - b[k]).abs().max())
    assert state["history"][-1]["val_images"] == 359
    assert abs(state["history"][-1]["val_acc"] - single["val_acc"]) <= 2 / 359


# ---- speed settings on the command line ---------------------------------------------------------------

def fake_caps(bf16=True, compile=True):
    return speed.Capabilities(device="cpu", bf16=bf16, fp16=False, compile=compile,
                              bf16_check=f"torch.ops.mkldnn._is_mkldnn_bf16_supported() is {bf16}",
                              compile_check="" if compile else "test: no torch.compile here")


def test_train_prints_records_and_reuses_its_speed_choice(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(speed, "probe_capabilities", lambda device: fake_caps(bf16=True))
    out = tmp_path / "run"
    assert main(["train", "tiny_train_net", *TINY, "--epochs", "2", "--ema", "--out", str(out), "--json"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in err[:3]] == [
        "sepconv train: precision bf16", "sepconv train: channels_last on", "sepconv train: torch.compile off"]
    assert "_is_mkldnn_bf16_supported() is True and a timed step is faster in bf16 (5 ms against 10 ms" in err[0]
    assert "22 steps x 15% of a 5 ms step" in err[2]
    state = read_state(out)
    assert (state["speed"]["precision"], state["speed"]["channels_last"]) == ("bf16", True)
    rows = json.loads((out / "metrics.json").read_text())
    assert {(r["precision"], r["channels_last"], r["compile"]) for r in rows} == {("bf16", True, False)}
    # eval of the run directory evaluates as training did: same precision and layout, same accuracy
    assert main(["eval", str(out), "--ema", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["precision"], result["channels_last"]) == ("bf16", True)
    assert result["acc"] == pytest.approx(state["history"][-1]["ema_val_acc"])
    assert main(["eval", str(out), "--precision", "fp32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"
    assert main(["eval", str(out), "--precision", "fp8"]) == 2  # argparse's choices
    assert "invalid choice: 'fp8'" in capsys.readouterr().err

    # resumed on a machine without bf16 (or torch.compile): the run keeps its settings
    Trainer(TrainConfig("tiny_train_net", data="digits", img_size=16, epochs=2, out=str(tmp_path / "split"),
                        progress=False)).fit(until_epoch=1)
    monkeypatch.setattr(speed, "probe_capabilities", lambda device: fake_caps(bf16=False, compile=False))
    assert main(["train", "tiny_train_net", *TINY, "--epochs", "2", "--out", str(tmp_path / "split"),
                 "--resume"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("sepconv train: precision bf16 (kept from the run's start (state.json); then: ")
    assert read_state(tmp_path / "split")["speed"]["precision"] == "bf16"


@pytest.mark.parametrize("flags, message", [
    (["--precision", "bf16"], ("--precision='bf16' cannot run on this cpu (torch.ops.mkldnn."
                               "_is_mkldnn_bf16_supported() is False); available: fp32")),
    (["--precision", "fp16"], "--precision='fp16' cannot run on this cpu (fp16 autocast is offered on CUDA GPUs only)"),
    (["--compile"], "--compile but torch.compile is unavailable here (test: no torch.compile here); train without it"),
    (["--amp", "--precision", "fp32"], "--amp (deprecated: reduced precision) contradicts precision='fp32'"),
])
def test_speed_settings_the_machine_cannot_run_are_one_line(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.setattr(speed, "probe_capabilities", lambda device: fake_caps(bf16=False, compile=False))
    out = tmp_path / "run"
    assert main(["train", "tiny_train_net", *TINY, *flags, "--out", str(out)]) == 2
    assert message in one_error_line_after_warnings(capsys)
    assert not out.exists()


def one_error_line_after_warnings(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("sepconv: warning:")]
    assert len(err) == 1 and err[0].startswith("sepconv: error: "), err
    return err[0]


def test_amp_still_works_and_warns(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(speed, "probe_capabilities", lambda device: fake_caps(bf16=True))
    out = tmp_path / "run"
    assert main(["train", "tiny_train_net", *TINY, "--epochs", "1", "--amp", "--no-channels-last", "--no-compile",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("sepconv: warning: --amp is deprecated: --precision auto (the default)")
    assert err[1].startswith("sepconv train: precision bf16 (amp=True (deprecated) means the CPU's bf16 autocast")
    assert err[2:4] == ["sepconv train: channels_last off (asked for)", "sepconv train: torch.compile off (asked off)"]
    assert read_state(out)["speed"]["precision"] == "bf16" and read_state(out)["config"]["amp"] is True
