"""Re-estimate BatchNorm statistics after separation (AdaBN: Li et al. 2016, *Revisiting Batch
Normalization For Practical Domain Adaptation*).

A truncated conv's outputs have less energy than the original's, so the BatchNorm after it
normalises with stale statistics, and every layer downstream sees shifted inputs. Running the
separated model on a few hundred real images in train mode, with a cumulative average
(``momentum=None``) from reset statistics, gives each BatchNorm the mean and variance of what it
now sees. No weights change; nothing is learned. On random inputs this would be harmful, so it
takes real images only.
"""

from __future__ import annotations

import torch
from torch import nn

from .._util.checks import positive_int


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, batch_size: int = 64) -> int:
    """Reset and re-estimate the running statistics of every BatchNorm in ``model`` (in place)
    from ``images`` in batches of ``batch_size``; return how many BatchNorm layers were updated.

    Training flags and momenta are restored afterwards.

    Example::

        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
        >>> recalibrate_bn(net, torch.randn(16, 3, 8, 8))
        1
    """
    positive_int("batch_size", batch_size)
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images must be a 4-D (B, C, H, W) tensor, got {getattr(images, 'shape', images)!r}")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in norms}
    try:
        model.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average: every batch weighs the same
            m.train()
        for chunk in images.split(batch_size):
            model(chunk)
    finally:
        for m, training in modes.items():
            m.training = training
        for m, momentum in momenta.items():
            m.momentum = momentum
    return len(norms)
