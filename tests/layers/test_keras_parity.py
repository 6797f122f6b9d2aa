"""Parity with Keras 3 (torch backend) layers, weights copied across.

Keras is channels-last: inputs go (B, H, W, C) -> (B, C, H, W). Kernels: Conv2D ``(kh, kw, M, N)``
-> ``(N, M, kh, kw)``; DepthwiseConv2D ``(kh, kw, C, d)`` -> ``(C * d, 1, kh, kw)`` (output ``c * d + j``);
SeparableConv2D's pointwise ``(1, 1, C * d, N)`` -> ``(N, C * d, 1, 1)``. Keras "same" is
TensorFlow's SAME, which is our "tf_same" (and, at stride 1, our "same" too).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.layers import EVEN_KERNEL_SAME

from sepconv.layers import Conv2d, DepthwiseConv2d, SeparableConv2d


def _numpy(keras, tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def _run(keras, layer, module, x_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    expected = _numpy(keras, layer(x_nhwc))
    with torch.no_grad():
        got = module(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    return expected, got


def _ours(keras_padding: str, stride: int) -> list[str]:
    """Our padding modes that must equal a Keras padding at this stride."""
    if keras_padding == "valid":
        return ["valid"]
    return ["tf_same", "same"] if stride == 1 else ["tf_same"]


def _depthwise_kernel(kernel: np.ndarray) -> torch.Tensor:
    kh, kw, c, d = kernel.shape
    return torch.from_numpy(kernel).permute(2, 3, 0, 1).reshape(c * d, 1, kh, kw)


def _copy(param: torch.Tensor, value: torch.Tensor | np.ndarray) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(value))


CASES = pytest.mark.parametrize("size", [8, 9])
STRIDES = pytest.mark.parametrize("stride", [1, 2])
PADDINGS = pytest.mark.parametrize("padding", ["same", "valid"])
MULTIPLIERS = pytest.mark.parametrize("depth_multiplier", [1, 2])
BIASES = pytest.mark.parametrize("bias", [False, True])


@CASES
@STRIDES
@PADDINGS
@MULTIPLIERS
@BIASES
def test_depthwise_matches_keras(keras, size, stride, padding, depth_multiplier, bias):
    c = 3
    x = np.random.randn(2, size, size, c).astype(np.float32)
    layer = keras.layers.DepthwiseConv2D(
        3, strides=stride, padding=padding, depth_multiplier=depth_multiplier, use_bias=bias,
        bias_initializer="random_normal",
    )
    layer.build((None, size, size, c))
    kernel = _numpy(keras, layer.kernel)
    assert kernel.shape == (3, 3, c, depth_multiplier)
    for mode in _ours(padding, stride):
        m = DepthwiseConv2d(c, 3, stride=stride, padding=mode, depth_multiplier=depth_multiplier, bias=bias)
        _copy(m.weight, _depthwise_kernel(kernel))
        if bias:
            _copy(m.bias, _numpy(keras, layer.bias))
        expected, got = _run(keras, layer, m, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@CASES
@STRIDES
@PADDINGS
@MULTIPLIERS
@BIASES
def test_separable_matches_keras(keras, size, stride, padding, depth_multiplier, bias):
    c, n = 3, 5
    x = np.random.randn(2, size, size, c).astype(np.float32)
    layer = keras.layers.SeparableConv2D(
        n, 3, strides=stride, padding=padding, depth_multiplier=depth_multiplier, use_bias=bias,
        bias_initializer="random_normal",
    )
    layer.build((None, size, size, c))
    dw_kernel, pw_kernel = _numpy(keras, layer.depthwise_kernel), _numpy(keras, layer.pointwise_kernel)
    assert dw_kernel.shape == (3, 3, c, depth_multiplier) and pw_kernel.shape == (1, 1, c * depth_multiplier, n)
    for mode in _ours(padding, stride):
        m = SeparableConv2d(c, n, 3, stride=stride, padding=mode, depth_multiplier=depth_multiplier, bias=bias)
        _copy(m.dw.weight, _depthwise_kernel(dw_kernel))
        _copy(m.pw.weight, torch.from_numpy(pw_kernel).permute(3, 2, 0, 1))
        if bias:
            _copy(m.pw.bias, _numpy(keras, layer.bias))
        expected, got = _run(keras, layer, m, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@EVEN_KERNEL_SAME
@CASES
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_same_matches_keras(keras, size, kernel, stride):
    x = np.random.randn(2, size, size, 3).astype(np.float32)
    layer = keras.layers.Conv2D(4, kernel, strides=stride, padding="same", bias_initializer="random_normal")
    layer.build((None, size, size, 3))
    for mode in _ours("same", stride):
        m = Conv2d(3, 4, kernel, stride=stride, padding=mode)
        _copy(m.weight, torch.from_numpy(_numpy(keras, layer.kernel)).permute(3, 2, 0, 1))
        _copy(m.bias, _numpy(keras, layer.bias))
        expected, got = _run(keras, layer, m, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_symmetric_same_differs_from_keras_when_strided(keras):
    """Why "tf_same" exists: torchvision's symmetric "same" is not Keras "same" at stride 2 on even input."""
    x = np.random.randn(1, 8, 8, 2).astype(np.float32)
    layer = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)
    layer.build((None, 8, 8, 2))
    m = DepthwiseConv2d(2, 3, stride=2, padding="same")
    _copy(m.weight, _depthwise_kernel(_numpy(keras, layer.kernel)))
    expected, got = _run(keras, layer, m, x)
    assert got.shape == expected.shape and not np.allclose(got, expected, atol=1e-3)
