"""The operators of the separable-convolution literature, one concept per module."""

from ._utils import make_divisible
from .blocks import DepthwiseSeparableBlock, InceptionModule, InvertedResidual, XceptionBlock
from .conv import Conv2d, ConvNormAct
from .depthwise import DepthwiseConv2d, GlobalDepthwiseConv2d, PointwiseConv2d, SeparableConv2d
from .grouped import ChannelShuffle, GroupedConv2d
from .inception import (
    GoogLeNetAux,
    InceptionV3A,
    InceptionV3Aux,
    InceptionV3B,
    InceptionV3C,
    InceptionV3D,
    InceptionV3E,
)
from .norm import BatchNorm2dNoScale
from .padding import MaxPool2d, tf_same_pad
from .permuted import ChannelPermutation, PermutedGroupedConv2d
from .residual import BasicBlock, Bottleneck
from .segmented import SegmentedSeparableConv2d
from .spatial import SpatiallySeparableConv2d
from .squeeze_excite import SqueezeExcite

__all__ = [
    "BasicBlock",
    "BatchNorm2dNoScale",
    "Bottleneck",
    "ChannelPermutation",
    "ChannelShuffle",
    "Conv2d",
    "ConvNormAct",
    "DepthwiseConv2d",
    "DepthwiseSeparableBlock",
    "GlobalDepthwiseConv2d",
    "GoogLeNetAux",
    "GroupedConv2d",
    "InceptionModule",
    "InceptionV3A",
    "InceptionV3Aux",
    "InceptionV3B",
    "InceptionV3C",
    "InceptionV3D",
    "InceptionV3E",
    "InvertedResidual",
    "MaxPool2d",
    "PermutedGroupedConv2d",
    "PointwiseConv2d",
    "SegmentedSeparableConv2d",
    "SeparableConv2d",
    "SpatiallySeparableConv2d",
    "SqueezeExcite",
    "XceptionBlock",
    "make_divisible",
    "tf_same_pad",
]
