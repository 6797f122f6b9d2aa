"""The building blocks of the separable networks, each as its paper draws it."""

from __future__ import annotations

import torch
from torch import nn

from .._util.checks import ArgumentError, optional_callable, positive_int
from ._input import checked
from .conv import ConvNormAct, ModuleFactory, build
from .depthwise import SeparableConv2d
from .padding import MaxPool2d, Padding


class DepthwiseSeparableBlock(nn.Module):
    """MobileNetV1's unit: 3x3 depthwise-BN-ReLU, then 1x1 pointwise-BN-ReLU.

    Howard et al. 2017, *MobileNets*, Fig. 3 (right). Submodules ``dw`` and ``pw`` are
    :class:`ConvNormAct`.

    Example::

        >>> DepthwiseSeparableBlock(32, 64)(torch.zeros(1, 32, 112, 112)).shape
        torch.Size([1, 64, 112, 112])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        kernel_size: int = 3,
        padding: Padding = None,
        norm_layer: ModuleFactory | None = nn.BatchNorm2d,
        act_layer: ModuleFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        self.dw = ConvNormAct(in_channels, in_channels, kernel_size, stride, padding, groups=in_channels,
                              norm_layer=norm_layer, act_layer=act_layer)
        self.pw = ConvNormAct(in_channels, out_channels, 1, padding=0, norm_layer=norm_layer, act_layer=act_layer)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, C, H, W)
        x = self.dw(x)  # (B, C, H/s, W/s)
        return self.pw(x)  # (B, N, H/s, W/s)


class InvertedResidual(nn.Module):
    """Inverted residual with linear bottleneck (MobileNetV2/V3).

    1x1 expand (``expand``, skipped when ``mid_channels == in_channels``) -> ``k x k`` depthwise
    (``dw``) -> optional squeeze-excite (``se``) -> linear 1x1 projection (``project``); the
    shortcut is added only when ``stride == 1`` and ``in_channels == out_channels``.
    Sandler et al. 2018, *MobileNetV2*, Table 1 and Fig. 3(b); Howard et al. 2019, *MobileNetV3*,
    Fig. 4. ``act_layer`` is ``nn.ReLU6`` (V2), ``nn.ReLU`` or ``nn.Hardswish`` (V3);
    ``se_layer`` is a callable ``channels -> module`` such as ``SqueezeExcite``.

    Example::

        >>> InvertedResidual(24, 24, mid_channels=144)(torch.zeros(1, 24, 56, 56)).shape
        torch.Size([1, 24, 56, 56])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        act_layer: ModuleFactory | None = nn.ReLU6,
        se_layer: ModuleFactory | None = None,
        norm_layer: ModuleFactory | None = nn.BatchNorm2d,
        padding: Padding = None,
    ) -> None:
        super().__init__()
        positive_int("mid_channels", mid_channels)
        positive_int("stride", stride)
        optional_callable("se_layer", se_layer)
        self.use_shortcut = stride == 1 and in_channels == out_channels
        if mid_channels != in_channels:
            self.expand = ConvNormAct(in_channels, mid_channels, 1, padding=0, norm_layer=norm_layer,
                                      act_layer=act_layer)
        else:
            self.expand = nn.Identity()
        self.dw = ConvNormAct(mid_channels, mid_channels, kernel_size, stride, padding, dilation,
                              groups=mid_channels, norm_layer=norm_layer, act_layer=act_layer)
        self.se = build(se_layer, mid_channels)
        self.project = ConvNormAct(mid_channels, out_channels, 1, padding=0, norm_layer=norm_layer, act_layer=None)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        y = self.expand(x)  # (B, mid, H, W)
        y = self.dw(y)  # (B, mid, H/s, W/s)
        y = self.se(y)
        y = self.project(y)  # (B, out, H/s, W/s)
        return x + y if self.use_shortcut else y


