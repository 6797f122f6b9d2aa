"""Random weights with trained-looking BatchNorms, for checking deployment without trained weights.

A fresh zoo model is initialised as torchvision initialises MobileNetV2/V3
(:meth:`sepconv.models._base.ConvNet.init_weights`), so its output depends on its input. Its
BatchNorms, though, are the identity (running mean 0, variance 1, gamma 1, beta 0): folding them
into the convs changes nothing, so a test of folding or of int8 calibration would prove nothing,
and in eval mode nothing rescales the activations, which Kaiming fan-out shrinks at every depthwise
conv (by about 2/C in variance): a fresh MobileNetV2's logits are ~1e-9 at 224 px, which any
absolute tolerance accepts whatever two runtimes compute. Here every BatchNorm takes the statistics
of a random batch (as after training) and a random affine, and convs and linear layers get He
initialisation (He et al. 2015, *Delving Deep into Rectifiers*, Section 2.2: variance
``2 / fan_in``) with small random biases, so that each layer's output has unit scale and every
folded bias is non-zero. Use it only where a test needs such statistics; a model's own
initialisation is enough to check that its output depends on its input.
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
