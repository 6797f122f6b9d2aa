"""Module-tree surgery shared by separation and its replay."""

from __future__ import annotations

from torch import nn

__all__ = ["replace_module"]


def replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Point every parent attribute that holds ``old`` at ``new``."""
    for parent in root.modules():
        for key, child in list(parent._modules.items()):
            if child is old:
                setattr(parent, key, new)

