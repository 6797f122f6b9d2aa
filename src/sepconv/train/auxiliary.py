"""Training with auxiliary classifiers (GoogLeNet §5, Inception v3 §4): their losses added, weighted.

A model built with ``aux_logits=True`` (``googlenet``, ``inception_v3``) keeps ``forward`` returning
the main logits only and gives its auxiliary heads' logits from ``forward_aux``; it states their
loss weights in ``model.aux_weights`` (GoogLeNet 0.3 each, as the paper; Inception v3 0.4, as the
authors' released training script). For training, :class:`WithAuxiliary` makes ``forward`` call
``forward_aux`` — wrapped *before* DDP or torch.compile, so both see one ordinary module — and
:func:`auxiliary_loss` adds ``sum(w * loss(aux, y))`` to the main loss. Evaluation, export and
every other command use the model itself: the auxiliary heads never change what a model returns.

Example::

    >>> model = create_model("googlenet", aux_logits=True, width_mult=0.25, num_classes=10)
    >>> main, *aux = WithAuxiliary(model)(torch.zeros(2, 3, 224, 224))  # the heads' pools need 224 px
    >>> auxiliary_loss(nn.CrossEntropyLoss(), (main, *aux), torch.zeros(2, dtype=torch.long),
    ...                model.aux_weights).shape
    torch.Size([])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["WithAuxiliary", "aux_weights", "auxiliary_loss"]


def aux_weights(model: nn.Module) -> tuple[float, ...]:
    """The loss weights of ``model``'s auxiliary heads: ``()`` when it has none (or they are off)."""
    return tuple(getattr(model, "aux_weights", ()) or ())


class WithAuxiliary(nn.Module):
    """``model`` seen by the training step: ``forward`` is ``model.forward_aux`` (main logits first)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.forward_aux(x))


def auxiliary_loss(criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   outputs: Sequence[torch.Tensor], target: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """``criterion(main) + sum(w * criterion(aux))`` in fp32, ``outputs`` the main logits then the
    auxiliary heads' in ``weights``' order."""
    main, *aux = outputs
    if len(aux) != len(weights):
        raise ValueError(f"outputs: {len(aux)} auxiliary outputs for {len(weights)} weights")
    loss = criterion(main.float(), target)
    for weight, logits in zip(weights, aux):
        loss = loss + weight * criterion(logits.float(), target)
    return loss
