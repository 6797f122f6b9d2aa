"""Deep Roots' root modules (Ioannou et al. 2017, *Deep Roots: Improving CNN Efficiency with
Hierarchical Filter Groups*, CVPR, arXiv 1605.06489): the standard-convolution baselines' ``groups``
switch.

A root module replaces a spatial convolution by the same convolution in ``groups`` filter groups
(each filter sees ``1/groups`` of the input maps) followed by a 1x1 convolution that mixes the
groups (Section 3 and Fig. 4: "each spatial convolutional layer is followed by a low-dimensional
embedding (1x1 convolution)"). Filter groups as structured sparsity: AlexNet's two groups
(Krizhevsky et al. 2012, :mod:`sepconv.models.alexnet`) were a two-GPU necessity, yet the grouped
net matched the one-group one with far fewer weights (Deep Roots, Section 1), and Deep Roots makes
the grouping the design. ``groups=1`` is the plain convolution (no 1x1 is added): the default
models are unchanged. With as many groups as input channels the grouped conv is depthwise and the
module is a depthwise-separable layer: the spectrum from a standard conv to MobileNets' runs
through ``groups``.

Example::

    >>> root = conv_or_root(64, 128, 3, groups=4)
    >>> [name for name, _ in root.named_children()], root(torch.zeros(1, 64, 8, 8)).shape
    (['root', 'mix'], torch.Size([1, 128, 8, 8]))
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from .._util.checks import ArgumentError, positive_int
from ..layers import ConvNormAct

DEEP_ROOTS = "Ioannou et al. 2017, Deep Roots, arXiv 1605.06489"


def check_groups(groups: int, layers: Sequence[tuple[int, int]]) -> int:
    """``groups`` as a positive int dividing the input and output channels of each of ``layers``
    (``(in, out)`` pairs, the convolutions it turns into root modules)."""
    positive_int("groups", groups)
    for i, (cin, cout) in enumerate(layers):
        if cin % groups or cout % groups:
            raise ArgumentError("groups", f"groups={groups} must divide the channels of every grouped layer: "
                                f"layer {i} maps {cin} -> {cout} channels")
    return groups


def conv_or_root(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 **cna: Any) -> nn.Module:
    """A ``kernel_size`` :class:`~sepconv.layers.ConvNormAct` (``groups=1``), or Deep Roots' root
    module: that conv in ``groups`` filter groups (``root``), then a 1x1 conv of ``out_channels``
    filters (``mix``), each with the same norm and activation (``cna``: ConvNormAct's keywords)."""
    conv = ConvNormAct(in_channels, out_channels, kernel_size, stride, groups=groups, **cna)
    if groups == 1:
        return conv
    mix = ConvNormAct(out_channels, out_channels, 1, **{**cna, "padding": 0})
    return nn.Sequential(OrderedDict(root=conv, mix=mix))
