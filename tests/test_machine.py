"""The roofline ceilings: placement of a working set at its memory level and its precision's peak,
sysfs cache sizes (and unreadable ones), plateaus found in synthetic sweeps, the stream kernel,
the int8 GEMM model, and the per-machine cache. No timing decides a test here."""

from __future__ import annotations

import json
import math
import sys
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from sepconv import machine as machine_mod
from sepconv._util.runtime import is_busy
from sepconv.cost import analyze
from sepconv.machine import (
    CACHE_FORMAT,
    LEVELS,
    PRECISIONS,
    VERSION_KEYS,
    CacheInfo,
    Machine,
    MemoryLevel,
    Peak,
    cache_path,
    find_levels,
    library_versions,
    machine_profile,
    measure_machine,
    read_caches,
    store,
)

KIB, MIB = 1024, 1024 * 1024


def levelled(l3: bool = True) -> Machine:
    """A made-up machine with every ceiling: L1 200 GB/s to 32 KiB, L2 100 to 1 MiB, L3 50 to 16 MiB
    (or unknown), DRAM 20; fp32 100 GFLOP/s, bf16 200, fp16 unavailable, int8 400 GOP/s."""
    levels = (
        MemoryLevel("L1", 200.0, 32 * KIB, 16 * KIB, False, "sysfs: 32 KiB per core x 1 thread"),
        MemoryLevel("L2", 100.0, MIB, 256 * KIB, False, "sysfs: 1 MiB per core x 1 thread"),
        MemoryLevel("L3", 50.0, 16 * MIB, 4 * MIB, True, "shared: the sweep's plateau") if l3 else
        MemoryLevel("L3", None, None, None, True, "sysfs: 32 MiB", "the sweep found no plateau between L2 and DRAM"),
        MemoryLevel("DRAM", 20.0, None, 256 * MIB, True, "the sweep's largest sizes"),
    )
    peaks = (Peak("fp32", 100.0, "torch/MKL", "torch.mm 1024^3"), Peak("bf16", 200.0, "torch/oneDNN", "torch.mm"),
             Peak("fp16", None, "torch/oneDNN", "", "oneDNN reports no fp16 support on this CPU"),
             Peak("int8", 400.0, "onnxruntime", "MatMulInteger"))
    return Machine(cpu="test CPU", threads=1, torch_version=torch.__version__, peak_gflops_per_s=100.0,
                   bandwidth_gb_per_s=20.0, gemm_n=1024, stream_bytes=256 * MIB, measured_at="2026-01-01T00:00:00+00:00",
                   load_average=0.1, cores=2, levels=levels, peaks=peaks, versions={"torch": torch.__version__},
                   sweep=((16 * KIB, 200.0), (256 * MIB, 20.0)))


def test_roofline_arithmetic(machine):
    """The machine given two ceilings (tests/conftest.py: 100 GFLOP/s, 20 GB/s) is the plain roofline."""
    assert machine.ridge_flops_per_byte == pytest.approx(5.0)
    # 1 GFLOP at 100 GFLOP/s: 10 ms; 1 GB at 20 GB/s: 50 ms; the bound is the larger.
    assert machine.bound_ms(flops=1e9, bytes=1e6) == pytest.approx(10.0)
    assert machine.bound_ms(flops=1e6, bytes=1e9) == pytest.approx(50.0)
    assert machine.bound(flops=4e6, bytes=1e6) == "memory"  # intensity 4 < ridge 5
    assert machine.bound(flops=5e6, bytes=1e6) == "compute"
    assert machine.bound(flops=0, bytes=10) == "memory"
    assert machine.bound(flops=0, bytes=0) == "none"
    assert not machine.busy
    assert [lv.name for lv in machine.levels] == list(LEVELS) and [p.precision for p in machine.peaks] == list(PRECISIONS)
    assert [lv.known for lv in machine.levels] == [False, False, False, True]
    assert all("not measured" in lv.reason for lv in machine.levels[:3])
    assert machine.ceiling(1).level == "DRAM"  # no cache level measured: everything streams from DRAM
    assert machine.peak("bf16").gflops_per_s is None and set(machine.versions) == set(VERSION_KEYS)
    assert Machine.from_dict(json.loads(json.dumps(machine.to_dict()))) == machine


def test_busy_means_load_at_three_quarters_of_the_cores(machine):
    assert replace(machine, load_average=1.5, cores=2).busy
    assert not replace(machine, load_average=1.1, cores=2).busy
    assert not replace(machine, load_average=None).busy
    assert is_busy(3.0, 4) and not is_busy(2.9, 4) and not is_busy(5.0, None)


