"""The convolution every sepconv operator is built from, and ``ConvNormAct``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._util.checks import divides, int_pair, optional_callable, positive_int
from ._input import checked
from .padding import Padding, resolve_padding, tf_same_pad

ModuleFactory = Callable[..., nn.Module]

# A leaf in torch.fx graphs: its pad amounts are Python ints read from the input's size, which a
# symbolic trace cannot read. torch.fx.wrap patches the name in the calling module, hence here too.
torch.fx.wrap("tf_same_pad")


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` with sepconv's padding modes and argument and input checks.

    ``padding`` is an int (or pair), ``"same"`` (symmetric, torchvision's rule), ``"valid"`` or
    ``"tf_same"`` (TensorFlow's SAME, asymmetric for stride 2; see :mod:`sepconv.layers.padding`).
    It stays an ``nn.Conv2d``, so everything that walks a model's convolutions (the cost model,
    BN folding, separation) sees it as one.

    Example::

        >>> Conv2d(3, 8, 3, stride=2, padding="tf_same")(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 8, 112, 112])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: Padding = "same",
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        positive_int("groups", groups)
        divides("groups", groups, "in_channels", in_channels)
        divides("groups", groups, "out_channels", out_channels)
        k = int_pair("kernel_size", kernel_size)
        s = int_pair("stride", stride)
        d = int_pair("dilation", dilation)
        pad, tf_same = resolve_padding(padding, k, s, d)
        super().__init__(in_channels, out_channels, k, s, pad, d, groups, bias=bool(bias))
        self.tf_same = tf_same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        if self.tf_same:
            x = tf_same_pad(x, self.kernel_size, self.stride, self.dilation)
        return self._conv_forward(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", padding=tf_same" if self.tf_same else "")


def build(factory: ModuleFactory | None, *args: object) -> nn.Module:
    """Instantiate an injected norm/activation factory, or ``nn.Identity`` for ``None``."""
    return nn.Identity() if factory is None else factory(*args)


class ConvNormAct(nn.Module):
    """Convolution, normalization, activation: the unit every network here is made of.

    torchvision's rules (``Conv2dNormActivation``): ``padding=None`` is symmetric "same",
    ``bias=None`` means a bias only when there is no norm, ``act_layer=None`` is linear.
    ``norm_layer`` and ``act_layer`` are callables (``functools.partial(nn.BatchNorm2d, eps=1e-3)``)
    or ``None``. Submodules: ``conv``, ``norm``, ``act`` (``nn.Identity`` when absent).

    Example::

        >>> ConvNormAct(3, 32, 3, stride=2)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 32, 112, 112])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: Padding = None,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool | None = None,
        norm_layer: ModuleFactory | None = nn.BatchNorm2d,
        act_layer: ModuleFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        optional_callable("norm_layer", norm_layer)
        optional_callable("act_layer", act_layer)
        if bias is None:
            bias = norm_layer is None
        self.conv = Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.norm = build(norm_layer, out_channels)
        self.act = build(act_layer)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        return self.act(self.norm(self.conv(x)))  # (B, out, H/s, W/s)
