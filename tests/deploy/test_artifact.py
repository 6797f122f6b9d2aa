"""The folder optimize writes and load() runs: each engine's artifact, the manifest round trip
through the resolver and the schema, tampering refused, load() equal to fp32 within its precision."""

from __future__ import annotations

import json

import pytest
import torch
from support.deploy import small_model

from sepconv.deploy import load, optimize
from sepconv.deploy.candidates import accuracy_of
from sepconv.formats.checkpoint import save_model
from sepconv.formats.manifest import read_manifest
from sepconv.resolve import resolve_model

pytestmark = pytest.mark.usefixtures("threads_unchanged")
SIZE = 64
FAST = {"rounds": 1, "budget_s": 0.05, "threads": 1}
# how close each precision's output must be to fp32's (largest logit difference over the largest logit)
TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2, "fp16": 5e-3}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A zoo model saved as a sepconv checkpoint (so the folder can hold its source)."""
    path = tmp_path_factory.mktemp("source") / "model.safetensors"
    save_model(small_model("mobilenet_v2", width_mult=0.35), path)
    return path


def _images(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "channels_last"])
def test_each_engine_round_trips_and_load_equals_fp32(source, tmp_path, backend):
    model = resolve_model(source).model.eval()
    out = tmp_path / backend
    result = optimize(str(source), input_size=SIZE, candidates=[backend], out=out, **FAST)
    assert result.folder == out and result.backend == backend
    manifest = read_manifest(out)
    assert manifest["backend"] == backend and manifest["input_shape"] == [1, 3, SIZE, SIZE]
    files = {"onnxruntime": {"model.onnx"}, "openvino": {"model.xml", "model.bin"}, "channels_last": set()}[backend]
    assert set(manifest["files"]) == files and manifest["source"] == "model.safetensors"
    assert (out / "candidates.txt").read_text().strip() == result.table()
    deployed = load(out)
    x = _images()
    with torch.no_grad():
        want = model(x)
    assert deployed.backend == backend and deployed.threads == 1
    torch.testing.assert_close(deployed(x), want, rtol=0, atol=TOLERANCE["fp32"] * float(want.abs().max()))
    # the resolver reads the folder as the fp32 source model (its checkpoint is in it)
    resolved = resolve_model(out)
    assert resolved.checkpoint == out / "model.safetensors"
    with torch.no_grad():
        torch.testing.assert_close(resolved.model.eval()(x), want)


def test_int8_folder_loads_and_agrees_with_fp32_within_its_report(source, tmp_path):
    out = tmp_path / "int8"
    result = optimize(str(source), data="digits", input_size=SIZE, held_out=1000, candidates=["int8"],
                      min_agreement=0.0, max_drop=100.0, out=out, **FAST)
    row = result.chosen
    assert row.backend == "int8" and row.precision == "int8" and row.accuracy is not None
    deployed = load(out)
    assert set(read_manifest(out)["files"]) == {"model.onnx"}
    # load() gives the same outputs as the runner that was checked: the report's agreement holds for it
    from sepconv.deploy.heldout import deploy_images

    images = deploy_images("digits", (1, 3, SIZE, SIZE), held_out=1000)
    model = resolve_model(source).model.eval()
    with torch.no_grad():
        reference = model(images.held_out)
    again = accuracy_of(deployed(images.held_out), reference, images.labels)
    assert again.agreement == pytest.approx(row.accuracy.agreement)
    assert again.sqnr_db == pytest.approx(row.accuracy.sqnr_db, rel=1e-3)


def test_tampering_is_refused_in_one_line(source, tmp_path):
    out = tmp_path / "ort"
    optimize(str(source), input_size=SIZE, candidates=["onnxruntime"], out=out, **FAST)
    onnx_file = out / "model.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 1
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model.onnx: its SHA-256 is not the one report.json records"):
        load(out)
    manifest = json.loads((out / "report.json").read_text())
    for edit, message in (({"engine": "tensorrt"}, "engine='tensorrt' must be one of"),
                          ({"threads": 0}, "threads=0 must be a positive integer"),
                          ({"files": {"../x.onnx": "0" * 64}}, "must be a plain file name"),
                          ({"evil": 1}, "key 'evil'=1 is not part of a sepconv-deploy manifest"),
                          ({"input_shape": [1, 3, 64]}, "input_shape=\\[1, 3, 64\\] must be")):
        (out / "report.json").write_text(json.dumps({**manifest, **edit}))
        with pytest.raises(ValueError, match=message):
            load(out)
    (out / "report.json").write_text("[" * 100000)
    with pytest.raises(ValueError, match="nested too deeply|not valid JSON"):
        load(out)
    with pytest.raises(ValueError, match="holds no report.json"):
        load(tmp_path)


def test_unavailable_engines_say_why():
    from sepconv.engines.openvino import capabilities, unavailable
    from sepconv.engines.runner import RUNNERS, torch_unavailable

    caps = capabilities()
    for precision, needs in (("bf16", "BF16"), ("fp16", "FP16"), ("int8", "INT8"), ("fp32", "FP32")):
        reason = unavailable(precision)
        assert (reason is None) == (needs in caps), (precision, caps, reason)
        assert RUNNERS["openvino" if precision == "fp32" else f"openvino_{precision}"].unavailable() == reason
    for precision in ("bf16", "fp16"):
        supported = getattr(torch.ops.mkldnn, f"_is_mkldnn_{precision}_supported")()
        assert (torch_unavailable(precision) is None) == supported