@pytest.mark.parametrize("working_set, level", [
    (0, "L1"), (32 * KIB, "L1"), (32 * KIB + 1, "L2"), (MIB, "L2"), (MIB + 1, "L3"), (16 * MIB, "L3"),
    (16 * MIB + 1, "DRAM"), (10**12, "DRAM"),
])
def test_working_set_is_placed_at_the_smallest_level_that_holds_it(working_set, level):
    m = levelled()
    ceiling = m.ceiling(working_set)
    assert ceiling.level == level and ceiling.bandwidth_gb_per_s == m.level(level).bandwidth_gb_per_s
    assert ceiling.peak_gflops_per_s == 100.0 and ceiling.precision == "fp32"


def test_an_unmeasured_level_is_skipped():
    m = levelled(l3=False)
    assert m.ceiling(MIB).level == "L2" and m.ceiling(MIB + 1).level == "DRAM" and m.ceiling(16 * MIB).level == "DRAM"


def test_bound_at_the_level_and_the_precision():
    m = levelled()
    # 1 MFLOP and 64 KiB moved, working set 64 KiB: L2 (100 GB/s) and the fp32 peak (100 GFLOP/s).
    assert m.bound_ms(1e6, 64 * KIB) == pytest.approx(max(1e6 / 100e9, 64 * KIB / 100e9) * 1e3)
    assert m.bound_ms(1e3, 64 * KIB, working_set_bytes=10 * KIB) == pytest.approx(64 * KIB / 200e9 * 1e3)  # L1
    assert m.bound_ms(1e8, 1e3, precision="bf16") == pytest.approx(1e8 / 200e9 * 1e3)
    assert m.bound_ms(1e8, 1e3, precision="int8") == pytest.approx(1e8 / 400e9 * 1e3)
    assert m.bound_ms(1e8, 1e3, precision="fp16") == pytest.approx(1e3 / 200e9 * 1e3)  # no fp16 peak: memory only
    assert m.bound(1e8, 1e3, precision="fp16") == "memory"
    assert m.ridge("L1") == pytest.approx(0.5) and m.ridge("DRAM", "bf16") == pytest.approx(10.0)
    assert m.ridge("L1", "fp16") is None
    with pytest.raises(ValueError, match="precision='fp64' must be one of"):
        m.ceiling(1, "fp64")
    with pytest.raises(ValueError, match="working_set_bytes=-1 must be >= 0"):
        m.ceiling(-1)


def test_bound_depends_on_the_level_ridge():
    m = levelled()
    # intensity 1 FLOP/B: compute-bound at L1's ridge 0.5, memory-bound at DRAM's ridge 5.
    assert m.bound(10 * KIB, 10 * KIB) == "compute"
    assert m.bound(100 * MIB, 100 * MIB) == "memory"


@pytest.mark.parametrize("dtype, level", [(torch.float32, "L2"), (torch.bfloat16, "L1"), (torch.float16, "L1")])
def test_working_set_in_the_dtype_it_ran(dtype, level):
    """A 3x3 conv 8 -> 8 at 24x24: 9,792 elements of input, weights and output: 39,168 B in fp32 (L2),
    half in bf16 and fp16 (L1): bytes and level are recomputed per dtype."""
    row = analyze(nn.Conv2d(8, 8, 3, padding=1, bias=False), (1, 8, 24, 24), dtype=dtype).layers[0]
    working_set = row.weight_bytes + row.act_bytes_read + row.act_bytes_written
    assert working_set == 9792 * torch.empty((), dtype=dtype).element_size()
    assert levelled().ceiling(working_set).level == level


def test_a_machine_refuses_inconsistent_ceilings():
    m = levelled()
    with pytest.raises(ValueError, match="levels=.* must be \\['L1', 'L2', 'L3', 'DRAM'\\]"):
        replace(m, levels=m.levels[::-1])
    with pytest.raises(ValueError, match="bandwidth_gb_per_s=30.0 must be DRAM's"):
        replace(m, bandwidth_gb_per_s=30.0)
    with pytest.raises(ValueError, match="peak_gflops_per_s=1.0 must be the fp32 peak"):
        replace(m, peak_gflops_per_s=1.0)
    with pytest.raises(ValueError, match="L2 .* must be smaller than L3"):
        replace(m, levels=(m.levels[0], replace(m.levels[1], capacity_bytes=32 * MIB), *m.levels[2:]))
    with pytest.raises(ValueError, match="versions has \\['cuda'\\]"):
        replace(m, versions={"cuda": "12"})
    assert Machine.from_dict(json.loads(json.dumps(m.to_dict()))) == m


