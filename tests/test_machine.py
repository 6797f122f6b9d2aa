"""The roofline ceilings: their arithmetic, the micro-benchmarks, and the per-machine cache."""

from __future__ import annotations

import json

import pytest
import torch

from sepconv import machine as machine_mod
from sepconv._util.runtime import is_busy
from sepconv.machine import Machine, cache_path, machine_profile, measure_machine


def test_roofline_arithmetic(machine):
    assert machine.ridge_flops_per_byte == pytest.approx(5.0)
    # 1 GFLOP at 100 GFLOP/s: 10 ms; 1 GB at 20 GB/s: 50 ms; the bound is the larger.
    assert machine.bound_ms(flops=1e9, bytes=1e6) == pytest.approx(10.0)
    assert machine.bound_ms(flops=1e6, bytes=1e9) == pytest.approx(50.0)
    assert machine.bound(flops=4e6, bytes=1e6) == "memory"  # intensity 4 < ridge 5
    assert machine.bound(flops=5e6, bytes=1e6) == "compute"
    assert machine.bound(flops=0, bytes=10) == "memory"
    assert machine.bound(flops=0, bytes=0) == "none"
    assert not machine.busy
    assert Machine.from_dict(json.loads(json.dumps(machine.to_dict()))) == machine


def test_busy_means_load_at_three_quarters_of_the_cores(machine):
    from dataclasses import replace

    assert replace(machine, load_average=1.5, cores=2).busy
    assert not replace(machine, load_average=1.1, cores=2).busy
    assert not replace(machine, load_average=None).busy
    assert is_busy(3.0, 4) and not is_busy(2.9, 4) and not is_busy(5.0, None)


def test_micro_benchmarks_measure_positive_ceilings_and_restore_threads():
    before = torch.get_num_threads()
    m = measure_machine(threads=1)
    assert torch.get_num_threads() == before
    assert m.threads == 1 and m.torch_version == torch.__version__
    assert m.peak_gflops_per_s > 0 and m.bandwidth_gb_per_s > 0
    assert m.gemm_n in machine_mod.GEMM_SIZES and m.stream_bytes == 3 * machine_mod.STREAM_BYTES


def test_cache_is_written_once_and_reread(tmp_path, monkeypatch, machine):
    calls = []
    monkeypatch.setattr(machine_mod, "measure_machine", lambda threads: calls.append(threads) or machine)
    first = machine_profile(1, cache_dir=tmp_path)
    path = cache_path(1, tmp_path)
    assert path.is_file() and path.name.startswith("machine-") and path.suffix == ".json"
    assert json.loads(path.read_text())["peak_gflops_per_s"] == 100.0
    assert machine_profile(1, cache_dir=tmp_path) == first and calls == [1]
    machine_profile(1, remeasure=True, cache_dir=tmp_path)
    assert calls == [1, 1]
    path.write_text("{not json")
    assert machine_profile(1, cache_dir=tmp_path) == machine and calls == [1, 1, 1]


def test_cache_key_depends_on_threads_and_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPCONV_CACHE", str(tmp_path))
    assert cache_path(1).parent == tmp_path
    assert cache_path(1) != cache_path(2)
    with pytest.raises(ValueError, match="threads=0 must be a positive integer"):
        cache_path(0)
