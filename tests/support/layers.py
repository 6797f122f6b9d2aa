"""Independent references for the operator tests, written with plain ``torch.nn.functional`` calls.

Nothing here imports :mod:`sepconv`: each padding rule is restated from its definition (TensorFlow's
documentation for SAME, torchvision's ``(k - 1) // 2`` for symmetric "same") so that a test compares
two separate derivations, not the module with itself.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

# torch notes that stride-1 "same" with an even kernel pads a copy of the input; expected here.
EVEN_KERNEL_SAME = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def tf_same_amounts(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow SAME (before, after) for one dimension, in the form of TF's conv documentation.

    ``pad_along = max(k_eff - s, 0)`` when ``s`` divides ``n``, else ``max(k_eff - n % s, 0)``;
    the smaller half goes before.
    """
    k_eff = (k - 1) * d + 1
    total = max(k_eff - s, 0) if n % s == 0 else max(k_eff - n % s, 0)
    return total // 2, total - total // 2


def pad_amounts(mode, size, kernel, stride=1, dilation=1) -> tuple[int, int, int, int]:
    """``F.pad`` amounts (left, right, top, bottom) for one of sepconv's padding modes."""
    (h, w), (kh, kw), s, d = pair(size), pair(kernel), pair(stride), pair(dilation)
    if mode == "valid":
        return 0, 0, 0, 0
    if mode == "tf_same":
        top, bottom = tf_same_amounts(h, kh, s[0], d[0])
        left, right = tf_same_amounts(w, kw, s[1], d[1])
        return left, right, top, bottom
    if mode in (None, "same"):
        eff_h, eff_w = d[0] * (kh - 1), d[1] * (kw - 1)
        if s == (1, 1):  # keeps the size: any odd remainder goes after, as in torch and TF
            return eff_w // 2, eff_w - eff_w // 2, eff_h // 2, eff_h - eff_h // 2
        return eff_w // 2, eff_w // 2, eff_h // 2, eff_h // 2  # torchvision's symmetric rule
    ph, pw = pair(mode)
    return pw, pw, ph, ph


def conv_ref(x, weight, bias=None, mode="valid", stride=1, dilation=1) -> torch.Tensor:
    """A dense (groups=1) convolution of ``x`` padded explicitly by :func:`pad_amounts`."""
    pad = pad_amounts(mode, tuple(x.shape[-2:]), tuple(weight.shape[-2:]), stride, dilation)
    return F.conv2d(F.pad(x, pad), weight, bias, pair(stride), 0, pair(dilation))


def grouped_ref(x, weight, bias, groups, mode="valid", stride=1, dilation=1) -> torch.Tensor:
    """A grouped conv as the concatenation of ``groups`` dense convs on channel slices."""
    xs, ws = x.chunk(groups, dim=1), weight.chunk(groups, dim=0)
    bs = bias.chunk(groups) if bias is not None else [None] * groups
    return torch.cat([conv_ref(xi, wi, bi, mode, stride, dilation) for xi, wi, bi in zip(xs, ws, bs)], 1)


def depthwise_ref(x, weight, bias, multiplier, mode="valid", stride=1, dilation=1) -> torch.Tensor:
    """Output ``c * d + j`` is input channel ``c`` convolved with filter ``c * d + j``, one at a time."""
    outs = []
    for c in range(x.shape[1]):
        for j in range(multiplier):
            o = c * multiplier + j
            b = None if bias is None else bias[o : o + 1]
            outs.append(conv_ref(x[:, c : c + 1], weight[o : o + 1], b, mode, stride, dilation))
    return torch.cat(outs, 1)


def pointwise_ref(x, weight, bias=None) -> torch.Tensor:
    """A 1x1 conv as a matrix product over channels."""
    y = torch.einsum("oc,bchw->bohw", weight[:, :, 0, 0], x)
    return y if bias is None else y + bias[None, :, None, None]


def bn_ref(x, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Inference-mode batch norm written out: ``(x - mean) / sqrt(var + eps) * gamma + beta``."""
    shape = (1, -1, 1, 1)
    x = (x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
    return x * bn.weight.view(shape) + bn.bias.view(shape)


def randomize_norms(module: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters; put the module in eval."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return module.eval()


def max_pool_ref(x, kernel, stride, pad=(0, 0, 0, 0)) -> torch.Tensor:
    """Max-pool after padding with -inf, so padding never wins over a real (even negative) value."""
    return F.max_pool2d(F.pad(x, pad, value=float("-inf")), kernel, stride)


def se_ref(x, se: nn.Module) -> torch.Tensor:
    """mean over the map -> fc1 -> ReLU -> fc2 -> hard sigmoid relu6(z + 3) / 6 -> rescale x."""
    s = x.mean((2, 3))  # (B, C)
    h = F.relu(s @ se.fc1.weight[:, :, 0, 0].T + se.fc1.bias)
    z = h @ se.fc2.weight[:, :, 0, 0].T + se.fc2.bias
    return x * (F.relu6(z + 3.0) / 6.0)[:, :, None, None]
