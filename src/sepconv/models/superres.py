"""Super-resolution networks: SSNet-M and SSNet (depthwise-separable, recursive, super-sampling) and
the three baselines they were compared with, SRCNN, FSRCNN and ESPCN.

Registered with ``task="super_resolution"`` (:data:`sepconv.models.registry.TASKS`): no
``num_classes`` or ``features_only``; every model takes ``scale`` (2, 3 or 4) and ``in_chans``
(channels in and out). The input contract is the registry's ``sr_input``: ``"low_resolution"``
(the ``(B, C, H, W)`` low-resolution image; the output is ``(B, C, scale*H, scale*W)``) for
SSNet-M, SSNet, FSRCNN and ESPCN, ``"upsampled"`` (the image already upscaled by bicubic
interpolation to ``(B, C, scale*H, scale*W)``, the output the same size) for SRCNN, as its paper
does. ``in_chans`` defaults to 1: the papers super-resolve the luminance (Y of YCbCr) and upscale
the chroma by bicubic interpolation; ``in_chans=3`` super-resolves RGB. Images are floats in [0, 1].

Example::

    >>> create_model("ssnet_m", scale=3)(torch.zeros(1, 1, 24, 32)).shape
    torch.Size([1, 1, 72, 96])
    >>> create_model("srcnn", scale=3)(torch.zeros(1, 1, 72, 96)).shape  # input upsampled already
    torch.Size([1, 1, 72, 96])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._util.checks import ArgumentError, boolean, positive_int
from ..layers import Conv2d, ConvNormAct, SeparableConv2d
from ..layers._input import checked
from .provenance import Provenance
from .registry import PaperFigures, register_model

__all__ = ["ESPCN", "FSRCNN", "SCALES", "SRCNN", "SSNET", "SSNET_M", "SSNet", "SSNetConfig", "SuperResolutionNet",
           "bicubic_upscale"]

SCALES = (2, 3, 4)  # the upscaling factors every model here is built for
INPUT_SIZE = 256  # the registry's input size: the low-resolution image's side

SSNET_PAPER = ("Hung, Zhang & Jiang 2019, Real-Time Image Super-Resolution Using Recursive Depthwise Separable "
               "Convolution Network (IEEE Access 7, doi:10.1109/ACCESS.2019.2929223); layer table: sepconv's")
SRCNN_PAPER = "Dong et al. 2016, SRCNN (TPAMI 38(2)), Section 3.1 and 4.3 (9-1-5, n1=64, n2=32)"
FSRCNN_PAPER = "Dong, Loy & Tang 2016, FSRCNN (ECCV), Section 3.2, FSRCNN(56, 12, 4)"
ESPCN_PAPER = "Shi et al. 2016, ESPCN (CVPR), Section 3 and 4.1 (l=3: 5x5x64, 3x3x32, 3x3xr^2C)"


def check_scale(scale: Any) -> int:
    """``scale`` as an int, once it is one of :data:`SCALES`."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in SCALES:
        raise ArgumentError("scale", f"scale={scale!r} must be one of {', '.join(map(str, SCALES))} "
                                     "(the upscaling factor)")
    return scale


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``x`` upscaled ``scale`` times by bicubic interpolation (``align_corners=False``, as
    MATLAB's ``imresize`` and PIL place pixel centres), not clamped."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class SuperResolutionNet(nn.Module):
    """Base of the super-resolution models: their ``scale`` and ``in_channels`` (the channels of
    input and output), checked once here, and ``provenance`` (set by the registry)."""

    provenance: Provenance | None = None

    def __init__(self, scale: int, in_chans: int) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.in_channels = positive_int("in_chans", in_chans)


# ---- SSNet-M and SSNet ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SSNetConfig:
    """One SSNet variant: the columns a layer table would have (the paper's is not public text;
    see :class:`SSNet` for what is the paper's and what is sepconv's)."""

    width: int  # feature channels of every low-resolution layer
    block_layers: int  # depthwise-separable convs in the recursive block
    recursions: int  # passes through the one shared block
    super_sampling: int  # over-sampling factor k of the output image (1: none)


# sepconv's choices, sized by MACs at a 360x640 -> 720x1280 upscale (x2): SSNet-M about FSRCNN's
# (2.7G against 2.9G), SSNet about SRCNN's (9.1G against 7.4G); both far fewer parameters.
SSNET_M = SSNetConfig(width=32, block_layers=2, recursions=4, super_sampling=2)
SSNET = SSNetConfig(width=64, block_layers=2, recursions=4, super_sampling=2)


class SSNet(SuperResolutionNet):
    """SSNet-M / SSNet (Hung, Zhang & Jiang 2019): a recursive depthwise-separable network with
    super-sampling. The paper's abstract states three principles, and this is how each is built:

    1. *Depthwise-separable convolution* (the paper's): every layer after the first reading the
       image is a 3x3 depthwise + 1x1 pointwise pair (:class:`~sepconv.layers.SeparableConv2d`,
       no activation between them, as Xception).
    2. *Recursion* (the paper's): one block of ``block_layers`` separable convs + ReLU (the last one
       linear) is applied ``recursions`` times with the same weights, each pass added to the first
       layer's features (DRRN's multi-path form, Tai et al. 2017): ``h = f0 + block(h)``. Depth and
       receptive field grow with ``recursions``; parameters do not.
    3. *Super-sampling* (the paper's idea; its form here sepconv's): a sub-pixel convolution (a
       separable conv to ``in_chans * (scale*k)^2`` channels, then ``nn.PixelShuffle(scale*k)``,
       ESPCN's periodic shuffling) over-samples the output image ``k = super_sampling`` times
       beyond the target, and a learned ``2k x 2k`` convolution with stride ``k`` (padding
       ``k/2``) down-samples it to ``scale`` times the input: an adaptive anti-aliasing filter
       instead of a fixed one. ``super_sampling=1`` turns it off (sub-pixel conv straight to
       ``scale``), the ablation.

    sepconv's choices, where the paper's layer table could not be found (it is not in the abstract
    or any public text the project could reach): the widths, depths and recursions of
    :data:`SSNET_M` and :data:`SSNET`; ReLU; no normalisation (EDSR, Lim et al. 2017: BatchNorm
    hurts super-resolution); a first 3x3 standard conv (a depthwise conv over one channel is no
    factorisation); ``global_residual`` (VDSR's residual learning, Kim et al. 2016: the network
    adds its output to the bicubic upscale of its input, so an untrained network is bicubic);
    initialisation: Kaiming-normal fan-in for ReLU layers (He et al. 2015), the recursive block's
    last pointwise conv zero (so that at initialisation every pass is the identity and the
    recursion cannot blow up, as Goyal et al. 2017 zero the last BN of a residual block), the
    sub-pixel conv normal with std 0.001 (SRCNN's and FSRCNN's rule for the reconstructing layer),
    the down-sampling filter a box average (the down-sampling starts as area averaging), biases zero.

    Example::

        >>> SSNet(scale=2)(torch.zeros(1, 1, 36, 64)).shape
        torch.Size([1, 1, 72, 128])
    """

    def __init__(
        self,
        scale: int = 2,
        in_chans: int = 1,
        width: int = SSNET_M.width,
        block_layers: int = SSNET_M.block_layers,
        recursions: int = SSNET_M.recursions,
        super_sampling: int = SSNET_M.super_sampling,
        global_residual: bool = True,
    ) -> None:
        super().__init__(scale, in_chans)
        positive_int("width", width)
        positive_int("block_layers", block_layers)
        positive_int("recursions", recursions)
        if super_sampling not in (1, 2) or isinstance(super_sampling, bool):
            raise ArgumentError("super_sampling", f"super_sampling={super_sampling!r} must be 1 (off) or 2 "
                                                  "(the output over-sampled twice, then down-sampled)")
        self.recursions, self.super_sampling = recursions, super_sampling
        self.global_residual = boolean("global_residual", global_residual)
        relu = partial(nn.ReLU, inplace=True)
        self.head = ConvNormAct(in_chans, width, 3, norm_layer=None, act_layer=relu)
        layers: list[nn.Module] = []
        for i in range(block_layers):
            layers.append(SeparableConv2d(width, width, 3, bias=True))
            if i < block_layers - 1:
                layers.append(relu())
        self.block = nn.Sequential(*layers)  # shared by every recursion
        over = scale * super_sampling
        self.upsample = SeparableConv2d(width, in_chans * over * over, 3, bias=True)
        self.shuffle = nn.PixelShuffle(over)
        k = super_sampling
        self.downsample = (Conv2d(in_chans, in_chans, 2 * k, stride=k, padding=k // 2) if k > 1 else nn.Identity())
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """See the class docstring (sepconv's choice, the paper's initialisation not being known)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.zeros_(self.block[-1].pw.weight)
        nn.init.normal_(self.upsample.pw.weight, 0.0, 0.001)
        if isinstance(self.downsample, nn.Conv2d):
            c = self.in_channels
            box = torch.zeros_like(self.downsample.weight)
            for i in range(c):  # each channel averages its own 2k x 2k window
                box[i, i] = 1.0 / box[i, i].numel()
            self.downsample.weight.copy_(box)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, C, H, W)
        f0 = self.head(x)  # (B, width, H, W)
        h = f0
        for _ in range(self.recursions):  # one block, its weights shared by every pass
            h = f0 + self.block(h)  # (B, width, H, W)
        y = self.shuffle(self.upsample(h))  # (B, C, s*k*H, s*k*W): the over-sampled image
        y = self.downsample(y)  # (B, C, s*H, s*W)
        if self.global_residual:
            y = y + bicubic_upscale(x, self.scale)  # (B, C, s*H, s*W)
        return y


def _config_kwargs(config: SSNetConfig) -> dict[str, int]:
    return {"width": config.width, "block_layers": config.block_layers, "recursions": config.recursions,
            "super_sampling": config.super_sampling}


@register_model("ssnet_m", paper=SSNET_PAPER, input_size=INPUT_SIZE, task="super_resolution",
                sr_input="low_resolution", **_config_kwargs(SSNET_M))
def ssnet_m(**kwargs: Any) -> SSNet:
    """SSNet-M, the mobile variant: :data:`SSNET_M` (32 channels, a 2-layer block recursed 4 times)."""
    return SSNet(**kwargs)


@register_model("ssnet", paper=SSNET_PAPER, input_size=INPUT_SIZE, task="super_resolution",
                sr_input="low_resolution", **_config_kwargs(SSNET))
def ssnet(**kwargs: Any) -> SSNet:
    """SSNet: :data:`SSNET` (64 channels, a 2-layer block recursed 4 times)."""
    return SSNet(**kwargs)


# ---- the baselines -------------------------------------------------------------------------------

class SRCNN(SuperResolutionNet):
    """SRCNN (Dong et al. 2016, *Image Super-Resolution Using Deep Convolutional Networks*, TPAMI):
    patch extraction ``f1 x f1`` to ``n1`` channels + ReLU, non-linear mapping ``f2 x f2`` to ``n2``
    + ReLU, reconstruction ``f3 x f3`` to the image (Section 3.1), the base setting 9-1-5 with
    n1=64, n2=32 (Section 4.3), on the Y channel. Its input is the low-resolution image upscaled by
    bicubic interpolation to the output size (registry ``sr_input="upsampled"``; ``scale`` only
    records that factor). The paper's convolutions have no padding (the output is ``f1+f2+f3-3``
    pixels smaller); here they are zero-padded to keep the size (sepconv's choice, as most
    reimplementations). Weights normal with std 0.001, biases zero (Section 4, the paper's).
    8,032 weights as the paper counts them (Section 4.3), 8,129 parameters with the biases.

    Example::

        >>> SRCNN(scale=2)(torch.zeros(1, 1, 66, 66)).shape
        torch.Size([1, 1, 66, 66])
    """

    def __init__(self, scale: int = 2, in_chans: int = 1, f1: int = 9, f2: int = 1, f3: int = 5, n1: int = 64,
                 n2: int = 32) -> None:
        super().__init__(scale, in_chans)
        for name, value in (("f1", f1), ("f2", f2), ("f3", f3)):
            if positive_int(name, value) % 2 == 0:
                raise ArgumentError(name, f"{name}={value} must be odd (a centred filter keeps the image's size)")
        self.extract = ConvNormAct(in_chans, n1, f1, norm_layer=None)
        self.map = ConvNormAct(n1, n2, f2, norm_layer=None)
        self.reconstruct = Conv2d(n2, in_chans, f3)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.001)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, C, sH, sW): bicubic-upscaled already
        x = self.extract(x)  # (B, n1, sH, sW)
        x = self.map(x)  # (B, n2, sH, sW)
        return self.reconstruct(x)  # (B, C, sH, sW)


@register_model("srcnn", paper=SRCNN_PAPER, input_size=INPUT_SIZE, task="super_resolution", sr_input="upsampled",
                figures=[PaperFigures("Dong et al. 2016, SRCNN (TPAMI), Section 4.3 (weights only, no biases)",
                                      params=8032)])
def srcnn(**kwargs: Any) -> SRCNN:
    """SRCNN 9-1-5 (64, 32), on a bicubic-upscaled input."""
    return SRCNN(**kwargs)


def _conv_prelu(in_channels: int, out_channels: int, kernel_size: int) -> ConvNormAct:
    """A conv with bias and a channel-wise PReLU (He et al. 2015), FSRCNN's unit."""
    return ConvNormAct(in_channels, out_channels, kernel_size, norm_layer=None,
                       act_layer=partial(nn.PReLU, num_parameters=out_channels))


class FSRCNN(SuperResolutionNet):
    """FSRCNN(d, s, m) (Dong, Loy & Tang 2016, *Accelerating the Super-Resolution Convolutional Neural
    Network*, Section 3.2): feature extraction Conv(5, d) on the low-resolution image, shrinking
    Conv(1, s), ``m`` mapping layers Conv(3, s), expanding Conv(1, d), each with a PReLU, then a
    9x9 deconvolution (``nn.ConvTranspose2d``) with stride ``scale`` to the image. FSRCNN(56, 12, 4)
    is the paper's model: 12,464 weights as it counts them (Section 3.3; biases and PReLU slopes
    not counted), 12,809 parameters here (with 173 biases and 172 slopes). The deconvolution's
    padding (4, output padding ``scale - 1``) makes the output exactly ``scale`` times the input.
    Initialisation as the paper (Section 4.1): convolutions by He et al.'s rule (Kaiming-normal,
    fan-in), the deconvolution normal with std 0.001, biases zero; PReLU slopes start at 0.25.

    Example::

        >>> FSRCNN(scale=3)(torch.zeros(1, 1, 20, 30)).shape
        torch.Size([1, 1, 60, 90])
    """

    def __init__(self, scale: int = 2, in_chans: int = 1, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__(scale, in_chans)
        positive_int("m", m)
        self.extract = _conv_prelu(in_chans, positive_int("d", d), 5)
        self.shrink = _conv_prelu(d, positive_int("s", s), 1)
        self.map = nn.Sequential(*(_conv_prelu(s, s, 3) for _ in range(m)))
        self.expand = _conv_prelu(s, d, 1)
        self.deconv = nn.ConvTranspose2d(d, in_chans, 9, stride=scale, padding=4, output_padding=scale - 1)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.deconv.weight, 0.0, 0.001)
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, C, H, W)
        x = self.extract(x)  # (B, d, H, W)
        x = self.shrink(x)  # (B, s, H, W)
        x = self.map(x)  # (B, s, H, W)
        x = self.expand(x)  # (B, d, H, W)
        return self.deconv(x)  # (B, C, scale*H, scale*W)


@register_model("fsrcnn", paper=FSRCNN_PAPER, input_size=INPUT_SIZE, task="super_resolution",
                sr_input="low_resolution",
                figures=[PaperFigures("Dong, Loy & Tang 2016, FSRCNN, Section 3.3 (weights only)", params=12464)])
def fsrcnn(**kwargs: Any) -> FSRCNN:
    """FSRCNN(56, 12, 4)."""
    return FSRCNN(**kwargs)


class ESPCN(SuperResolutionNet):
    """ESPCN (Shi et al. 2016, *Real-Time Single Image and Video Super-Resolution Using an Efficient
    Sub-Pixel Convolutional Neural Network*): ``l = 3`` layers on the low-resolution image,
    ``(f1, n1) = (5, 64)``, ``(f2, n2) = (3, 32)`` with tanh (the paper chose tanh over ReLU,
    Section 4.1), then a ``3x3`` conv to ``r^2 C`` channels and the periodic shuffling
    (``nn.PixelShuffle(r)``) to ``(C, rH, rW)`` (Section 2.2, the efficient sub-pixel convolution).
    The paper states no initialisation; sepconv uses Glorot-uniform (Glorot & Bengio 2010, the rule
    for tanh), biases zero.

    Example::

        >>> ESPCN(scale=2)(torch.zeros(1, 1, 16, 16)).shape
        torch.Size([1, 1, 32, 32])
    """

    def __init__(self, scale: int = 2, in_chans: int = 1, n1: int = 64, n2: int = 32) -> None:
        super().__init__(scale, in_chans)
        self.extract = ConvNormAct(in_chans, positive_int("n1", n1), 5, norm_layer=None, act_layer=nn.Tanh)
        self.map = ConvNormAct(n1, positive_int("n2", n2), 3, norm_layer=None, act_layer=nn.Tanh)
        self.subpixel = Conv2d(n2, in_chans * scale * scale, 3)
        self.shuffle = nn.PixelShuffle(scale)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checked(self, x)  # (B, C, H, W)
        x = self.extract(x)  # (B, n1, H, W)
        x = self.map(x)  # (B, n2, H, W)
        x = self.subpixel(x)  # (B, C*r*r, H, W)
        return self.shuffle(x)  # (B, C, r*H, r*W)


@register_model("espcn", paper=ESPCN_PAPER, input_size=INPUT_SIZE, task="super_resolution",
                sr_input="low_resolution")
def espcn(**kwargs: Any) -> ESPCN:
    """ESPCN with the paper's l = 3 layers, tanh."""
    return ESPCN(**kwargs)
