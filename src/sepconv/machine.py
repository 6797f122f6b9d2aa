"""The machine's two roofline ceilings, measured here: peak FP32 GEMM GFLOP/s and streaming GB/s.

Williams, Waterman & Patterson 2009, *Roofline: an insightful visual performance model*: a kernel
of arithmetic intensity ``I`` (FLOPs per byte moved) can at best run at ``min(peak, I x bandwidth)``;
below the ridge point ``peak / bandwidth`` it is memory-bound. A 3x3 depthwise conv has an
intensity of a few FLOPs per byte, a 1x1 pointwise conv tens, a standard 3x3 conv hundreds: that,
not the MAC count, is why depthwise layers run far below the machine's GEMM peak.

Both ceilings are measured by micro-benchmarks (under two seconds together) with the thread count
the profile uses, on first use, and cached as JSON per machine, thread count and torch version in
``$SEPCONV_CACHE`` (default ``~/.cache/sepconv``); ``sepconv profile --machine-only --remeasure``
measures them again (and nothing else).

Example::

    >>> m = machine_profile(threads=2)
    >>> m.ridge_flops_per_byte, m.bound_ms(flops=2e9, bytes=1e6)  # doctest: +SKIP
    (6.2, 10.9)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ._util.checks import positive_int
from ._util.io import atomic_write_text
from ._util.runtime import cores, cpu_name, is_busy, load_average, threads_set_to
from ._util.timing import measure

__all__ = ["GEMM_SIZES", "STREAM_BYTES", "Machine", "cache_path", "machine_profile", "measure_machine"]

GEMM_SIZES = (1024, 2048)  # square fp32 torch.mm; 1024 already reaches the BLAS peak on small CPUs
STREAM_BYTES = 64 * 2**20  # per operand of torch.add(a, b, out=c): 192 MiB touched, far beyond caches
REMEASURE = "sepconv profile --machine-only --remeasure"


@dataclass(frozen=True)
class Machine:
    """The measured ceilings of one machine at one thread count (see the module docstring)."""

    cpu: str
    threads: int
    torch_version: str
    peak_gflops_per_s: float  # best FP32 GEMM, FLOPs = 2 x MACs
    bandwidth_gb_per_s: float  # best streaming add, bytes read + written, 1 GB = 1e9 bytes
    gemm_n: int  # the square size that reached the peak
    stream_bytes: int  # bytes touched by one streaming add
    measured_at: str  # ISO 8601, UTC
    load_average: float | None = None  # 1-minute load average when measured (None where unknown)
    cores: int | None = None  # CPU cores this process could use

    @property
    def busy(self) -> bool:
        """Whether other work ran while the ceilings were measured (:func:`is_busy`), so that they may
        be too low: measure again on an idle machine."""
        return is_busy(self.load_average, self.cores)

    @property
    def ridge_flops_per_byte(self) -> float:
        """Intensity where the two ceilings meet: below it a layer is memory-bound."""
        return self.peak_gflops_per_s / self.bandwidth_gb_per_s

    def bound_ms(self, flops: float, bytes: float) -> float:
        """Roofline lower bound on a layer's time: ``max(flops / peak, bytes / bandwidth)``, in ms."""
        return max(flops / (self.peak_gflops_per_s * 1e9), bytes / (self.bandwidth_gb_per_s * 1e9)) * 1e3

    def bound(self, flops: float, bytes: float) -> str:
        """``"memory"`` below the ridge point, ``"compute"`` at or above it, ``"none"`` for a layer
        that neither computes nor moves anything (an identity, a view)."""
        if not flops and not bytes:
            return "none"
        return "compute" if bytes == 0 or flops / bytes >= self.ridge_flops_per_byte else "memory"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ridge_flops_per_byte": self.ridge_flops_per_byte, "busy": self.busy}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Machine:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def cache_path(threads: int, cache_dir: str | Path | None = None) -> Path:
    """``<cache>/machine-<hash>.json``; the hash covers the CPU model, ``threads`` and torch's version."""
    positive_int("threads", threads)
    root = Path(cache_dir or os.environ.get("SEPCONV_CACHE") or Path.home() / ".cache" / "sepconv")
    key = hashlib.sha256(f"{cpu_name()}|{threads}|{torch.__version__}".encode()).hexdigest()[:16]
    return root / f"machine-{key}.json"


def measure_machine(threads: int) -> Machine:
    """Run both micro-benchmarks on ``threads`` threads (best of repeats: a ceiling, not a typical
    run) and return the result; torch's thread count is restored afterwards."""
    with threads_set_to(threads):
        peak, gemm_n = max((_gemm_gflops(n), n) for n in GEMM_SIZES)
        bandwidth = _stream_gb_per_s(STREAM_BYTES)
    return Machine(
        cpu=cpu_name(), threads=threads, torch_version=torch.__version__,
        peak_gflops_per_s=round(peak, 2), bandwidth_gb_per_s=round(bandwidth, 2), gemm_n=gemm_n,
        stream_bytes=3 * STREAM_BYTES, measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        load_average=load_average(), cores=cores(),
    )


def machine_profile(threads: int, remeasure: bool = False, cache_dir: str | Path | None = None) -> Machine:
    """The cached :class:`Machine` for ``threads``, measured (and cached) when absent, unreadable
    or when ``remeasure`` is true."""
    path = cache_path(threads, cache_dir)
    if not remeasure and path.is_file():
        try:
            return Machine.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):
            pass  # a damaged or older cache file is measured again and replaced
    machine = measure_machine(threads)
    try:
        atomic_write_text(path, json.dumps(machine.to_dict(), indent=2) + "\n")
    except OSError:
        pass  # a read-only home still gets its profile, only not cached
    return machine


def _gemm_gflops(n: int) -> float:
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    repeats = max(2, int(2e10 / (2 * n**3)))  # ~20 GFLOP of work per size
    timing = measure(lambda: torch.mm(a, b, out=c), repeats=repeats, warmup=1)
    return 2 * n**3 / (min(timing.samples_ms) * 1e-3) / 1e9


def _stream_gb_per_s(nbytes: int) -> float:
    n = nbytes // 4
    a, b, c = torch.rand(n), torch.rand(n), torch.empty(n)
    timing = measure(lambda: torch.add(a, b, out=c), repeats=10, warmup=1)
    return 3 * n * 4 / (min(timing.samples_ms) * 1e-3) / 1e9
