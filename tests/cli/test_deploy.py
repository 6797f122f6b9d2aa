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
                 "--out", str(out)]) == 0
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
     r"data has shape (4, 1, 28, 28); the model takes (N, 3, 32, 32)"),
    (["bench", "mobilenet_v2", "--backends", "tvm"], "--backends='tvm' must be 'all' or"),
    (["bench", "mobilenet_v2", "--batch", "0"], "--batch=0 must be a positive integer"),
])
def test_errors_are_one_line_exit_2_and_leave_out_untouched(argv, message, tmp_path, capsys):
    out = tmp_path / "keep.onnx"
    out.write_bytes(b"previous")
    calib = tmp_path / "calib.npy"
    np.save(calib, np.zeros((4, 1, 28, 28), np.float32))
    argv = [a.format(out=out, calib=calib) for a in argv]
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
