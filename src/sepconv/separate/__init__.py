"""Closed-form conversion of a trained model's standard convolutions into separable ones.

``separate(model, to="depthwise" | "spatial" | "grouped", ...)`` returns the converted copy and a
:class:`SeparationReport` (per-layer weight and output errors, params, MACs, times). The maths is
in :mod:`.factor`, one layer's conversion in :mod:`.convert`, the model walk in :mod:`.core`;
BatchNorm re-estimation in :mod:`.recalibrate`, accuracy and distillation through the training loop
in :mod:`.finetune` (imported on use: it needs :mod:`sepconv.train`), ``sepconv separate`` in
:mod:`.cli`, their checkpoint format in :mod:`.saving`.
"""

import sys

from .convert import TARGETS
from .core import separate
from .factor import depthwise_factors, grouped_factors, spatial_factors
from .modules import ChannelPermutation, PermutedGroupedConv2d
from .recalibrate import recalibrate_bn
from .report import LayerReport, SeparationReport
from .saving import apply_plan

__all__ = [
    "TARGETS",
    "apply_plan",
    "recalibrate_bn",
    "ChannelPermutation",
    "LayerReport",
    "PermutedGroupedConv2d",
    "SeparationReport",
    "depthwise_factors",
    "grouped_factors",
    "separate",
    "spatial_factors",
]


class _CallablePackage(sys.modules[__name__].__class__):
    """Lets ``sepconv.separate(model, ...)`` call :func:`separate`, as the issue writes it, while
    ``sepconv.separate`` stays this package (``from sepconv.separate import SeparationReport``)."""

    def __call__(self, *args, **kwargs):
        return separate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
