"""OpenVINO as an engine: fp32 forced (its CPU default may be bf16), static shapes compiled per
shape, int8 on the same QDQ file ONNX Runtime runs, IR saved and read back."""

from __future__ import annotations

import pytest
import torch
from support.deploy import small_model, tiny_digits_net

from sepconv.engines.onnx_export import to_onnx
from sepconv.engines.openvino import HINTS, load_ir, openvino_runner, save_ir, unavailable
from sepconv.engines.ort import ort_session
from sepconv.engines.quantize import quantize, sqnr_db
from sepconv.engines.synthetic import lively_weights

pytestmark = [pytest.mark.usefixtures("threads_unchanged"),
              pytest.mark.skipif(unavailable("fp32") is not None, reason="OpenVINO is not installed")]


@pytest.fixture(scope="module")
def proto():
    return to_onnx(small_model("mobilenet_v3_small"), (1, 3, 64, 64)).proto


def test_fp32_matches_onnxruntime_and_compiles_once_per_shape(proto):
    run = openvino_runner(proto, "fp32", threads=1, example_shape=(1, 3, 64, 64))
    assert HINTS["fp32"] == "f32" and run.threads == 1 and len(run._requests) == 1
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    want = ort_session(proto, threads=1)(x)
    got = run(x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4 * float(want.abs().max()))
    run(x)
    assert len(run._requests) == 2  # (1, ...) and (3, ...), each compiled once
    assert isinstance(run(x.numpy()), type(x.numpy()))


def test_int8_runs_the_qdq_file_close_to_fp32():
    # a shallow network: a deep random one amplifies int8 rounding layer by layer (trained models are
    # checked against fp32 on held-out images in tests/deploy)
    net = lively_weights(tiny_digits_net(), torch.randn(16, 1, 32, 32, generator=torch.Generator().manual_seed(0)))
    proto = to_onnx(net, (1, 1, 32, 32)).proto
    calibration = torch.randn(32, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    qdq = quantize(proto, calibration).proto
    x = torch.randn(8, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    fp32 = ort_session(proto, threads=1)(x)
    ov = openvino_runner(qdq, "int8", threads=1)(x)
    ort = ort_session(qdq, threads=1)(x)
    assert sqnr_db(ov, fp32) > 15 and sqnr_db(ort, fp32) > 15, (sqnr_db(ov, fp32), sqnr_db(ort, fp32))


def test_ir_round_trip(proto, tmp_path):
    run = openvino_runner(proto, "fp32", threads=1)
    paths = save_ir(run, tmp_path / "model.xml")
    assert [p.name for p in paths] == ["model.xml", "model.bin"] and all(p.is_file() for p in paths)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(load_ir(paths[0], "fp32", threads=1)(x), run(x))
    with pytest.raises(ValueError, match="OpenVINO cannot read it"):
        (tmp_path / "bad.xml").write_text("<net>")
        load_ir(tmp_path / "bad.xml", "fp32", threads=1)


def test_precisions_the_cpu_lacks_are_refused_with_the_reason(proto):
    for precision in ("bf16", "fp16"):
        reason = unavailable(precision)
        if reason is None:
            run = openvino_runner(proto, precision, threads=1)
            x = torch.randn(1, 3, 64, 64)
            assert sqnr_db(run(x), ort_session(proto, threads=1)(x)) > 20
        else:
            assert "no " + precision.upper() in reason
            with pytest.raises(ValueError, match="cannot run OpenVINO " + precision):
                openvino_runner(proto, precision, threads=1)
    with pytest.raises(ValueError, match="precision='int4' must be one of"):
        unavailable("int4")
