"""Padding rules: symmetric "same", "valid", explicit ints and TensorFlow's SAME ("tf_same").

TensorFlow pads ``total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` with the smaller
half *before*: for a 3x3 stride-2 conv on an even input that is 0 before and 1 after, which no
symmetric padding reproduces. Loading TF/Keras weights exactly needs it, so it is computed from the
input size at run time (a Python int per dimension: with a static input shape, ONNX export and
``torch.export`` see constants; ``torch.fx`` keeps :func:`tf_same_pad` as a call).
"""

from __future__ import annotations

import math
from typing import Union

import torch
import torch.nn.functional as F

from .._util.checks import int_pair, one_of

Padding = Union[int, tuple[int, int], str, None]
PADDING_MODES = ("same", "valid", "tf_same")


def resolve_padding(
    padding: Padding, kernel_size: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> tuple[tuple[int, int] | str, bool]:
    """Return (padding for nn.Conv2d, whether TF-style dynamic padding is needed).

    ``None`` and ``"same"`` give torchvision's symmetric padding ``d * (k - 1) // 2``; for stride 1
    and an even effective kernel torch's own asymmetric ``"same"`` is used so the output keeps the
    input's size.
    """
    if padding is None:
        padding = "same"
    if isinstance(padding, str):
        one_of("padding", padding, PADDING_MODES)
        if padding == "valid":
            return (0, 0), False
        if padding == "tf_same":
            return (0, 0), True
        effective = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        if stride == (1, 1) and any(e % 2 for e in effective):
            return "same", False
        return (effective[0] // 2, effective[1] // 2), False
    return int_pair("padding", padding, minimum=0), False


def tf_same_amounts(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) for one spatial dimension."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def tf_same_pad(
    x: torch.Tensor,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    value: float = 0.0,
) -> torch.Tensor:
    h, w = int(x.shape[-2]), int(x.shape[-1])
    top, bottom = tf_same_amounts(h, kernel_size[0], stride[0], dilation[0])
    left, right = tf_same_amounts(w, kernel_size[1], stride[1], dilation[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


# A leaf in torch.fx graphs (the amounts are Python ints read from the input's size): a traced
# GraphModule calls this function and pads each input as eager does.
torch.fx.wrap("tf_same_pad")


class MaxPool2d(torch.nn.MaxPool2d):
    """``nn.MaxPool2d`` taking sepconv's padding modes ("same", "valid", "tf_same" or an int).

    Example::

        >>> MaxPool2d(3, 2, padding="tf_same")(torch.zeros(1, 8, 74, 74)).shape
        torch.Size([1, 8, 37, 37])
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: Padding = "same") -> None:
        k = int_pair("kernel_size", kernel_size)
        s = int_pair("stride", stride if stride is not None else kernel_size)
        pad, self.tf_same = resolve_padding(padding, k, s, (1, 1))
        if pad == "same":  # stride-1 even kernel: pools rarely want this; use TF's rule
            pad, self.tf_same = (0, 0), True
        if any(p > kk // 2 for p, kk in zip(pad, k)):  # torch would only say so at forward time
            raise ValueError(f"padding={padding!r} must be at most half of kernel_size={kernel_size!r}")
        super().__init__(k, s, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            x = tf_same_pad(x, self.kernel_size, self.stride, value=float("-inf"))
        return super().forward(x)
