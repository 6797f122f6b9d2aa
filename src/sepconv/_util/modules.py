"""Module-tree surgery shared by separation and its replay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["replace_module", "tensors_in"]


def replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Point every parent attribute that holds ``old`` at ``new``."""
    for parent in root.modules():
        for key, child in list(parent._modules.items()):
            if child is old:
                setattr(parent, key, new)



def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a (nested) module input or output: tensors, lists, tuples and dict values."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)
