"""Functional ops: what a parent module's own ``forward`` computes between its children's calls.

The per-layer profile replays units (:func:`sepconv.cost.leaf_modules`: modules without children,
and norms, convs and the like with children). What a parent computes itself is no unit's: the
residual ``x + y`` of an inverted residual block, the squeeze-and-excitation ``x * gate``,
``torch.cat`` of the branches of an Inception module or a ShuffleNet unit, a channel shuffle's
``view``/``transpose``, ``flatten``, an ``F.relu`` written inline. Left out, the layers add up to
less than the model, and nothing says what is missing.

:func:`capture_functional` records each such op during one forward pass, at the dispatch level: a
``torch.utils._python_dispatch.TorchDispatchMode`` sees every aten op that runs, however the Python
wrote it (an operator, a tensor method, ``torch.cat``, ``F.gelu``), and only ops that compute: a
``torch.overrides.TorchFunctionMode`` would also see ``x.shape``, ``x.size()`` and ``x.dim()`` and
would need a rule per spelling. The op's schema says which arguments it writes in place
(``x += y``, ``x.mul_(gate)``), so the replay puts them back each time (untimed) instead of adding
the residual again and again. Each op is attributed to the innermost module running (its
qualified name; ``(model)`` for the root's own forward); ops run while a unit runs are that unit's.
Under ``torch.inference_mode`` (as the profile runs) composite ops arrive whole (``linear``,
``layer_norm``, ``reshape``), so each recorded op is one call the Python made.

Names are stable: ``parent:op`` for the first op of that aten name in that parent,
``parent:op#2`` ... for the next ones, over the whole forward (``blocks.3:add``, ``(model):flatten``;
an in-place op keeps its ``_``: ``blocks.3:add_``). ``kind`` is :func:`sepconv.cost.op_kind`'s
(:data:`FUNCTIONAL_KINDS`): a "view" aliases its input and moves no data (its bytes are 0), but it
still costs a dispatch and is timed as it runs.

Example::

    >>> class Residual(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv = nn.Conv2d(4, 4, 3, padding=1)
    ...     def forward(self, x):
    ...         return x + self.conv(x)
    >>> with torch.inference_mode(), capture_functional(Residual()) as ops:
    ...     _ = ops.model(torch.randn(1, 4, 8, 8))
    >>> [(op.name, op.parent, op.kind) for op in ops.calls]
    [('(model):add', '(model)', 'elementwise')]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from .._util.modules import tensors_in
from ..cost import OP_KINDS, leaf_modules, op_kind

__all__ = ["FUNCTIONAL_KINDS", "FunctionalCall", "FunctionalCapture", "capture_functional"]

FUNCTIONAL_KINDS = OP_KINDS


@dataclass(frozen=True, eq=False)
class FunctionalCall:
    """One aten op a parent's ``forward`` ran, with what it needs to be replayed alone.

    ``op`` is the aten overload (``"aten.add.Tensor"``); ``bytes`` the tensors it read and wrote
    (0 for a view); ``output`` is the forward's own result (an in-place op later in the forward may
    change it). ``restore`` pairs each argument the op writes in place (a private copy of it, taken
    before the op ran) with its value then: :meth:`prepare` copies them back, so every replay does
    what the forward did.
    """

    name: str
    parent: str
    op: str
    kind: str
    bytes: int
    func: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any = None
    restore: tuple[tuple[torch.Tensor, torch.Tensor], ...] = field(default=(), repr=False)

    def prepare(self) -> None:
        """Put back the arguments the op writes in place (not part of the op's time)."""
        with torch.inference_mode():
            for buffer, value in self.restore:
                if buffer.size() != value.size() or buffer.stride() != value.stride():  # an in-place view op
                    buffer.as_strided_(value.size(), value.stride())  # (transpose_, unsqueeze_) changed it
                buffer.copy_(value)

    def run(self) -> Any:
        """The op once, on the recorded arguments (call :meth:`prepare` first; under
        ``torch.inference_mode``, as recorded, when it writes in place)."""
        return self.func(*self.args, **self.kwargs)

    def replay(self) -> Any:
        """:meth:`prepare`, then :meth:`run` under ``torch.inference_mode``: the op's result as the
        forward computed it."""
        self.prepare()
        with torch.inference_mode():
            return self.run()


class FunctionalCapture(TorchDispatchMode):
    """A dispatch mode that records, in :attr:`calls`, every aten op run inside ``model``'s
    forward while none of its units is running (see the module docstring); enter it with :func:`capture_functional`,
    which also registers the hooks that track which module runs. :attr:`sequence` interleaves the
    recorded ops with whatever else the caller appends to it as things run (the unit calls, in
    :func:`sepconv.profile.layers.record_forward`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.units = {module for _, module in leaf_modules(model)}
        self.names = {module: name or "(model)" for name, module in model.named_modules()}
        self.calls: list[FunctionalCall] = []
        self.sequence: list[Any] = []
        self._running: list[nn.Module] = []  # modules whose forward is running, innermost last
        self._in_unit = 0
        self._counts: Counter[tuple[str, str]] = Counter()

    def _pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._running.append(module)
        self._in_unit += module in self.units

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self._running and self._running[-1] is module:
            self._running.pop()
        self._in_unit -= module in self.units

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if self._in_unit or not self._running:  # a unit's own op, or one outside the model's forward
            return func(*args, **kwargs)
        written = _written_arguments(func, args, kwargs)
        before = {key: _snapshot(value) for key, value in written.items()}
        out = func(*args, **kwargs)
        self._record(func, args, kwargs, out, before)
        return out

    def _record(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
                before: dict[int | str, torch.Tensor]) -> None:
        parent = self.names.get(self._running[-1], "(model)")
        packet = func.overloadpacket.__name__
        self._counts[(parent, packet)] += 1
        count = self._counts[(parent, packet)]
        name = f"{parent}:{packet}" + (f"#{count}" if count > 1 else "")
        kind = op_kind(func, [*args, *kwargs.values()], out)
        moved = 0 if kind == "view" else sum(_nbytes(t) for t in tensors_in((args, kwargs, out)))
        args, kwargs, restore = list(args), dict(kwargs), []
        for key, value in before.items():  # replay on a private copy, put back before each run
            buffer = torch.empty_strided(value.size(), value.stride(), dtype=value.dtype, device=value.device)
            buffer.copy_(value)
            restore.append((buffer, value))
            if isinstance(key, int):
                args[key] = buffer
            else:
                kwargs[key] = buffer
        call = FunctionalCall(name, parent, str(func), kind, moved, func, tuple(args), kwargs, out, tuple(restore))
        self.calls.append(call)
        self.sequence.append(call)


@contextmanager
def capture_functional(model: nn.Module) -> Iterator[FunctionalCapture]:
    """A :class:`FunctionalCapture` of ``model`` for the block: run ``model`` in it (once, usually
    under ``torch.inference_mode``) and read its ``calls``. The hooks are removed afterwards."""
    capture = FunctionalCapture(model)
    handles = []
    try:
        for module in capture.names:
            handles.append(module.register_forward_pre_hook(capture._pre))
            handles.append(module.register_forward_hook(capture._post))
        with capture:
            yield capture
    finally:
        for handle in handles:
            handle.remove()


def _written_arguments(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[int | str, torch.Tensor]:
    """The tensor arguments the op's schema marks as written (``Tensor(a!)``): position or name -> tensor."""
    written: dict[int | str, torch.Tensor] = {}
    schema = getattr(func, "_schema", None)
    for i, argument in enumerate(schema.arguments if schema is not None else ()):
        if argument.alias_info is None or not argument.alias_info.is_write:
            continue
        key: int | str = i if i < len(args) and not argument.kwarg_only else argument.name
        value = args[key] if isinstance(key, int) else kwargs.get(key)
        if isinstance(value, torch.Tensor):
            written[key] = value
    return written


def _snapshot(tensor: torch.Tensor) -> torch.Tensor:
    """A copy of ``tensor`` with its size and strides (dense ones: an overlapping view is copied dense)."""
    copy = torch.empty_strided(tensor.size(), tensor.stride(), dtype=tensor.dtype, device=tensor.device)
    try:
        return copy.copy_(tensor)
    except RuntimeError:  # strides that overlap
        return tensor.clone(memory_format=torch.contiguous_format)


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()
