"""The input check at the top of every operator's and model's ``forward``, kept as a call in traced graphs.

A check that branches on a tensor's shape cannot be traced by ``torch.fx.symbolic_trace``: the
tracer's tensors are proxies, and an ``if`` on one raises. :func:`checked_input` is registered with
``torch.fx.wrap``, so symbolic tracing records it as one ``call_function`` node instead of tracing
into it: the traced ``GraphModule`` runs the same check on every real input and raises the same
``ValueError`` as eager (``MobileNetV2: expected 3 input channels, got 1``). ``torch.export`` traces
with shapes it knows, so there the check runs once, at export. The check returns its input, so the
graph's data flow goes through it and dead-code elimination keeps it.

``torch.fx.wrap`` patches the function's name in this module's namespace only (a
``from ._input import checked_input`` elsewhere would hold the unpatched function), so operators
call :func:`checked`, which calls :func:`checked_input` from here.

Example::

    >>> from sepconv.layers import ConvNormAct
    >>> traced = torch.fx.symbolic_trace(ConvNormAct(8, 16, 3))
    >>> [n.args[1:3] for n in traced.graph.nodes if n.target is checked_input]  # ConvNormAct's, its conv's
    [('ConvNormAct', 8), ('Conv2d', 8)]
"""

from __future__ import annotations

import torch
from torch import nn

from .._util.checks import four_d, input_channels


def checked_input(x: torch.Tensor, where: str, channels: int | None, groups: int = 1,
                  size: tuple[int, int] | None = None) -> torch.Tensor:
    """``x``, once it is a 4-D ``(B, channels, H, W)`` tensor (any channel count for ``channels=None``)
    whose channels ``groups`` divides and whose ``(H, W)`` is ``size`` (any for ``None``); otherwise a
    ``ValueError`` naming ``where``, what it expected and what it got."""
    if channels is None:
        four_d(x, where)
    else:
        input_channels(x, channels, where)
    if x.shape[1] % groups:
        raise ValueError(f"{where}: groups={groups} must divide the input's {x.shape[1]} channels")
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        raise ValueError(f"{where}: expected a {size[0]}x{size[1]} feature map, got {x.shape[-2]}x{x.shape[-1]}")
    return x


torch.fx.wrap("checked_input")


def checked(module: nn.Module, x: torch.Tensor, *, groups: int = 1,
            size: tuple[int, int] | None = None) -> torch.Tensor:
    """``module``'s input ``x``, checked by :func:`checked_input` under ``module``'s class name against
    its ``in_channels`` (when it has that attribute), ``groups`` and ``size``. The first line of
    every ``forward`` in :mod:`sepconv.layers` and :mod:`sepconv.models`."""
    return checked_input(x, type(module).__name__, getattr(module, "in_channels", None), groups, size)
