"""Caffe's im2col + per-group GEMM convolution, reproduced: equal to ``F.conv2d`` and its gradients,
Caffe's call counts (N*C GEMV-shaped calls for a depthwise conv), ``use_impl`` on a whole zoo model,
and the errors. No test here decides by timing."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sepconv
from sepconv.engines import im2col
from sepconv.engines.im2col import IMPLS, Im2colConv2d, count_calls, im2col_conv2d, parse_impls, use_impl
from sepconv.layers import Conv2d, DepthwiseConv2d

# (in, out, kernel, stride, padding, dilation, groups): dense, grouped and depthwise convs
CASES = [
    (4, 6, 3, 1, 1, 1, 1),
    (4, 6, 3, 2, 0, 1, 1),
    (6, 4, (3, 2), (2, 1), (1, 0), 1, 2),
    (6, 9, 3, 1, 2, 2, 3),
    (5, 5, 3, 1, 1, 1, 5),       # depthwise
    (5, 10, 5, 2, 2, 1, 5),      # depthwise, depth multiplier 2, stride 2
    (4, 4, 3, 3, 1, 2, 4),       # depthwise, dilated, stride 3
    (4, 8, 1, 1, 0, 1, 1),       # pointwise: Caffe's 1x1 path, no im2col
    (4, 8, 1, 2, 0, 1, 2),       # 1x1 with stride: im2col again
]


def _grads(fn, x, weight, bias):
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, weight, bias)]
    out = fn(*leaves)
    out.backward(torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(2)))
    return out.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("case", CASES)
def test_equals_conv2d_and_its_gradients(case):
    cin, cout, k, stride, padding, dilation, groups = case
    kh, kw = (k, k) if isinstance(k, int) else k
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, cin, 11, 10, generator=gen)
    weight = torch.randn(cout, cin // groups, kh, kw, generator=gen)
    bias = torch.randn(cout, generator=gen)
    args = (stride, padding, dilation, groups)
    out, grads = _grads(lambda a, w, b: im2col_conv2d(a, w, b, *args), x, weight, bias)
    ref, ref_grads = _grads(lambda a, w, b: F.conv2d(a, w, b, *args), x, weight, bias)
    assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
    for name, got, want in zip(("input", "weight", "bias"), grads, ref_grads):
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), name


def test_gradcheck_in_double():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 5, 5, dtype=torch.double, generator=gen, requires_grad=True)
    weight = torch.randn(6, 2, 3, 3, dtype=torch.double, generator=gen, requires_grad=True)
    bias = torch.randn(6, dtype=torch.double, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w, b: im2col_conv2d(a, w, b, 2, 1, 1, 2), (x, weight, bias))
    depthwise = torch.randn(4, 1, 3, 3, dtype=torch.double, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: im2col_conv2d(a, w, None, 1, 1, 1, 4), (x, depthwise))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's note on the native conv
@pytest.mark.parametrize("conv", [
    nn.Conv2d(4, 6, 3, padding="same", bias=True),
    nn.Conv2d(4, 4, 4, padding="same", groups=4),                  # torch's asymmetric "same"
    nn.Conv2d(4, 6, 3, padding="valid", dilation=2),
    nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"),
    Conv2d(4, 8, 3, stride=2, padding="tf_same", groups=4),        # sepconv's TensorFlow SAME
    Conv2d(4, 6, 2, padding="same"),                               # sepconv's "same" for an even kernel
    DepthwiseConv2d(4, 3, stride=2, depth_multiplier=2),
], ids=lambda conv: repr(conv))
def test_module_computes_what_the_conv_computes(conv):
    caffe = Im2colConv2d(conv)
    assert caffe.weight is conv.weight and caffe.bias is conv.bias
    assert caffe.state_dict().keys() == conv.state_dict().keys()
    x = torch.randn(2, 4, 9, 8)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    (y1 := caffe(x1)).square().sum().backward()
    grads = [p.grad.clone() for p in conv.parameters()]
    conv.zero_grad()
    (y2 := conv(x2)).square().sum().backward()
    assert y1.shape == y2.shape and torch.allclose(y1, y2, atol=1e-5)
    assert torch.allclose(x1.grad, x2.grad, atol=1e-4)
    for got, p in zip(grads, conv.parameters()):
        assert torch.allclose(got, p.grad, atol=1e-4)


def test_depthwise_makes_n_times_c_gemv_shaped_forward_calls():
    n, c = 3, 8
    conv = use_impl(DepthwiseConv2d(c, 3), "im2col")
    x = torch.randn(n, c, 12, 12, requires_grad=True)
    with count_calls() as log:
        out = conv(x)
    assert log.count("forward") == log.gemv_shaped("forward") == n * c
    assert {(call.role, call.m, call.n, call.k) for call in log.calls} == {("conv", 1, 144, 9)}
    with count_calls() as log:
        out.sum().backward()
    # per image and channel: a weight-gradient GEMV (1 x 9, over 144 pixels) and an input-gradient
    # outer product (9 x 144, k = 1), as Caffe's weight_cpu_gemm and backward_cpu_gemm make them
    summary = log.summary("backward")
    assert summary["calls"] == 2 * n * c and summary["gemv_shaped"] == n * c and summary["rank1"] == n * c


def test_dense_conv_makes_one_gemm_per_image_and_bias_as_caffe_does():
    conv = use_impl(nn.Conv2d(8, 16, 3, padding=1), "im2col")
    with count_calls() as log:
        conv(torch.randn(2, 8, 6, 6, requires_grad=True)).sum().backward()
    roles = [(call.phase, call.role) for call in log.calls]
    assert roles.count(("forward", "conv")) == 2 and roles.count(("forward", "bias")) == 2
    assert roles.count(("backward", "bias_grad")) == 2 and roles.count(("backward", "weight_grad")) == 2
    assert roles.count(("backward", "input_grad")) == 2 and log.gemv_shaped("forward") == 0
    assert log.summary("forward")["shapes"][0] == {"role": "conv", "m": 16, "n": 36, "k": 72, "count": 2}


def test_nothing_is_recorded_outside_count_calls():
    conv = Im2colConv2d(nn.Conv2d(2, 2, 3, bias=False))
    conv(torch.randn(1, 2, 5, 5))
    with count_calls() as outer:
        with count_calls() as inner:
            conv(torch.randn(1, 2, 5, 5))
        conv(torch.randn(1, 2, 5, 5))
    assert inner.count() == 1 and outer.count() == 2 and not im2col._ACTIVE


def _logits_and_grads(net: nn.Module, x: torch.Tensor, train: bool):
    net.train(train)
    net.zero_grad()
    logits = net(x)
    logits.logsumexp(1).sum().backward()
    return logits.detach(), {name: p.grad for name, p in net.named_parameters()}


def test_use_impl_on_a_zoo_model_gives_the_same_logits_and_gradients():
    torch.manual_seed(0)
    model = sepconv.create_model("mobilenet_v1", width_mult=0.25)
    caffe = use_impl(model, "im2col")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) > 20 and all(isinstance(m, Im2colConv2d) for m in caffe.modules() if isinstance(m, nn.Conv2d))
    assert caffe.state_dict().keys() == model.state_dict().keys()
    assert not any(isinstance(m, Im2colConv2d) for m in model.modules())  # the original is untouched
    x = torch.randn(2, 3, 32, 32)
    logits, grads = _logits_and_grads(model, x, train=False)
    caffe_logits, caffe_grads = _logits_and_grads(caffe, x, train=False)
    assert torch.allclose(caffe_logits, logits, atol=1e-4, rtol=1e-4)
    for name, grad in grads.items():
        assert torch.allclose(caffe_grads[name], grad, atol=1e-4, rtol=1e-4), name
    # Training mode: BatchNorm over a batch of 2 at 1x1 maps amplifies float32 rounding (~1e-3
    # relative), so the algorithm's training gradients are compared in float64, where they agree.
    model, x = model.double(), x.double()
    logits, grads = _logits_and_grads(model, x, train=True)
    caffe_logits, caffe_grads = _logits_and_grads(use_impl(model, "im2col"), x, train=True)
    assert torch.allclose(caffe_logits, logits, atol=1e-10)
    for name, grad in grads.items():
        assert torch.allclose(caffe_grads[name], grad, atol=1e-10), name
    native = use_impl(model, "native")
    assert native is not model and type(native) is type(model)


def test_impls_and_their_errors():
    assert IMPLS == ("native", "im2col")
    assert parse_impls("im2col,native,im2col") == ("im2col", "native")
    with pytest.raises(ValueError, match=r"impl='cudnn'.*available: native, im2col") as err:
        parse_impls("cudnn")
    assert err.value.argument == "impl"
    with pytest.raises(ValueError, match="must be one of native, im2col") as err:
        use_impl(nn.Conv2d(1, 1, 1), "caffe")
    assert err.value.argument == "impl"
    with pytest.raises(ValueError, match="already runs im2col"):
        use_impl(use_impl(nn.Sequential(nn.Conv2d(1, 1, 1)), "im2col"), "native")
    with pytest.raises(TypeError, match="nn.Conv2d"):
        Im2colConv2d(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="does not fit"):
        im2col_conv2d(torch.randn(1, 3, 5, 5), torch.randn(2, 2, 3, 3))


def test_docstring_examples():
    result = doctest.testmod(im2col, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