# ---------------------------------------------------------------------------------------------
# sysfs


def fake_sysfs(root, caches, cpu=0):
    """``root/cpu<cpu>/cache/index<i>/{level,type,size,shared_cpu_list}`` for each (level, type, size, list)."""
    for i, (level, kind, size, shared) in enumerate(caches):
        index = root / f"cpu{cpu}" / "cache" / f"index{i}"
        index.mkdir(parents=True)
        for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
            (index / name).write_text(f"{value}\n")
    return root


def test_sysfs_caches(tmp_path):
    root = fake_sysfs(tmp_path, [(1, "Data", "32K", "0"), (1, "Instruction", "64K", "0"), (2, "Unified", "1024K", "0"),
                                 (3, "Unified", "32M", "0-3,8")])
    caches = read_caches(root, cpu=0)
    assert {name: (c.size_bytes, c.shared_by, c.reason) for name, c in caches.items()} == {
        "L1": (32 * KIB, 1, None), "L2": (MIB, 1, None), "L3": (32 * MIB, 5, None)}


def test_unreadable_sysfs_gives_unknown_levels_with_the_reason(tmp_path):
    missing = read_caches(tmp_path / "nothing", cpu=0)
    assert all(c.size_bytes is None and "cannot read" in c.reason for c in missing.values())
    root = fake_sysfs(tmp_path / "partial", [(1, "Data", "32K", "0"), (2, "Unified", "lots", "0")])
    caches = read_caches(root, cpu=0)
    assert caches["L1"].size_bytes == 32 * KIB
    assert caches["L2"].size_bytes is None and "lists no L2" in caches["L2"].reason and "'lots'" in caches["L2"].reason
    assert caches["L3"].size_bytes is None and "lists no L3" in caches["L3"].reason
    levels = find_levels(curve(), caches, threads=1)
    assert [lv.known for lv in levels] == [True, False, False, True]
    assert "L2's size is unknown" in levels[1].reason and "where L3 begins is unknown" in levels[2].reason


# ---------------------------------------------------------------------------------------------
# Plateaus


SYSFS = {"L1": CacheInfo("L1", 32 * KIB, "0"), "L2": CacheInfo("L2", MIB, "0"), "L3": CacheInfo("L3", 32 * MIB, "0-1")}


def curve(l1=200.0, l2=100.0, l3=60.0, dram=20.0, l3_end=8 * MIB, steps=4, noise=None):
    """A stepped synthetic sweep, 16 KiB to 256 MiB, ``steps`` points per doubling."""
    points = []
    for i in range(14 * steps + 1):
        ws = int(16 * KIB * 2 ** (i / steps))
        gb = l1 if ws <= 32 * KIB else l2 if ws <= MIB else l3 if ws <= l3_end else dram
        points.append((ws, gb * (noise(i) if noise else 1.0)))
    return points


def test_plateaus_of_a_clean_curve():
    levels = find_levels(curve(), SYSFS, threads=1)
    assert [(lv.name, lv.bandwidth_gb_per_s) for lv in levels] == [("L1", 200.0), ("L2", 100.0), ("L3", 60.0),
                                                                   ("DRAM", 20.0)]
    l1, l2, l3, dram = levels
    assert (l1.capacity_bytes, l2.capacity_bytes, dram.capacity_bytes) == (32 * KIB, MIB, None)
    assert l3.capacity_bytes == 8 * MIB  # where the plateau ends, not sysfs' 32 MiB
    assert l3.shared and dram.shared and not l1.shared and "shared" in l3.source and "32 MiB" in l3.source
    assert "sysfs: 32 KiB per core x 1 thread" in l1.source
    assert l1.measured_at_bytes <= 32 * KIB < l2.measured_at_bytes <= MIB < l3.measured_at_bytes <= 8 * MIB
    assert dram.measured_at_bytes > l3.capacity_bytes


def test_threads_scale_the_per_core_levels():
    levels = find_levels(curve(), SYSFS, threads=2)
    assert levels[0].capacity_bytes == 64 * KIB and levels[1].capacity_bytes == 2 * MIB
    assert "x 2 threads" in levels[0].source


def test_one_dip_does_not_end_the_l3_plateau():
    dipped = curve()
    i = next(k for k, (ws, _) in enumerate(dipped) if ws > 3 * MIB)
    dipped[i] = (dipped[i][0], 15.0)  # another process took the core for one point
    assert find_levels(dipped, SYSFS, 1)[2].capacity_bytes == find_levels(curve(), SYSFS, 1)[2].capacity_bytes


