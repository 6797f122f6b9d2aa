"""quantize: int8 QDQ through ONNX Runtime, per-channel weights, agreement with fp32 on held-out digits."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from support.deploy import tiny_digits_net

from sepconv.data.images import digits, load_images
from sepconv.deploy import ort_session, to_onnx
from sepconv.engines.quantize import quantize

pytestmark = pytest.mark.usefixtures("threads_unchanged")


@pytest.fixture(scope="module")
def trained():
    """The tiny network trained for a few seconds on 1,200 digits; the rest are held out."""
    torch.manual_seed(0)
    images, labels = digits((1, 1, 8, 8))
    model = tiny_digits_net()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: more threads only spin, badly so on a shared 2-core machine
    try:
        for _ in range(150):
            idx = torch.randint(0, 1200, (128,))
            loss = torch.nn.functional.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval(), images, labels


def test_int8_agrees_with_fp32_on_held_out_digits(trained, tmp_path):
    model, images, labels = trained
    out = tmp_path / "int8.onnx"
    q = quantize(model, images[:256], held_out=images[1200:], labels=labels[1200:], path=out)
    report = q.report
    assert report.samples == len(images) - 1200
    assert report.fp32_accuracy > 0.85, "the fixture's training failed"
    assert report.agreement >= 0.97
    assert report.accuracy_drop <= 2.0
    assert report.float_ops == {}, report.float_ops
    assert "agreement" in report.summary() and "drop" in report.summary()
    written = onnx.load(str(out))
    ops = collections.Counter(n.op_type for n in written.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > ops["QuantizeLinear"]
    # per-channel: each conv weight has one scale per output channel
    inits = {i.name: numpy_helper.to_array(i) for i in written.graph.initializer}
    weight_scales = [inits[n.input[1]] for n in written.graph.node
                     if n.op_type == "DequantizeLinear" and inits.get(n.input[0], np.zeros(0)).dtype == np.int8
                     and inits[n.input[0]].ndim == 4]
    assert [s.shape for s in weight_scales] == [(16,), (16,), (32,)]
    # the written model runs and gives the int8 predictions
    run = ort_session(out)
    assert run(images[1200:1210]).shape == (10, 10)


def test_per_tensor_and_onnx_input(trained):
    model, images, labels = trained
    fp32 = to_onnx(model, (1, 1, 8, 8)).proto
    q = quantize(fp32, [images[:64], images[64:128]], per_channel=False, held_out=images[1200:1400])
    inits = {i.name: numpy_helper.to_array(i) for i in q.proto.graph.initializer}
    scales = [inits[n.input[1]] for n in q.proto.graph.node if n.op_type == "DequantizeLinear"
              and inits.get(n.input[0], np.zeros(0)).dtype == np.int8 and inits[n.input[0]].ndim == 4]
    assert scales and all(s.size == 1 for s in scales)
    assert q.report.samples == 200 and q.report.fp32_accuracy is None


def test_calibration_data_of_the_wrong_shape_says_so(trained, tmp_path):
    model, images, _ = trained
    fp32 = to_onnx(model, (1, 1, 8, 8)).proto
    wrong = torch.zeros(4, 3, 8, 8)
    with pytest.raises(ValueError, match=r"calibration_data has shape \(4, 3, 8, 8\); the model takes \(N, 1, 8, 8\)"):
        quantize(fp32, wrong)
    with pytest.raises(ValueError, match=r"calibration_data batch 1 has shape \(2, 1, 9, 9\)"):
        quantize(fp32, [images[:2], torch.zeros(2, 1, 9, 9)])
    with pytest.raises(ValueError, match="calibration_data is empty"):
        quantize(fp32, images[:0])
    with pytest.raises(ValueError, match="method='kl' must be one of minmax, entropy, percentile"):
        quantize(fp32, images[:8], method="kl")
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"x.npy' has shape \(2, 1, 28, 28\); the model takes \(N, 1, 8, 8\)"):
        load_images(tmp_path / "x.npy", (1, 1, 8, 8))
    with pytest.raises(ValueError, match="neither 'digits' nor an existing file"):
        load_images(tmp_path / "missing.npy", (1, 1, 8, 8))


def test_image_files_load_with_labels(tmp_path):
    x = np.random.rand(5, 1, 8, 8).astype(np.float32)
    np.savez(tmp_path / "d.npz", images=x, labels=np.arange(5))
    images, labels = load_images(tmp_path / "d.npz", (1, 1, 8, 8))
    assert torch.equal(images, torch.from_numpy(x)) and labels.tolist() == [0, 1, 2, 3, 4]
    np.savez(tmp_path / "bad.npz", pictures=x)
    with pytest.raises(ValueError, match="no array named 'images'"):
        load_images(tmp_path / "bad.npz", (1, 1, 8, 8))


def test_layers_without_an_int8_kernel_are_named():
    # MobileNetV3's hard-sigmoid gates (and the HardSigmoid that ORT splits out of hard-swish) have no
    # int8 kernel in ONNX Runtime: the report names the op, how often, in which layers, and why.
    from sepconv.engines.quantize import module_name
    from sepconv.models import create_model

    torch.manual_seed(0)
    model = create_model("mobilenet_v3_small", num_classes=10, in_chans=1).eval()
    images = torch.randn(24, 1, 32, 32)
    report = quantize(model, images[:16], held_out=images[16:], input_shape=(1, 1, 32, 32)).report
    gates = report.float_layers["HardSigmoid"]
    assert report.float_ops["HardSigmoid"] == len(gates) > 0
    assert "blocks.0.se.gate" in gates and any(g.startswith("after stem.conv") for g in gates)
    assert "still float (no int8 kernel in ONNX Runtime" in report.summary()
    assert "HardSigmoid x" in report.summary() and "blocks.0.se.gate" in report.summary()
    assert module_name("/blocks/blocks.3/se/gate/HardSigmoid") == "blocks.3.se.gate"
    assert module_name("/stem/conv/Conv_output_0_DequantizeLinear") == "stem.conv"
    assert module_name("/Flatten") == ""


def test_keep_float_leaves_the_named_nodes_unquantized(trained):
    model, images, _ = trained
    fp32 = to_onnx(model, (1, 1, 8, 8)).proto
    convs = [n.name for n in fp32.graph.node if n.op_type == "Conv"]
    mixed = quantize(fp32, images[:64], keep_float=[convs[0]]).proto
    # the kept conv reads a float weight; the others read int8 weights through DequantizeLinear
    weights = {n.name: n.input[1] for n in mixed.graph.node if n.op_type == "Conv"}
    inits = {i.name for i in mixed.graph.initializer}
    assert weights[convs[0]] in inits and all(weights[c] not in inits for c in convs[1:])
    all_float = quantize(fp32, images[:64], keep_float=["Conv", "Gemm"]).proto
    assert not [n for n in all_float.graph.node if n.op_type == "DequantizeLinear"
                and n.input[0] in {i.name for i in all_float.graph.initializer}
                and len(numpy_helper.to_array(next(i for i in all_float.graph.initializer
                                                   if i.name == n.input[0])).shape) == 4]
    with pytest.raises(ValueError, match="keep_float entry 'nonesuch' is neither a node name nor an op type"):
        quantize(fp32, images[:8], keep_float=["nonesuch"])
    with pytest.raises(ValueError, match="must be a list of node names or op types"):
        quantize(fp32, images[:8], keep_float="Conv")
