"""``sepconv export`` and ``sepconv bench`` end to end: files, output, exit codes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from sepconv.cli import main
from sepconv.separation import separate

pytestmark = pytest.mark.usefixtures("threads_unchanged")


def test_export_onnx_writes_a_checked_model(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "mobilenet_v3_small:num_classes=10", "--format", "onnx", "--input-size", "32",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "HardSwish" in printed and "max |diff|" in printed
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    dims = [d.dim_value or d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 32, 32]
    assert main(["export", "mobilenet_v2:num_classes=10", "--input-size", "32", "--static-batch",
                 "--out", str(out)]) == 2  # the file is there: replaced only with --overwrite
    assert "already exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert main(["export", "mobilenet_v2:num_classes=10", "--input-size", "32", "--static-batch",
                 "--out", str(out), "--overwrite"]) == 0
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 32]


def test_export_int8_with_bundled_digits(tmp_path, capsys):
    out = tmp_path / "q.onnx"
    assert main(["export", "mobilenet_v2:num_classes=10,width_mult=0.5", "--input-size", "32", "--int8",
                 "--calib", "digits", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "int8 QDQ, per-channel weights, calibrated on 256 images" in printed
    assert "on 512 digits held-out images: top-1 agreement" in printed and "random weights" in printed
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops


@pytest.mark.parametrize(("argv", "message"), [
    (["export", "nonesuch", "--out", "{out}"], "model='nonesuch' is not one of: a registered name"),
    (["export", "{calib}.safetensors", "--out", "{out}"], "no such file"),
    (["export", "mobilenet_v2", "--int8", "--out", "{out}"], "--int8 needs calibration images"),
    (["export", "mobilenet_v2", "--calib", "digits", "--out", "{out}"], "--calib is for --int8 only"),
    (["export", "mobilenet_v2", "--input-size", "32", "--opset", "9", "--out", "{out}"], "opset=9 must be"),
    (["export", "mobilenet_v2", "--input-size", "32", "--int8", "--calib", "{calib}", "--out", "{out}"],
     r"calib.npy' has shape (4, 1, 28, 28); the model takes (N, 3, 32, 32)"),
    (["bench", "mobilenet_v2", "--backends", "tvm"], "--backends='tvm' must be 'all' or"),
    (["bench", "mobilenet_v2", "--batch", "0"], "--batch=0 must be a positive integer"),
])
def test_errors_are_one_line_exit_2_and_leave_out_untouched(argv, message, tmp_path, capsys):
    out = tmp_path / "keep.onnx"
    out.write_bytes(b"previous")
    calib = tmp_path / "calib.npy"
    np.save(calib, np.zeros((4, 1, 28, 28), np.float32))
    argv = [a.format(out=out, calib=calib) for a in argv]
    if argv[0] == "export":  # the file already there may be replaced: these fail on something else first
        argv.append("--overwrite")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sepconv: error: ") and err.count("\n") == 1
    assert message in err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.npy", "keep.onnx"]


def test_export_takes_a_checkpoint_a_separated_one_and_a_callable(tmp_path, capsys, monkeypatch):
    import torch

    from sepconv import create_model
    from sepconv.formats.checkpoint import save_model

    torch.manual_seed(0)
    model = create_model("mobilenet_v1", width_mult=0.25, conv="standard", num_classes=10, in_chans=1).eval()
    save_model(model, tmp_path / "std.safetensors")
    separated, _ = separate(model, depth_multiplier=2, layers=["blocks.*"])
    save_model(separated, tmp_path / "sep.safetensors")
    for name in ("std", "sep"):
        out = tmp_path / f"{name}.onnx"
        assert main(["export", str(tmp_path / f"{name}.safetensors"), "--input-size", "32", "--out", str(out)]) == 0
        assert f"wrote {out}" in capsys.readouterr().out
        dims = [d.dim_value or d.dim_param for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
        assert dims == ["batch", 1, 32, 32]
    convs = [n for n in onnx.load(str(tmp_path / "sep.onnx")).graph.node if n.op_type == "Conv"]
    assert any(a.name == "group" and a.i > 1 for n in convs for a in n.attribute)  # the depthwise convs
    (tmp_path / "usernet.py").write_text(
        "import torch\ndef build():\n    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())\n")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "usernet:build", "--input-size", "16", "--out", "user.onnx"]) == 0
    assert (tmp_path / "user.onnx").is_file()


def test_bench_json(capsys):
    assert main(["bench", "mobilenet_v3_small:num_classes=10", "--input-size", "32", "--backends",
                 "eager,onnxruntime,int8", "--batch", "1", "2", "--threads", "1", "--repeats", "2",
                 "--warmup", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threads"] == 1 and result["input_shape"] == [3, 32, 32]
    rows = {(r["backend"], r["batch"]): r for r in result["rows"]}
    assert set(rows) == {(b, n) for b in ("eager", "onnxruntime", "int8") for n in (1, 2)}
    assert all(r["median_ms"] > 0 and r["speedup_vs_eager"] > 0 for r in rows.values())
    assert rows[("eager", 1)]["speedup_vs_eager"] == 1.0
    assert all(r["status"] == "ok" and r["bn_folded"] is True for r in rows.values())  # bench folds BN for all
    assert rows[("onnxruntime", 2)]["max_abs_diff"] < 1e-4 and rows[("int8", 2)]["max_abs_diff"] >= 0


def test_bench_table(capsys):
    assert main(["bench", "mobilenet_v2:num_classes=10", "--input-size", "32", "--backends", "eager",
                 "--threads", "1", "--repeats", "2", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "1 threads, BN folded, median of 2 runs" in out
    assert out.splitlines()[-2].split()[:3] == ["backend", "batch", "BN"]
    assert out.splitlines()[-1].split()[:3] == ["eager", "1", "yes"]


def test_bench_takes_the_old_name_of_inductor_with_a_warning(capsys, monkeypatch):
    from sepconv.engines import runner

    timed = []
    monkeypatch.setattr(runner, "time_backends", lambda model, shape, backends, *args, **kwargs: timed.append(backends)
                        or [])  # names only: compiling would take minutes
    assert main(["bench", "mobilenet_v2:num_classes=10", "--input-size", "32", "--backends", "compile"]) == 0
    assert timed == [["eager", "inductor"]]
    assert "sepconv: warning: backend 'compile' is deprecated: use 'inductor'" in capsys.readouterr().err


def test_optimize_fp32_mode_writes_the_folder_and_bench_times_it(tmp_path, capsys):
    out = tmp_path / "deployed"
    assert main(["optimize", "mobilenet_v3_small:num_classes=10", "--input-size", "32", "--threads", "1",
                 "--engines", "torch,onnxruntime", "--rounds", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "vs plain ORT" in printed and "chose " in printed and f"wrote {out}" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == "sepconv-deploy" and report["engine"] in ("torch", "onnxruntime")
    assert {row["backend"]: row["status"] for row in report["candidates"]}["openvino"] == "excluded"
    assert main(["bench", str(out), "--repeats", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["backend"] == report["backend"] and rows[0]["batch"] == 1 and rows[0]["median_ms"] > 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--engines", "tpu"], "--engines='tpu' must be one of torch, onnxruntime, openvino"),
    (["--precisions", "int4"], "--precisions='int4' must be one of fp32, bf16, fp16, int8"),
    (["--max-drop", "-1"], "--max-drop=-1.0 must be a finite number >= 0"),
    (["--min-agreement", "200"], "--min-agreement=200.0 must be a percentage"),
    (["--threads", "100000"], "--threads=100000 is more than the"),
    (["--batch", "0"], "--batch=0 must be a positive integer"),
    (["--data", "no/such/dir"], "no/such/dir"),
    (["--data", "{few}"], "has 300 images: 256 calibrate int8 and at least 1000 must be held out"),
    (["--data", "digits", "--engines", "onnxruntime", "--precisions", "int8", "--min-agreement", "100",
      "--max-drop", "0", "--input-size", "64"], "no candidate within the budget: int8: over budget"),
    (["--out", "{existing}"], "--out='{existing}' already exists; pass --overwrite to replace it"),
    (["--out", "{file}"], "is a file; give a directory"),
])
def test_optimize_bad_input_is_one_line_exit_2_and_writes_nothing(argv, message, tmp_path, capsys):
    few = tmp_path / "few.npy"
    np.save(few, np.zeros((300, 3, 32, 32), np.float32))
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep")
    file = tmp_path / "file"
    file.write_text("keep")
    names = {"few": few, "existing": existing, "file": file}
    argv = [a.format(**names) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "new")]
    code = main(["optimize", "mobilenet_v3_small:num_classes=10", "--input-size", "32", "--rounds", "1", *argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message.format(**names) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "few.npy", "file"]
    assert (existing / "mine.txt").read_text() == "keep" and file.read_text() == "keep"