def test_no_l3_plateau_distinct_from_dram():
    levels = find_levels(curve(l3=22.0), SYSFS, threads=1)
    l3, dram = levels[2], levels[3]
    assert l3.bandwidth_gb_per_s is None and "no plateau between L2 and DRAM" in l3.reason
    assert dram.bandwidth_gb_per_s == 22.0 and dram.measured_at_bytes > MIB  # everything past L2 is DRAM's


def test_noisy_curve_keeps_levels_ordered():
    noisy = curve(noise=lambda i: 1.0 + 0.08 * ((i * 7919) % 5 - 2) / 2)  # +-8%, deterministic
    levels = find_levels(noisy, SYSFS, threads=1)
    bandwidths = [lv.bandwidth_gb_per_s for lv in levels]
    assert None not in bandwidths and bandwidths == sorted(bandwidths, reverse=True)


def gradual(ws: int) -> float:
    """A curve whose L3-to-DRAM transition is gradual (60 GB/s to 8 MiB, then down by 12% a point to 20),
    with deterministic +-8% noise: the shape a shared L3 gives."""
    k = math.log2(ws / (16 * KIB)) * 4
    gb = 200.0 if ws <= 32 * KIB else 100.0 if ws <= MIB else 60.0 if ws <= 8 * MIB else \
        max(20.0, 60.0 * 0.88 ** (math.log2(ws / (8 * MIB)) * 4))
    return gb * (1.0 + 0.08 * ((int(k) * 7919) % 5 - 2) / 2)


@pytest.mark.parametrize("points", [curve(), curve(l3=22.0), curve(noise=lambda i: 1.0 + 0.1 * ((i * 31) % 3 - 1)),
                                    [(ws, gradual(ws)) for ws, _ in curve()]], ids=["steps", "no-l3", "noisy",
                                                                                     "gradual"])
@pytest.mark.parametrize("threads", [1, 2])
def test_no_sweep_point_beats_the_ceiling_it_is_placed_under(points, threads):
    """Each level's bandwidth is the best point in its range of working sets, and the ranges cover the
    sweep: the sweep itself never runs above the ceiling the placement rule gives it (the L3-to-DRAM
    transition belongs to L3), while DRAM's figure stays within 25% of the plateau's."""
    levels = find_levels(points, SYSFS, threads)
    m = replace(levelled(), levels=levels, bandwidth_gb_per_s=levels[-1].bandwidth_gb_per_s)
    for ws, gb in points:
        assert gb <= m.ceiling(ws).bandwidth_gb_per_s, (ws, gb, m.ceiling(ws))
    plateau = [gb for ws, gb in points if ws >= points[-1][0] / 2]
    assert levels[-1].bandwidth_gb_per_s <= 1.25 * max(plateau)


def test_a_gradual_fall_to_dram_ends_l3_where_dram_begins():
    points = [(ws, gradual(ws)) for ws, _ in curve()]
    l3, dram = find_levels(points, SYSFS, 1)[2:]
    assert 8 * MIB < l3.capacity_bytes < 128 * MIB and l3.bandwidth_gb_per_s >= 60.0
    assert 20.0 <= dram.bandwidth_gb_per_s <= 25.0 * 1.08


def test_find_levels_needs_a_sweep():
    with pytest.raises(ValueError, match="sweep has 1 points"):
        find_levels([(16 * KIB, 10.0)], SYSFS, 1)


# ---------------------------------------------------------------------------------------------
# The kernels


def test_the_stream_kernel_streams_without_copies():
    """np.add over stride-0 views: the sum is right and numpy allocates no temporary of passes x n
    elements (it would, silently, if it judged the output's internal overlap unsafe)."""
    n, passes = 4096, 500
    a, b, c = machine_mod._stream_views(n, passes)
    assert all(v.shape == (passes, n) and v.strides == (0, 4) for v in (a, b, c)) and c.flags.writeable
    assert c[0].ctypes.data % 64 == 0 and len({v.ctypes.data % 4096 for v in (a, b, c)}) == 3
    before = np.getbufsize()
    tracemalloc.start()
    try:
        machine_mod._stream_add(a, b, c)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * 4  # a copy would be passes x n x 4 = 8 MB
    np.testing.assert_array_equal(c[0], np.full(n, 3.0, np.float32))
    assert np.getbufsize() == before  # numpy's buffer set only for the call


