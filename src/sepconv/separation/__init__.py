"""Closed-form conversion of a trained model's standard convolutions into separable ones.

``separate(model, to="depthwise" | "spatial" | "grouped", ...)`` returns the converted copy and a
:class:`SeparationReport` (per-layer weight and output errors, params, MACs, times). The maths is
in :mod:`.factor`, one layer's conversion in :mod:`.convert`, the model walk in :mod:`.core`;
BatchNorm re-estimation in :mod:`.recalibrate`, accuracy and distillation through the training loop
in :mod:`.finetune` (imported on use: it needs :mod:`sepconv.train`). ``sepconv separate`` is
:mod:`sepconv.cli.separate`; the replay of a saved separation is :mod:`sepconv.formats.plan`, and the
replacement modules are operators in :mod:`sepconv.layers`.
"""

from ..formats.plan import TARGETS
from ..layers.permuted import ChannelPermutation, PermutedGroupedConv2d
from .core import separate
from .factor import depthwise_factors, grouped_factors, spatial_factors
from .recalibrate import recalibrate_bn
from .report import LayerReport, SeparationReport

__all__ = [
    "TARGETS",
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
