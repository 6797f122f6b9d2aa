"""Batch normalization without the scale (TensorFlow's ``batch_norm(scale=False)``).

Ioffe & Szegedy 2015 learn a scale gamma and a shift beta per channel; TensorFlow lets a network drop
gamma when a ReLU follows (ReLU is positively homogeneous, so the next layer can absorb the scale). The
authors' released Inception v3 (TF-slim's ``inception_v3_arg_scope``, ``batch_norm_scale=False``) and
Keras' ``InceptionV3`` (``BatchNormalization(scale=False)``) are built that way: their BatchNorms have
beta, the moving mean and the moving variance, and no gamma. torchvision's port has both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._util.checks import ArgumentError, positive_int
from ._input import checked


class BatchNorm2dNoScale(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with the shift (``bias``) learnt and no scale: ``weight`` is ``None``, so
    ``y = (x - mean) / sqrt(var + eps) + bias``. Its parameters are ``bias`` only; the state dict holds
    ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``. BatchNorm folding and every
    ``isinstance(m, nn.BatchNorm2d)`` see it as a BatchNorm whose gamma is 1.

    Example::

        >>> bn = BatchNorm2dNoScale(8, eps=1e-3)
        >>> bn.weight is None, [n for n, _ in bn.named_parameters()]
        (True, ['bias'])
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        positive_int("num_features", num_features)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ArgumentError("momentum", f"momentum={momentum!r} must be a number in [0, 1]")
        super().__init__(num_features, eps=eps, momentum=float(momentum), affine=True, track_running_stats=True)
        self.weight = None  # type: ignore[assignment]  # no gamma
        self.in_channels = num_features  # what the input check expects

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # nn.BatchNorm2d's forward, without its tensor-dependent branches (its input-rank check, the
        # momentum=None running average), so that torch.fx traces through it: sepconv's modules are not
        # fx leaves as torch.nn's are.
        x = checked(self, x)  # (B, C, H, W)
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias, self.training, self.momentum,
                            self.eps)  # (B, C, H, W)