def test_int8_gemm_model_computes_the_integer_product():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    session = ort.InferenceSession(machine_mod.int8_gemm_model(4, 3, 5), providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).integers(0, 256, (4, 5), dtype=np.uint8)
    from onnx import load_model_from_string, numpy_helper

    weights = numpy_helper.to_array(load_model_from_string(machine_mod.int8_gemm_model(4, 3, 5)).graph.initializer[0])
    expected = (a.astype(np.int32) - 128) @ weights.astype(np.int32)
    np.testing.assert_array_equal(session.run(None, {"A": a})[0], expected)


def test_unavailable_precisions_say_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    int8 = machine_mod._int8_peak(1)
    assert int8.gflops_per_s is None and "onnxruntime cannot be imported" in int8.reason
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_fp16_supported", lambda: False)
    fp16 = machine_mod._torch_peak("fp16")
    assert fp16.gflops_per_s is None and "_is_mkldnn_fp16_supported() is False" in fp16.reason


def test_library_versions():
    versions = library_versions()
    assert tuple(versions) == VERSION_KEYS and versions["torch"] == torch.__version__
    assert versions["numpy"] == np.__version__
    assert versions["onednn_isa"] is None or isinstance(versions["onednn_isa"], str)


def test_measurement_gives_every_ceiling_and_restores_threads(monkeypatch):
    """The real micro-benchmarks, shortened (a 2 MiB sweep, 10 ms per GEMM size): every level and
    precision present, measured or with a reason; torch's thread count restored. Structure only."""
    monkeypatch.setattr(machine_mod, "sweep_limit", lambda caches: 2 * MIB)
    monkeypatch.setattr(machine_mod, "GEMM_SECONDS", 0.01)
    monkeypatch.setattr(machine_mod, "GEMM_SIZES", {p: (128,) for p in PRECISIONS})
    monkeypatch.setattr(machine_mod, "CONV_CHANNELS", 64)
    before = torch.get_num_threads()
    m = measure_machine(threads=1)
    assert torch.get_num_threads() == before
    assert m.threads == 1 and m.torch_version == torch.__version__ and m.peak_gflops_per_s > 0
    assert [lv.name for lv in m.levels] == list(LEVELS) and m.levels[-1].bandwidth_gb_per_s > 0
    assert all(lv.known or lv.reason for lv in m.levels) and all(p.gflops_per_s or p.reason for p in m.peaks)
    assert m.bandwidth_gb_per_s == m.levels[-1].bandwidth_gb_per_s and len(m.sweep) == 29  # 16 KiB..2 MiB
    assert m.peak("fp32").engine.startswith("torch/")
    assert Machine.from_dict(json.loads(json.dumps(m.to_dict()))) == m


# ---------------------------------------------------------------------------------------------
# The cache


def test_cache_is_written_once_and_reread(tmp_path, monkeypatch):
    machine = levelled()
    calls = []
    monkeypatch.setattr(machine_mod, "measure_machine", lambda threads: calls.append(threads) or machine)
    first = machine_profile(1, cache_dir=tmp_path)
    path = cache_path(1, tmp_path)
    assert path.is_file() and path.name.startswith("machine-") and path.suffix == ".json"
    data = json.loads(path.read_text())
    assert data["format"] == CACHE_FORMAT and data["levels"][0]["bandwidth_gb_per_s"] == 200.0
    assert machine_profile(1, cache_dir=tmp_path) == first == machine and calls == [1]
    machine_profile(1, remeasure=True, cache_dir=tmp_path)
    assert calls == [1, 1]
    path.write_text("{not json")
    assert machine_profile(1, cache_dir=tmp_path) == machine and calls == [1, 1, 1]


def test_an_older_cache_is_measured_again(tmp_path, monkeypatch, machine):
    calls = []
    monkeypatch.setattr(machine_mod, "measure_machine", lambda threads: calls.append(threads) or levelled())
    old = {k: v for k, v in machine.to_dict().items() if k not in ("levels", "peaks", "versions", "sweep")}
    cache_path(1, tmp_path).write_text(json.dumps(old))  # format 1: one peak, one bandwidth, no "format"
    assert machine_profile(1, cache_dir=tmp_path) == levelled() and calls == [1]
    assert store(levelled(), tmp_path) == cache_path(1, tmp_path)


def test_cache_key_depends_on_threads_and_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPCONV_CACHE", str(tmp_path))
    assert cache_path(1).parent == tmp_path
    assert cache_path(1) != cache_path(2)
    with pytest.raises(ValueError, match="threads=0 must be a positive integer"):
        cache_path(0)
