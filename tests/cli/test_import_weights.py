"""``sepconv import-weights``: a timm file as a sepconv checkpoint, the source's own model names, and
one-line errors with exit 2 that write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from support.weights import synthetic_state

from sepconv import create_model
from sepconv.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weights"


@pytest.fixture
def timm_v2() -> dict[str, torch.Tensor]:
    """Deterministic stand-ins for timm's mobilenetv2_035 weights (the real keys and shapes)."""
    keys = json.loads((FIXTURES / "timm_mobilenetv2_035.json").read_text())["keys"]
    return {k: torch.from_numpy(v) for k, v in synthetic_state(keys).items()}


def test_import_writes_a_checkpoint_or_one_error_line(tmp_path: Path, timm_v2, capsys) -> None:
    torch.save(timm_v2, tmp_path / "w.pth")
    out = tmp_path / "m.safetensors"
    assert main(["import-weights", "timm", str(tmp_path / "w.pth"), "--model", "mobilenet_v2",
                 "--width-mult", "0.35", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"mobilenet_v2 <- timm w.pth: {len(timm_v2)} tensors -> {out}")
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert main(["import-weights", "timm", str(tmp_path / "w.pth"), "--model", "mobilenet_v2", "--out",
                 str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sepconv: error: timm weights") and "mis-shaped" in err and err.count("\n") == 1
    assert not (tmp_path / "x.safetensors").exists()
    assert main(["import-weights", "onnx", "w.pth", "--model", "mobilenet_v2", "--out", "x.safetensors"]) == 2
    assert "SOURCE='onnx' must be one of" in capsys.readouterr().err


def test_the_sources_own_model_name_and_no_strict(tmp_path: Path, timm_v2, capsys) -> None:
    headless = {k: v for k, v in timm_v2.items() if not k.startswith("classifier.")}
    torch.save(headless, tmp_path / "w.pth")
    out = tmp_path / "m.safetensors"
    argv = ["import-weights", "timm", str(tmp_path / "w.pth"), "--model", "mobilenetv2_035", "--num-classes", "10",
            "--out", str(out)]
    assert main(argv) == 2 and "missing" in capsys.readouterr().err  # the file has no classifier
    assert main([*argv, "--no-strict"]) == 0
    assert f"{len(headless)} tensors -> {out} (+ m.json)" in capsys.readouterr().out
    model = create_model(weights=out)
    assert model.provenance.model == "mobilenet_v2" and model.provenance.kwargs["num_classes"] == 10


def test_out_must_be_safetensors(tmp_path: Path, capsys) -> None:
    assert main(["import-weights", "timm", "w.pth", "--model", "mobilenet_v2", "--out", str(tmp_path / "m.pt")]) == 2
    assert "--out=" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_a_checkpoint_already_at_out_needs_overwrite(tmp_path: Path, timm_v2, capsys) -> None:
    torch.save(timm_v2, tmp_path / "w.pth")
    out = tmp_path / "m.safetensors"
    argv = ["import-weights", "timm", str(tmp_path / "w.pth"), "--model", "mobilenet_v2", "--width-mult", "0.35",
            "--out", str(out)]
    assert main(argv) == 0
    saved = out.read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"sepconv: error: --out={str(out)!r} already holds a sepconv checkpoint "
                                       "(with m.json); pass --overwrite to replace it\n")
    assert out.read_bytes() == saved
    assert main([*argv, "--overwrite"]) == 0
    assert create_model(weights=out).provenance.model == "mobilenet_v2"  # written again, whole
