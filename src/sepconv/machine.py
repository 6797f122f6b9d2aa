"""The machine's roofline ceilings, cache-aware and precision-aware, measured here and cached.

Williams, Waterman & Patterson 2009, *Roofline: an insightful visual performance model*: a kernel
of arithmetic intensity ``I`` (FLOPs per byte moved) can at best run at ``min(peak, I x bandwidth)``;
below the ridge point ``peak / bandwidth`` it is memory-bound. A 3x3 depthwise conv has an
intensity of a few FLOPs per byte, a 1x1 pointwise conv tens, a standard 3x3 conv hundreds: that,
not the MAC count, is why depthwise layers run far below the machine's GEMM peak.

One bandwidth is not enough: at batch 1 most MobileNet layers' working sets fit in a cache, where
streaming runs several times faster than from DRAM, and a single DRAM ceiling is one that measured
code beats. So, as the cache-aware roofline does (Ilic, Pratas & Sousa 2014, *Cache-aware roofline
model*, the model of Intel Advisor's CARM; the Empirical Roofline Toolkit and likwid-bench measure
each level with a working-set sweep in the same spirit), there is one bandwidth ceiling per memory
level and one compute ceiling per precision:

- **Memory levels** (:class:`MemoryLevel`): L1, L2, L3 and DRAM. The bandwidth comes from a sweep
  of working-set sizes (:func:`bandwidth_sweep`: geometric, :data:`SWEEP_STEPS` points per doubling
  from :data:`SWEEP_MIN_BYTES` per thread to :data:`SWEEP_SPAN` times the largest cache sysfs names, capped by
  a quarter of the available memory). The kernel is numpy's ``np.add(a, b, out=c)`` (STREAM's
  "add": two float32 arrays read, one written) over stride-0 views that walk the same three
  arrays ``R`` times in one call, so that Python's per-call overhead (most of a torch add on
  32 KiB) is paid once per ``R`` passes; numpy's ufunc buffer is set to the row length, since
  with rows shorter than its default 8192 elements numpy copies rows through its buffers and
  runs 3x slower. Bytes counted: ``3 x 4 x n x R`` per call (each element of ``a`` and ``b``
  read once, each of ``c`` written once; the write-allocate read of ``c`` is not counted, as a
  layer's bytes do not count it either). With ``T`` threads, ``T`` Python threads each run the
  kernel on their own arrays (numpy releases the GIL), started together at a barrier; the
  figure is the aggregate: all threads' bytes over the span from the first start to the last
  end. Each point is the best of :data:`SWEEP_REPEATS` calls; a point far below both neighbours
  (another process took the core) is measured again. :func:`find_levels` assigns the levels:
  L1 and L2 hold the per-core sizes sysfs gives (:func:`read_caches`) times the threads, and their
  bandwidth is the best point of the sweep inside that range. L3 is shared (sysfs' size is the
  host's, shared with other tenants of a virtual machine), so its usable capacity is where the
  sweep's bandwidth after L2 falls to DRAM's: the last point before two in a row at or below
  :data:`DISTINCT` x the median of the sweep's last doubling. DRAM is every size beyond,
  unbounded. Each level's bandwidth is the best sweep point in its range of working sets, so (where
  sysfs gives L1 and L2) no point of the sweep runs faster than the ceiling of the level it is
  placed at: the transition from L3 to DRAM belongs to L3. A level that cannot be measured (sysfs unreadable, no point in
  its range, no plateau distinct from DRAM) is kept with its ``reason`` and a None bandwidth; a
  working set is then placed at the next measured level.
- **Compute peaks** (:class:`Peak`), each on the engine that runs that precision: fp32 as the
  best of torch.mm (MKL's sgemm) and a 1x1 convolution (oneDNN, which runs the fp32 convs);
  bf16 and fp16 torch.mm (oneDNN) where ``torch.ops.mkldnn`` says the CPU runs them; int8 an
  ONNX Runtime ``MatMulInteger`` (u8 x s8 -> s32) in an in-memory ONNX model, GOP/s counted as
  ``2 x M x N x K``. An unavailable precision has a None peak and the reason.

Placement (:meth:`Machine.ceiling`): a call is held against the smallest *measured* level whose
capacity holds its working set (inputs + weights + outputs of that call, at its dtype) and the
peak of its precision; :meth:`Machine.bound_ms` is ``max(flops / peak, bytes / bandwidth)``.

Everything is measured on the thread count the profile uses (about 8 s at one thread here), on
first use, and cached as JSON per machine, thread count and library
versions in ``$SEPCONV_CACHE`` (default ``~/.cache/sepconv``); ``sepconv profile --machine-only
--remeasure`` measures again (and nothing else). A cache of an older format is measured again.

Example::

    >>> m = machine_profile(threads=1)
    >>> m.ceiling(working_set_bytes=200_000).level, m.bound_ms(flops=2e9, bytes=1e6)  # doctest: +SKIP
    ('L2', 19.2)
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.metadata
import json
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._util.checks import ArgumentError, one_of, positive_int
from ._util.io import atomic_write_text
from ._util.runtime import cores, cpu_name, is_busy, load_average, threads_set_to

__all__ = ["CACHE_FORMAT", "LEVELS", "PRECISIONS", "VERSION_KEYS", "CacheInfo", "Ceiling", "Machine", "MemoryLevel",
           "Peak", "bandwidth_sweep", "cache_path", "find_levels", "int8_gemm_model", "library_versions",
           "machine_profile", "measure_machine", "measure_peaks", "read_caches", "store", "stream_gb_per_s",
           "sweep_limit", "sweep_sizes"]

LEVELS = ("L1", "L2", "L3", "DRAM")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
CACHE_FORMAT = 2  # 1: one peak, one bandwidth; 2: levels, peaks, versions
VERSION_KEYS = ("torch", "onnxruntime", "openvino", "onnx", "numpy", "onednn", "onednn_isa")
SYSFS_CPU = Path("/sys/devices/system/cpu")
KIB, MIB = 1024, 1024 * 1024
SWEEP_MIN_BYTES = 16 * KIB  # the sweep's first working set, per thread
SWEEP_STEPS = 4  # working sets per doubling
SWEEP_SPAN = 8  # the sweep ends at 8x the largest cache sysfs names (256 MiB where it names none)
SWEEP_SAMPLE_BYTES = 128 * MIB  # bytes one thread moves in one timed call (R passes over its arrays)
SWEEP_REPEATS = 5  # timed calls per working set; the best is kept
DIP = 0.8  # a point below 0.8x both neighbours is measured again (at most twice)
DISTINCT = 1.25  # within 1.25x of the largest sizes' bandwidth is DRAM's: where L3 ends, whether it is distinct
GEMM_SIZES = {"fp32": (512, 1024), "bf16": (512, 1024), "fp16": (512, 1024),
              "int8": (512, 1024)}  # square sizes tried per precision (1024 reaches the peak on small CPUs); the best
CONV_CHANNELS = 512  # the fp32 1x1 convolution on oneDNN: 512 -> 512 channels at 32x32, a 512x512x1024 GEMM
GEMM_SECONDS = 0.25  # timing per GEMM size (at least 3 calls)
REMEASURE = "sepconv profile --machine-only --remeasure"


# ---------------------------------------------------------------------------------------------
# What the machine is: caches (sysfs), levels, peaks, versions


@dataclass(frozen=True)
class CacheInfo:
    """One cache level of one CPU as sysfs describes it (``cpu<N>/cache/index<M>/``): ``size_bytes``
    of one instance and ``shared_cpu_list`` (the CPUs sharing that instance), or None and the
    ``reason`` they could not be read."""

    name: str  # "L1" (data), "L2", "L3"
    size_bytes: int | None
    shared_cpu_list: str | None
    reason: str | None = None

    @property
    def shared_by(self) -> int | None:
        """How many CPUs share one instance."""
        return None if self.shared_cpu_list is None else len(_cpu_list(self.shared_cpu_list))


@dataclass(frozen=True)
class MemoryLevel:
    """One memory level's ceiling: ``bandwidth_gb_per_s`` (read + written, 1 GB = 1e9 bytes) for
    working sets up to ``capacity_bytes`` (None for DRAM: unbounded), measured at the sweep's
    working set ``measured_at_bytes``; ``shared`` (L3, DRAM) when all cores use one instance;
    ``source`` says where the capacity and bandwidth came from. An unmeasured level has a None
    bandwidth and its ``reason``."""

    name: str
    bandwidth_gb_per_s: float | None
    capacity_bytes: int | None
    measured_at_bytes: int | None
    shared: bool
    source: str
    reason: str | None = None

    @property
    def known(self) -> bool:
        return self.bandwidth_gb_per_s is not None


@dataclass(frozen=True)
class Peak:
    """One precision's compute ceiling: ``gflops_per_s`` (fp32/bf16/fp16: GFLOP/s, FLOPs = 2 x MACs;
    int8: GOP/s, ``2 x M x N x K`` integer operations) on ``engine``, measured as ``detail`` says;
    None and the ``reason`` where this machine or this install cannot run it."""

    precision: str
    gflops_per_s: float | None
    engine: str
    detail: str
    reason: str | None = None


@dataclass(frozen=True)
class Ceiling:
    """The ceiling one call is held against (:meth:`Machine.ceiling`): its memory ``level``, that
    level's bandwidth and the peak of ``precision`` (None where it was not measured: then only
    the bandwidth bounds the call)."""

    level: str
    bandwidth_gb_per_s: float
    peak_gflops_per_s: float | None
    precision: str

    @property
    def ridge_flops_per_byte(self) -> float | None:
        """Intensity where the two meet: below it a call is memory-bound."""
        return None if self.peak_gflops_per_s is None else self.peak_gflops_per_s / self.bandwidth_gb_per_s

    def bound_ms(self, flops: float, bytes: float) -> float:
        """``max(flops / peak, bytes / bandwidth)`` in ms."""
        compute = flops / (self.peak_gflops_per_s * 1e9) if self.peak_gflops_per_s else 0.0
        return max(compute, bytes / (self.bandwidth_gb_per_s * 1e9)) * 1e3

    def bound(self, flops: float, bytes: float) -> str:
        """``"memory"`` below the ridge point, ``"compute"`` at or above it, ``"none"`` for a call
        that neither computes nor moves anything (an identity, a view)."""
        if not flops and not bytes:
            return "none"
        ridge = self.ridge_flops_per_byte
        if ridge is None:
            return "memory"
        return "compute" if bytes == 0 or flops / bytes >= ridge else "memory"


@dataclass(frozen=True)
class Machine:
    """The measured ceilings of one machine at one thread count (see the module docstring).

    ``peak_gflops_per_s`` (the fp32 peak) and ``bandwidth_gb_per_s`` (DRAM's) are the two ceilings
    of the plain roofline, kept for callers that want one of each; ``levels`` and ``peaks`` hold
    every ceiling. A Machine given only the two (``levels=()``, ``peaks=()``) gets a DRAM level and
    an fp32 peak from them and the other levels and precisions marked not measured.
    """

    cpu: str
    threads: int
    torch_version: str
    peak_gflops_per_s: float  # fp32, FLOPs = 2 x MACs
    bandwidth_gb_per_s: float  # DRAM, bytes read + written, 1 GB = 1e9 bytes
    gemm_n: int  # the square size that reached the fp32 peak
    stream_bytes: int  # the working set DRAM's bandwidth was measured at
    measured_at: str  # ISO 8601, UTC
    load_average: float | None = None  # 1-minute load average when measured (None where unknown)
    cores: int | None = None  # CPU cores this process could use
    levels: tuple[MemoryLevel, ...] = ()  # L1, L2, L3, DRAM
    peaks: tuple[Peak, ...] = ()  # fp32, bf16, fp16, int8
    versions: dict[str, str | None] = field(default_factory=dict)  # library_versions(); absent ones None
    sweep: tuple[tuple[int, float], ...] = ()  # (working set bytes, GB/s) of every sweep point

    def __post_init__(self) -> None:
        if not self.levels:
            missing = "not measured (this Machine was given one bandwidth)"
            object.__setattr__(self, "levels", tuple(
                MemoryLevel(name, None, None, None, name == "L3", "", missing) for name in LEVELS[:3]) + (
                MemoryLevel("DRAM", self.bandwidth_gb_per_s, None, self.stream_bytes, True, "given"),))
        if not self.peaks:
            object.__setattr__(self, "peaks", (Peak("fp32", self.peak_gflops_per_s, "given", f"{self.gemm_n}^2 GEMM"),)
                               + tuple(Peak(p, None, "", "", "not measured (this Machine was given one peak)")
                                       for p in PRECISIONS[1:]))
        given = dict(self.versions)
        unknown = set(given) - set(VERSION_KEYS)
        if unknown:
            raise ArgumentError("versions", f"versions has {sorted(unknown)}; its keys are {list(VERSION_KEYS)}")
        object.__setattr__(self, "versions", {key: given.get(key, self.torch_version if key == "torch" else None)
                                              for key in VERSION_KEYS})
        if tuple(level.name for level in self.levels) != LEVELS:
            raise ArgumentError("levels", f"levels={[lv.name for lv in self.levels]} must be {list(LEVELS)}, in order")
        if tuple(peak.precision for peak in self.peaks) != PRECISIONS:
            raise ArgumentError("peaks", f"peaks={[p.precision for p in self.peaks]} must be {list(PRECISIONS)}, "
                                         "in order")
        if self.level("DRAM").bandwidth_gb_per_s != self.bandwidth_gb_per_s:
            raise ArgumentError("bandwidth_gb_per_s", f"bandwidth_gb_per_s={self.bandwidth_gb_per_s} must be DRAM's "
                                                      f"({self.level('DRAM').bandwidth_gb_per_s})")
        if self.peak("fp32").gflops_per_s != self.peak_gflops_per_s:
            raise ArgumentError("peak_gflops_per_s", f"peak_gflops_per_s={self.peak_gflops_per_s} must be the fp32 "
                                                     f"peak ({self.peak('fp32').gflops_per_s})")
        known = [lv for lv in self.levels if lv.known]
        for smaller, larger in zip(known, known[1:]):
            if smaller.capacity_bytes is None or (larger.capacity_bytes is not None
                                                  and larger.capacity_bytes <= smaller.capacity_bytes):
                raise ArgumentError("levels", f"levels: {smaller.name} (capacity {smaller.capacity_bytes}) must be "
                                              f"smaller than {larger.name} ({larger.capacity_bytes}); only DRAM "
                                              "is unbounded")

    @property
    def busy(self) -> bool:
        """Whether other work ran while the ceilings were measured (:func:`is_busy`), so that they may
        be too low: measure again on an idle machine."""
        return is_busy(self.load_average, self.cores)

    def level(self, name: str) -> MemoryLevel:
        """The memory level called ``name`` (one of :data:`LEVELS`)."""
        return self.levels[LEVELS.index(one_of("level", name, LEVELS))]

    def peak(self, precision: str) -> Peak:
        """The compute peak of ``precision`` (one of :data:`PRECISIONS`)."""
        return self.peaks[PRECISIONS.index(one_of("precision", precision, PRECISIONS))]

    def level_for(self, working_set_bytes: float) -> MemoryLevel:
        """The smallest measured level whose capacity holds ``working_set_bytes`` (DRAM holds all)."""
        if working_set_bytes < 0:
            raise ArgumentError("working_set_bytes", f"working_set_bytes={working_set_bytes} must be >= 0")
        for level in self.levels:
            if level.known and (level.capacity_bytes is None or working_set_bytes <= level.capacity_bytes):
                return level
        raise AssertionError("DRAM is always measured")  # __post_init__ keeps DRAM's bandwidth

    def ceiling(self, working_set_bytes: float, precision: str = "fp32") -> Ceiling:
        """The ceiling a call with this working set (inputs + weights + outputs, at its dtype) and
        ``precision`` is held against: its level's bandwidth and the precision's peak."""
        level = self.level_for(working_set_bytes)
        return Ceiling(level.name, level.bandwidth_gb_per_s, self.peak(precision).gflops_per_s, precision)

    def bound_ms(self, flops: float, bytes: float, working_set_bytes: float | None = None,
                 precision: str = "fp32") -> float:
        """Roofline lower bound on a call's time, in ms: ``max(flops / peak, bytes / bandwidth)`` at
        :meth:`ceiling` (the working set defaults to ``bytes``: each byte read or written once)."""
        return self.ceiling(bytes if working_set_bytes is None else working_set_bytes, precision).bound_ms(flops, bytes)

    def bound(self, flops: float, bytes: float, working_set_bytes: float | None = None,
              precision: str = "fp32") -> str:
        """``"memory"``, ``"compute"`` or ``"none"`` at :meth:`ceiling` (see :meth:`Ceiling.bound`)."""
        return self.ceiling(bytes if working_set_bytes is None else working_set_bytes, precision).bound(flops, bytes)

    def ridge(self, level: str = "DRAM", precision: str = "fp32") -> float | None:
        """Intensity where ``level``'s bandwidth meets ``precision``'s peak (None where either is
        unknown)."""
        bandwidth, peak = self.level(level).bandwidth_gb_per_s, self.peak(precision).gflops_per_s
        return None if bandwidth is None or peak is None else peak / bandwidth

    @property
    def ridge_flops_per_byte(self) -> float:
        """The plain roofline's ridge: the fp32 peak over DRAM's bandwidth."""
        return self.peak_gflops_per_s / self.bandwidth_gb_per_s

    def to_dict(self) -> dict[str, Any]:
        """The document's ``machine`` object (report.SCHEMA["machine"]): each level with its fp32 ridge."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _PARTS}
        return {**out, "ridge_flops_per_byte": self.ridge_flops_per_byte, "busy": self.busy,
                "levels": [{**asdict(lv), "ridge_flops_per_byte": self.ridge(lv.name) if lv.known else None}
                           for lv in self.levels],
                "peaks": [asdict(p) for p in self.peaks],
                "versions": dict(self.versions),
                "sweep": [[ws, gb] for ws, gb in self.sweep]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Machine:
        """The Machine of :meth:`to_dict`'s dict (KeyError/TypeError/ValueError where it is not one)."""
        plain = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name not in _PARTS}
        level_keys = [f.name for f in fields(MemoryLevel)]
        peak_keys = [f.name for f in fields(Peak)]
        return cls(**plain,
                   levels=tuple(MemoryLevel(**{k: lv[k] for k in level_keys}) for lv in data.get("levels", ())),
                   peaks=tuple(Peak(**{k: p[k] for k in peak_keys}) for p in data.get("peaks", ())),
                   versions=dict(data.get("versions", {})),
                   sweep=tuple((int(ws), float(gb)) for ws, gb in data.get("sweep", ())))


_PARTS = ("levels", "peaks", "versions", "sweep")  # Machine's fields that to_dict writes as lists and objects


# ---------------------------------------------------------------------------------------------
# Caches from sysfs


def read_caches(root: str | Path = SYSFS_CPU, cpu: int | None = None) -> dict[str, CacheInfo]:
    """The L1 data, L2 and L3 caches of ``cpu`` (default: the first this process may run on) from
    Linux's sysfs under ``root`` (``/sys/devices/system/cpu``): ``{"L1": CacheInfo, ...}``. A level
    sysfs does not describe, or describes unreadably, comes back with ``size_bytes=None`` and the
    reason; nothing raises.

    Example::

        >>> read_caches()["L2"].size_bytes  # doctest: +SKIP
        1048576
    """
    if cpu is None:
        cpu = min(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    directory = Path(root) / f"cpu{cpu}" / "cache"
    try:
        indexes = sorted(p for p in directory.iterdir() if p.name.startswith("index"))
    except OSError as err:
        reason = f"cannot read {directory}: {err.strerror or err}"
        return {name: CacheInfo(name, None, None, reason) for name in LEVELS[:3]}
    found: dict[str, CacheInfo] = {}
    unreadable: list[str] = []
    for index in indexes:
        try:
            level, kind = int(_read(index / "level")), _read(index / "type")
            if kind == "Instruction" or not 1 <= level <= 3:
                continue
            info = CacheInfo(f"L{level}", _size_bytes(_read(index / "size")), _read(index / "shared_cpu_list"))
            _cpu_list(info.shared_cpu_list)  # a garbled CPU list makes the level unreadable
        except (OSError, ValueError) as err:
            unreadable.append(f"cannot read {index}: {getattr(err, 'strerror', None) or err}")
            continue
        if info.name not in found or info.size_bytes > found[info.name].size_bytes:
            found[info.name] = info
    missing = f"sysfs lists no {{}} data or unified cache under {directory}" + (
        f" ({'; '.join(unreadable)})" if unreadable else "")
    return {name: found.get(name) or CacheInfo(name, None, None, missing.format(name)) for name in LEVELS[:3]}


def _read(path: Path) -> str:
    return path.read_text().strip()


def _size_bytes(text: str) -> int:
    """sysfs' ``size`` ("32K", "1024K", "32768K"; "2M" or a plain byte count also) in bytes."""
    match = re.fullmatch(r"(\d+)\s*([KMG]?)(?:i?B)?", text.strip(), re.I)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"size {text!r} is not a cache size such as 32K")
    return int(match.group(1)) * {"": 1, "K": KIB, "M": MIB, "G": 1024 * MIB}[match.group(2).upper()]


def _cpu_list(text: str) -> list[int]:
    """``"0-3,8"`` -> ``[0, 1, 2, 3, 8]``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        low, _, high = part.partition("-")
        if not low.strip().isdigit() or (high and not high.strip().isdigit()):
            raise ValueError(f"shared_cpu_list {text!r} is not a CPU list such as 0-1")
        cpus += range(int(low), int(high or low) + 1)
    return cpus


def _format_bytes(n: float) -> str:
    for unit, size in (("GiB", 1024 * MIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


# ---------------------------------------------------------------------------------------------
# Memory: the working-set sweep and the levels it shows


def sweep_sizes(max_bytes: int, min_bytes: int = SWEEP_MIN_BYTES, steps: int = SWEEP_STEPS) -> list[int]:
    """Working sets from ``min_bytes`` to ``max_bytes``, ``steps`` per doubling."""
    count = int(math.floor(steps * math.log2(max_bytes / min_bytes) + 1e-9)) + 1
    return [int(min_bytes * 2 ** (i / steps)) for i in range(max(count, 1))]


def sweep_limit(caches: dict[str, CacheInfo]) -> int:
    """Where the sweep ends: :data:`SWEEP_SPAN` x the largest cache sysfs names (at least 64 MiB;
    256 MiB where it names none), at most a quarter of the memory available now."""
    largest = max((c.size_bytes for c in caches.values() if c.size_bytes), default=32 * MIB)
    limit = max(64 * MIB, SWEEP_SPAN * largest)
    available = _available_bytes()
    return int(min(limit, available // 4)) if available else limit


def _available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * KIB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _stream_views(n: int, passes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three float32 arrays ``a``, ``b``, ``c`` of ``n`` elements (``n`` a multiple of 16: whole
    64-byte lines) as ``(passes, n)`` views of stride 0 along the passes, ``c``'s writeable. The
    arrays lie in one 64-byte-aligned block, three lines apart, so that no two start at the same
    offset modulo 4 KiB (which would make loads wait on the stores to ``c``)."""
    gap = 3 * 16
    block = np.empty(3 * (n + gap) + 16, np.float32)
    start = (-block.ctypes.data % 64) // 4
    a, b, c = (block[start + i * (n + gap):start + i * (n + gap) + n] for i in range(3))
    a.fill(1.0)
    b.fill(2.0)
    c.fill(0.0)
    view = np.lib.stride_tricks.as_strided
    return (view(a, (passes, n), (0, 4)), view(b, (passes, n), (0, 4)),
            view(c, (passes, n), (0, 4), writeable=True))


def _stream_add(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """``np.add(a, b, out=c)`` over :func:`_stream_views`: every pass re-walks the same arrays.
    numpy's ufunc buffer is set to the row length for the call (rows shorter than its default
    8192 elements would be copied through its buffers, 3x slower), then put back."""
    old = np.setbufsize(min(8192, a.shape[1]))
    try:
        np.add(a, b, out=c)
    finally:
        np.setbufsize(old)


def stream_gb_per_s(working_set_bytes: int, threads: int, repeats: int = SWEEP_REPEATS) -> tuple[int, float]:
    """One sweep point: ``(the working set run, best GB/s)`` of :func:`_stream_add` on ``threads``
    threads sharing ``working_set_bytes`` (see the module docstring for the byte count)."""
    n = max(16, working_set_bytes // (threads * 12) // 16 * 16)
    working_set = 12 * n * threads
    passes = max(1, round(SWEEP_SAMPLE_BYTES / (12 * n)))  # each thread moves SWEEP_SAMPLE_BYTES per call
    stamps: list[list[tuple[float, float]]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def run(i: int) -> None:
        views = _stream_views(n, passes)  # allocated (first touched) by the thread that streams them
        for _ in range(repeats + 1):  # one untimed call first
            barrier.wait()
            start = time.perf_counter()
            _stream_add(*views)
            stamps[i].append((start, time.perf_counter()))

    if threads == 1:
        run(0)
    else:
        workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    spans = [max(s[k][1] for s in stamps) - min(s[k][0] for s in stamps) for k in range(1, repeats + 1)]
    return working_set, working_set * passes / min(spans) / 1e9


def bandwidth_sweep(threads: int, max_bytes: int) -> list[tuple[int, float]]:
    """``(working set, GB/s)`` from :data:`SWEEP_MIN_BYTES` per thread to ``max_bytes`` (:func:`sweep_sizes`);
    a point below :data:`DIP` x both neighbours is measured again, at most twice, keeping the best."""
    points = [stream_gb_per_s(size, threads) for size in sweep_sizes(max_bytes, SWEEP_MIN_BYTES * threads)]
    for _ in range(2):
        dips = [i for i in range(1, len(points) - 1)
                if points[i][1] < DIP * min(points[i - 1][1], points[i + 1][1])]
        for i in dips:
            again = stream_gb_per_s(points[i][0], threads)
            points[i] = (points[i][0], max(points[i][1], again[1]))
    return points


def find_levels(sweep: Sequence[tuple[int, float]], caches: dict[str, CacheInfo],
                threads: int) -> tuple[MemoryLevel, ...]:
    """L1, L2, L3 and DRAM from a bandwidth sweep (``(working set bytes, GB/s)`` pairs) and the
    caches sysfs names (see the module docstring for the rule). Pure: the tests give it
    synthetic curves.

    Example::

        >>> caches = {"L1": CacheInfo("L1", 32768, "0"), "L2": CacheInfo("L2", 2**20, "0"),
        ...           "L3": CacheInfo("L3", 2**25, "0-1")}
        >>> curve = [(2**k, 200.0 if 2**k <= 32768 else 100.0 if 2**k <= 2**20 else
        ...           60.0 if 2**k <= 2**23 else 20.0) for k in range(14, 29)]
        >>> [(lv.name, lv.bandwidth_gb_per_s, lv.capacity_bytes) for lv in find_levels(curve, caches, 1)]
        [('L1', 200.0, 32768), ('L2', 100.0, 1048576), ('L3', 60.0, 8388608), ('DRAM', 20.0, None)]
    """
    positive_int("threads", threads)
    points = sorted((int(ws), float(gb)) for ws, gb in sweep)
    if len(points) < 2:
        raise ArgumentError("sweep", f"sweep has {len(points)} points; finding levels needs at least 2")
    plural = "s" if threads > 1 else ""

    def best(low: float, high: float) -> tuple[int, float] | None:
        inside = [p for p in points if low < p[0] <= high]
        return max(inside, key=lambda p: p[1]) if inside else None

    levels: list[MemoryLevel] = []
    low = 0
    for name in ("L1", "L2"):
        cache = caches[name]
        if cache.size_bytes is None:
            levels.append(MemoryLevel(name, None, None, None, False, "", f"{name}'s size is unknown: {cache.reason}"))
            continue
        capacity = cache.size_bytes * threads
        source = f"sysfs: {_format_bytes(cache.size_bytes)} per core x {threads} thread{plural}"
        point = best(low, capacity) if capacity > low else None
        if point is None:
            levels.append(MemoryLevel(name, None, capacity, None, False, source,
                                      f"no sweep point between {_format_bytes(low)} and {_format_bytes(capacity)}"))
        else:
            levels.append(MemoryLevel(name, point[1], capacity, point[0], False,
                                      source + "; bandwidth: the best sweep point in that range"))
        low = max(low, capacity)

    largest = points[-1][0]
    tail = statistics.median(gb for ws, gb in points if ws >= largest / 2)
    near = DISTINCT * tail  # as slow as DRAM, within the sweep's resolution
    l2 = levels[1]
    l3_sysfs = caches["L3"]
    said = (f"sysfs: {_format_bytes(l3_sysfs.size_bytes)} shared by CPUs {l3_sysfs.shared_cpu_list} (the host's; "
            "other tenants may share it)" if l3_sysfs.size_bytes else f"sysfs: unknown ({l3_sysfs.reason})")
    if l2.capacity_bytes is None:
        levels.append(MemoryLevel("L3", None, None, None, True, said,
                                  "L2's size is unknown, so where L3 begins is unknown"))
        beyond = [p for p in points if p[0] >= largest / 2]
        where = "the best point of the sweep's last doubling (the cache sizes are unknown, so where DRAM begins is not)"
    else:
        start = l2.capacity_bytes
        high = l3_sysfs.size_bytes if l3_sysfs.size_bytes and l3_sysfs.size_bytes > start else largest / 4
        peak = best(start, high)
        end = start
        if peak is None or peak[1] < near:
            seen = "no sweep point" if peak is None else f"at most {peak[1]:.1f} GB/s"
            levels.append(MemoryLevel("L3", None, None, None, True, said,
                                      f"the sweep found no plateau between L2 and DRAM: {seen} past L2's "
                                      f"{_format_bytes(start)} against {tail:.1f} GB/s at the largest working sets"))
        else:
            after = [p for p in points if p[0] >= peak[0]]
            end = after[-1][0]
            for i in range(1, len(after)):
                if after[i][1] <= near and (i + 1 == len(after) or after[i + 1][1] <= near):
                    end = after[i - 1][0]
                    break
            top = best(start, end)
            levels.append(MemoryLevel(
                "L3", top[1], end, top[0], True,
                f"shared: its usable capacity is where the sweep's bandwidth after L2 falls to DRAM's (the last "
                f"working set before two in a row at or below {near:.1f} GB/s, {DISTINCT}x the largest sizes' "
                f"{tail:.1f}); bandwidth: the best sweep point past L2; {said}"))
        beyond = [p for p in points if p[0] > end]
        where = f"the best sweep point past {_format_bytes(end)}"
    if not beyond:  # the sweep ended before its bandwidth fell to DRAM's
        beyond, where = points[-1:], "the sweep's largest working set (it ended before reaching DRAM's plateau)"
    dram = max(beyond, key=lambda p: p[1])
    levels.append(MemoryLevel("DRAM", dram[1], None, dram[0], True, f"{where}; the sweep ended at "
                                                                     f"{_format_bytes(largest)}"))
    return tuple(levels)


# ---------------------------------------------------------------------------------------------
# Compute: one peak per precision, on the engine that runs it


def measure_peaks(threads: int) -> tuple[Peak, ...]:
    """fp32, bf16, fp16 and int8 peaks on ``threads`` threads (torch's count restored after)."""
    return _measure_peaks(threads)[0]


def _measure_peaks(threads: int) -> tuple[tuple[Peak, ...], int]:
    """The peaks, and the GEMM size that reached the fp32 one."""
    with threads_set_to(threads):
        fp32, gemm_n = _fp32_peak()
        return (fp32, _torch_peak("bf16"), _torch_peak("fp16"), _int8_peak(threads)), gemm_n


def _best_rate(fn: Callable[[], object], work: float) -> tuple[float, int]:
    """Best ``work / seconds`` / 1e9 of ``fn`` over :data:`GEMM_SECONDS` (at least 3 calls, one
    untimed first), and the calls timed."""
    fn()
    best, calls, spent = math.inf, 0, 0.0
    while calls < 3 or spent < GEMM_SECONDS:
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, calls, spent = min(best, took), calls + 1, spent + took
    return work / best / 1e9, calls


def _fp32_peak() -> tuple[Peak, int]:
    blas = "MKL" if torch.backends.mkl.is_available() else "BLAS"
    tried = []
    for n in GEMM_SIZES["fp32"]:
        a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        rate, calls = _best_rate(lambda: torch.mm(a, b, out=c), 2 * n**3)
        tried.append((rate, f"torch/{blas}", f"torch.mm {n}x{n}x{n}, best of {calls}", n))
    # The fp32 convolutions run on oneDNN, not on the BLAS: a 1x1 conv is its GEMM.
    c = CONV_CHANNELS
    x, w = torch.randn(1, c, 32, 32), torch.randn(c, c, 1, 1)
    rate, calls = _best_rate(lambda: torch.nn.functional.conv2d(x, w), 2 * c * c * 1024)
    tried.append((rate, "torch/oneDNN", f"1x1 conv2d {c} -> {c} channels at 32x32 ({c}x{c}x1024), best of {calls}", c))
    rate, engine, detail, n = max(tried)
    others = "; ".join(f"{e} {r:.1f} ({d.split(',')[0]})" for r, e, d, _ in tried if d != detail)
    return Peak("fp32", round(rate, 2), engine, f"{detail} (the best of: {others})"), n


def _torch_peak(precision: str) -> Peak:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    check = f"_is_mkldnn_{precision}_supported"
    try:
        supported = bool(getattr(torch.ops.mkldnn, check)())
    except (AttributeError, RuntimeError) as err:
        return Peak(precision, None, "torch/oneDNN", "", f"this torch cannot tell whether oneDNN runs {precision} "
                                                        f"(torch.ops.mkldnn.{check}: {err})")
    if not supported:
        return Peak(precision, None, "torch/oneDNN", "",
                    f"oneDNN reports no {precision} support on this CPU (torch.ops.mkldnn.{check}() is False): "
                    f"torch's {precision} matmul falls back to a slow reference loop, no peak to measure")
    best = None
    for n in GEMM_SIZES[precision]:
        a, b, c = (torch.randn(n, n).to(dtype) for _ in range(3))
        rate, calls = _best_rate(lambda: torch.mm(a, b, out=c), 2 * n**3)
        best = max(best or (0.0, 0, 0), (rate, n, calls))
    rate, n, calls = best
    return Peak(precision, round(rate, 2), "torch/oneDNN", f"torch.mm {n}x{n}x{n} {precision}, best of {calls}")


def int8_gemm_model(m: int, n: int, k: int) -> bytes:
    """An ONNX model (serialized) of one ``MatMulInteger``: input ``A`` u8 (m x k, zero point 128),
    constant ``B`` s8 (k x n, zero point 0), output ``Y`` s32 (m x n)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).integers(-128, 128, (k, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "a_zero", "b_zero"], ["Y"])], "int8_gemm",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        [numpy_helper.from_array(weights, "B"), numpy_helper.from_array(np.array(128, np.uint8), "a_zero"),
         numpy_helper.from_array(np.array(0, np.int8), "b_zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _int8_peak(threads: int) -> Peak:
    try:
        import onnxruntime as ort
    except ImportError as err:
        return Peak("int8", None, "onnxruntime", "", f"onnxruntime cannot be imported ({err}): "
                                                     "pip install 'sepconv[onnx]'")
    try:
        import onnx  # noqa: F401 - int8_gemm_model builds the model with it
    except ImportError as err:
        return Peak("int8", None, "onnxruntime", "", f"onnx cannot be imported ({err}): pip install 'sepconv[onnx]'")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    best = None
    for n in GEMM_SIZES["int8"]:
        session = ort.InferenceSession(int8_gemm_model(n, n, n), options, providers=["CPUExecutionProvider"])
        a = np.random.default_rng(1).integers(0, 256, (n, n), dtype=np.uint8)
        rate, calls = _best_rate(lambda: session.run(None, {"A": a}), 2 * n**3)
        best = max(best or (0.0, 0, 0), (rate, n, calls))
    rate, n, calls = best
    return Peak("int8", round(rate, 2), "onnxruntime",
                f"onnxruntime {ort.__version__} MatMulInteger u8 x s8 -> s32, {n}x{n}x{n}, best of {calls} "
                "(GOP/s: 2 x M x N x K)")


# ---------------------------------------------------------------------------------------------
# Versions


VERSIONED = ("torch", "onnxruntime", "openvino", "onnx", "numpy")  # packages whose versions key the cache


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """The versions the ceilings were measured with: torch, onnxruntime, openvino, onnx, numpy
    (None where not installed), ``onednn`` (torch's oneDNN) and ``onednn_isa`` (the instruction
    set oneDNN dispatches to, from its verbose header; None where it cannot be read).

    Example::

        >>> library_versions()["onednn_isa"]  # doctest: +SKIP
        'Intel AVX-512 with Intel DL Boost and bfloat16 support'
    """
    versions = {name: _version(name) for name in VERSIONED}
    versions["torch"] = torch.__version__
    onednn, isa = _onednn()
    return {**versions, "onednn": onednn, "onednn_isa": isa}


@cache
def _onednn() -> tuple[str | None, str | None]:
    """(oneDNN's version, its ISA) from the verbose header it prints once per process, the first
    time verbose mode runs a primitive; caught by pointing file descriptor 1 at a temporary file.
    (None, None) where torch has no oneDNN or the header was printed before (verbose already on)."""
    if not torch.backends.mkldnn.is_available():
        return None, None
    try:
        libc = ctypes.CDLL(None)
        sys.stdout.flush()
        with tempfile.TemporaryFile() as out:
            libc.fflush(None)
            saved = os.dup(1)
            os.dup2(out.fileno(), 1)
            try:
                with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                    torch.randn(1, 8, 4, 4).to_mkldnn().to_dense()  # a oneDNN reorder
                libc.fflush(None)
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            out.seek(0)
            text = out.read().decode(errors="replace")
    except (OSError, RuntimeError, AttributeError):
        return None, None
    version = re.search(r"oneDNN v([\w.]+)", text)
    isa = re.search(r"info,cpu,isa:(.+)", text)
    return (version.group(1) if version else None), (isa.group(1).strip() if isa else None)


# ---------------------------------------------------------------------------------------------
# Measuring and caching


def cache_path(threads: int, cache_dir: str | Path | None = None) -> Path:
    """``<cache>/machine-<hash>.json``; the hash covers the CPU model, ``threads`` and the versions
    of torch, onnxruntime, openvino, onnx and numpy."""
    positive_int("threads", threads)
    root = Path(cache_dir or os.environ.get("SEPCONV_CACHE") or Path.home() / ".cache" / "sepconv")
    versions = "|".join(f"{name}={_version(name)}" for name in VERSIONED)
    key = hashlib.sha256(f"{cpu_name()}|{threads}|{torch.__version__}|{versions}".encode()).hexdigest()[:16]
    return root / f"machine-{key}.json"


def measure_machine(threads: int, sysfs: str | Path = SYSFS_CPU) -> Machine:
    """Sweep the memory levels and measure every precision's peak on ``threads`` threads (best of
    repeats: a ceiling, not a typical run); torch's thread count is restored afterwards."""
    positive_int("threads", threads)
    caches = read_caches(sysfs)
    sweep = bandwidth_sweep(threads, sweep_limit(caches))
    levels = tuple(replace(lv, bandwidth_gb_per_s=_round(lv.bandwidth_gb_per_s))
                   for lv in find_levels(sweep, caches, threads))
    peaks, gemm_n = _measure_peaks(threads)
    fp32 = peaks[0]
    return Machine(
        cpu=cpu_name(), threads=threads, torch_version=torch.__version__, peak_gflops_per_s=fp32.gflops_per_s,
        bandwidth_gb_per_s=levels[-1].bandwidth_gb_per_s, gemm_n=gemm_n, stream_bytes=levels[-1].measured_at_bytes,
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), load_average=load_average(),
        cores=cores(), levels=levels,
        peaks=peaks, versions=library_versions(), sweep=tuple((ws, round(gb, 2)) for ws, gb in sweep))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def store(machine: Machine, cache_dir: str | Path | None = None) -> Path:
    """Write ``machine`` to its cache file (atomically) and return the path."""
    path = cache_path(machine.threads, cache_dir)
    atomic_write_text(path, json.dumps({"format": CACHE_FORMAT, **machine.to_dict()}, indent=2) + "\n")
    return path


def machine_profile(threads: int, remeasure: bool = False, cache_dir: str | Path | None = None) -> Machine:
    """The cached :class:`Machine` for ``threads``, measured (and cached) when absent, unreadable,
    of an older format, or when ``remeasure`` is true."""
    path = cache_path(threads, cache_dir)
    if not remeasure and path.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError, OSError):
            data = json.loads(path.read_text())
            if data.get("format") == CACHE_FORMAT:
                return Machine.from_dict(data)
        # a damaged or older cache file is measured again and replaced
    machine = measure_machine(threads)
    with contextlib.suppress(OSError):  # a read-only home still gets its profile, only not cached
        store(machine, cache_dir)
    return machine
