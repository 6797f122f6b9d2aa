"""Random weights whose activations stay alive, for checking deployment without trained weights.

PyTorch's default initialisation (uniform, variance ``1 / (3 fan_in)``) shrinks a signal by about
a third per layer: after the 50-odd layers of a MobileNet the logits are the classifier's bias
alone (features ~1e-10 at 224 px), so any two runtimes "agree" whatever they compute. Here convs
and linear layers get He initialisation (He et al. 2015, *Delving Deep into Rectifiers*, Section
2.2: variance ``2 / fan_in`` keeps it through ReLUs), every BatchNorm takes the statistics of a
random batch (as after training) and a random affine, so each layer's output has unit scale and
the logits depend on the input.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def lively_weights(model: nn.Module, example: torch.Tensor, seed: int = 0) -> nn.Module:
    """Re-initialise ``model`` in place as described above; returns it in eval mode.

    Example::

        >>> from sepconv.models import create_model
        >>> m = lively_weights(create_model("mobilenet_v2"), torch.randn(4, 3, 64, 64))
        >>> bool(m(torch.randn(2, 3, 64, 64)).std() > 0.1)
        True
    """
    g = torch.Generator().manual_seed(seed)
    norms = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            norms.append((m, m.momentum))
            m.momentum = 1.0  # running statistics := this batch's
            if m.weight is not None:
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=g))
    model.train()
    model(example)
    for m, momentum in norms:
        m.momentum = momentum
    return model.eval()
