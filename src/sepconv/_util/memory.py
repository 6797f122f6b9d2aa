"""How much memory this process may still allocate, and a refusal before an allocation that cannot fit.

sepconv estimates what a request needs (weights, activations at the requested batch and size, the
largest single tensor) *before* allocating it, and :func:`check_fits` refuses it in one line that
says how much is needed and how much there is — instead of dying inside torch's or numpy's
allocator (``DefaultCPUAllocator: can't allocate memory``, ``_ArrayMemoryError``) or being killed by
the kernel's OOM killer. What "available" means is the least of three limits, each read where the
OS exposes it (a limit that cannot be read is skipped, and :func:`available_memory` says which one
decided):

- ``MemAvailable`` in ``/proc/meminfo``: what the kernel estimates can be allocated without swapping;
- the cgroup's limit minus its current usage (``memory.max`` / ``memory.current`` for cgroup v2,
  ``memory.limit_in_bytes`` / ``memory.usage_in_bytes`` for v1): a container's own ceiling, which
  ``/proc/meminfo`` does not show;
- ``RLIMIT_DATA`` (``ulimit -d``, ``resource.setrlimit``) minus the data segment already in use
  (``VmData`` in ``/proc/self/status``): the budget for data that the allocator obeys.

Example::

    >>> check_fits(10 * 2**30, "batch=100000: the activations", argument="batch")  # doctest: +SKIP
    Traceback (most recent call last):
    ArgumentError: batch=100000: the activations would need 10.0 GiB, but only 7.8 GiB is available (MemAvailable)
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path

from .checks import ArgumentError

__all__ = ["Available", "available_memory", "check_fits", "format_bytes"]

_UNLIMITED = {"max", ""}


@dataclass(frozen=True)
class Available:
    """Bytes this process may still allocate, and the limit that decided it."""

    bytes: int
    source: str  # "MemAvailable", "cgroup memory.max", "RLIMIT_DATA", or "unknown"


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; binary units, one decimal."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _meminfo(root: Path) -> int | None:
    text = _read(root / "proc" / "meminfo")
    for line in (text or "").splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def _cgroup(root: Path) -> int | None:
    """The limit of this process's own cgroup minus its usage (v2, then v1), or None."""
    relative = "/"
    for line in (_read(root / "proc" / "self" / "cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and (parts[0] == "0" or "memory" in parts[1].split(",")):
            relative = parts[2] or "/"
            break
    base = root / "sys" / "fs" / "cgroup"
    for folder in (base / relative.lstrip("/"), base):  # v2: the process's group, or the root seen in a container
        limit, used = _read(folder / "memory.max"), _read(folder / "memory.current")
        if limit is not None and limit not in _UNLIMITED and limit.isdigit():
            return max(0, int(limit) - int(used)) if used and used.isdigit() else int(limit)
    v1 = base / "memory"
    limit, used = _read(v1 / "memory.limit_in_bytes"), _read(v1 / "memory.usage_in_bytes")
    if limit and limit.isdigit() and int(limit) < 2**60:  # v1 writes a huge number for "no limit"
        return max(0, int(limit) - int(used)) if used and used.isdigit() else int(limit)
    return None


def _rlimit_data(root: Path) -> int | None:
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    except (OSError, ValueError, AttributeError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = 0
    for line in (_read(root / "proc" / "self" / "status") or "").splitlines():
        if line.startswith("VmData:"):
            parts = line.split()
            used = int(parts[1]) * 1024 if len(parts) >= 2 and parts[1].isdigit() else 0
    return max(0, int(soft) - used)


def available_memory(root: str | Path = "/") -> Available:
    """The least of ``MemAvailable``, the cgroup's remaining limit and ``RLIMIT_DATA`` (see the
    module docstring); ``Available(2**63 - 1, "unknown")`` when none can be read. ``root`` lets a
    test point at a fake ``/proc`` and ``/sys``."""
    root = Path(root)
    found = [(value, source) for value, source in (
        (_meminfo(root), "MemAvailable"), (_cgroup(root), "cgroup memory.max"), (_rlimit_data(root), "RLIMIT_DATA"),
    ) if value is not None]
    if not found:
        return Available(2**63 - 1, "unknown")
    value, source = min(found)
    return Available(value, source)


def check_fits(needed: float, what: str, *, argument: str, available: Available | None = None) -> None:
    """Raise :class:`ArgumentError` for ``argument`` when ``needed`` bytes exceed
    :func:`available_memory`; ``what`` names the value and the thing that needs them
    (``"batch=100000: the activations"``)."""
    have = available or available_memory()
    if needed > have.bytes:
        raise ArgumentError(argument, f"{what} would need {format_bytes(needed)}, but only "
                                      f"{format_bytes(have.bytes)} is available ({have.source})")
