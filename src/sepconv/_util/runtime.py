"""The process's runtime state, changed only for a ``with`` block and always restored.

:func:`eval_mode` (each submodule's training flag back as it was), :func:`threads_set_to`
(torch's intra-op threads back as they were), and what the machine offers: :func:`cores`,
:func:`cpu_name`, :func:`load_average`, :func:`is_busy`. Library code never leaves
``torch.set_num_threads`` changed (DESIGN.md, Conventions).

Example::

    >>> with threads_set_to(1):
    ...     torch.get_num_threads()
    1
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .checks import ArgumentError, positive_int

__all__ = ["cores", "cpu_name", "eval_mode", "is_busy", "load_average", "thread_count", "threads_set_to"]


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for a ``with`` block, then give every submodule back its own
    training flag (``module.train()`` afterwards would wrongly wake submodules frozen in eval)."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes.items():
            m.training = training



def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@contextmanager
def threads_set_to(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block, then the previous count again; a count
    above the cores this process may run on is refused (:func:`thread_count`)."""
    thread_count("threads", threads)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def thread_count(name: str, value: object) -> int:
    """A positive thread count no larger than :func:`cores` (``len(os.sched_getaffinity(0))``):
    more threads than cores only make OpenMP threads wait for each other, and a huge count kills
    OpenMP itself (``--threads 100000``)."""
    positive_int(name, value)
    if value > cores():
        raise ArgumentError(name, f"{name}={value} is more than the {cores()} cores this process may run on "
                                  "(os.sched_getaffinity)")
    return value


def is_busy(load: float | None, ncores: int | None) -> bool:
    """A 1-minute load average at or above 3/4 of the cores: other processes compete for them."""
    return load is not None and bool(ncores) and load >= 0.75 * ncores


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where the OS does not tell."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on Windows
        return None


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