class XceptionBlock(nn.Module):
    """Xception's residual block of ``reps`` separable convs (Chollet 2017, Fig. 5).

    Each rep is [ReLU] -> ``SeparableConv2d`` -> BN; the first rep changes the width when
    ``grow_first`` (else the last does); ``start_with_relu=False`` drops the first ReLU (the
    block right after the stem). With ``stride > 1`` a 3x3 max-pool ends the branch and the
    shortcut is a strided 1x1 conv + BN; otherwise the shortcut is the identity when the width
    is kept. ``padding="tf_same"`` pads convs and pool as Keras does.

    Example::

        >>> XceptionBlock(64, 128, reps=2, stride=2, start_with_relu=False)(torch.zeros(1, 64, 147, 147)).shape
        torch.Size([1, 128, 74, 74])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        reps: int,
        stride: int = 1,
        start_with_relu: bool = True,
        grow_first: bool = True,
        norm_layer: ModuleFactory | None = nn.BatchNorm2d,
        padding: Padding = "same",
    ) -> None:
        super().__init__()
        positive_int("reps", reps)
        positive_int("stride", stride)
        optional_callable("norm_layer", norm_layer)
        if out_channels != in_channels or stride != 1:
            self.shortcut = ConvNormAct(in_channels, out_channels, 1, stride, padding=0,
                                        norm_layer=norm_layer, act_layer=None)
        else:
            self.shortcut = nn.Identity()
        widths = [in_channels] + [out_channels if grow_first else in_channels] * (reps - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            if i > 0 or start_with_relu:
                layers.append(nn.ReLU())
            layers += [SeparableConv2d(cin, cout, 3, padding=padding), build(norm_layer, cout)]
        if stride != 1:
            layers.append(MaxPool2d(3, stride, padding=padding))
        self.branch = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        return self.branch(x) + self.shortcut(x)  # (B, out, H/s, W/s)


class InceptionModule(nn.Module):
    """GoogLeNet's Inception module (Szegedy et al. 2015, Fig. 2(b) and Table 1).

    Four branches concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max-pool -> 1x1.
    The original has no normalization (``norm_layer=None``: convs with bias). With 28x28x192 in
    and (64, 96->128, 16->32, 32) it gives 28x28x256 (inception (3a)). ``branch5_kernel`` is the
    kernel of the "5x5" branch: 5 in the paper; torchvision's GoogLeNet has 3 there (a known slip,
    pytorch/vision#906, kept for its weights), with BatchNorm after every conv.

    Example::

        >>> InceptionModule(192, 64, 96, 128, 16, 32, 32)(torch.zeros(1, 192, 28, 28)).shape
        torch.Size([1, 256, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
        norm_layer: ModuleFactory | None = None,
        act_layer: ModuleFactory | None = nn.ReLU,
        branch5_kernel: int = 5,
    ) -> None:
        super().__init__()
        for name, value in [("ch1x1", ch1x1), ("ch3x3_reduce", ch3x3_reduce), ("ch3x3", ch3x3),
                            ("ch5x5_reduce", ch5x5_reduce), ("ch5x5", ch5x5), ("pool_proj", pool_proj),
                            ("branch5_kernel", branch5_kernel)]:
            positive_int(name, value)
        if branch5_kernel % 2 == 0:
            raise ArgumentError("branch5_kernel", f"branch5_kernel={branch5_kernel} must be odd (the branch keeps "
                                "the input's size)")
        cna = dict(norm_layer=norm_layer, act_layer=act_layer)
        self.branch1 = ConvNormAct(in_channels, ch1x1, 1, **cna)
        self.branch3 = nn.Sequential(ConvNormAct(in_channels, ch3x3_reduce, 1, **cna),
                                     ConvNormAct(ch3x3_reduce, ch3x3, 3, **cna))
        self.branch5 = nn.Sequential(ConvNormAct(in_channels, ch5x5_reduce, 1, **cna),
                                     ConvNormAct(ch5x5_reduce, ch5x5, branch5_kernel, **cna))
        self.branch_pool = nn.Sequential(MaxPool2d(3, 1, padding=1), ConvNormAct(in_channels, pool_proj, 1, **cna))
        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, in, H, W)
        branches = [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)]
        return torch.cat(branches, dim=1)  # (B, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)
