"""The operators of the separable-convolution literature, one concept per module."""

from ._utils import make_divisible
from .blocks import DepthwiseSeparableBlock, InceptionModule, InvertedResidual, XceptionBlock
from .conv import Conv2d, ConvNormAct
from .depthwise import DepthwiseConv2d, GlobalDepthwiseConv2d, PointwiseConv2d, SeparableConv2d
from .grouped import ChannelShuffle, GroupedConv2d
from .padding import MaxPool2d, tf_same_pad
from .permuted import ChannelPermutation, PermutedGroupedConv2d
from .segmented import SegmentedSeparableConv2d
from .spatial import SpatiallySeparableConv2d
from .squeeze_excite import SqueezeExcite

__all__ = [
    "ChannelPermutation",
    "ChannelShuffle",
    "Conv2d",
    "ConvNormAct",
    "DepthwiseConv2d",
    "DepthwiseSeparableBlock",
    "GlobalDepthwiseConv2d",
    "GroupedConv2d",
    "InceptionModule",
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
