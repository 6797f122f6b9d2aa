"""The memory this process may still allocate, read from a fake /proc and /sys, and the refusal."""

from __future__ import annotations

import resource

import pytest

from sepconv._util.checks import ArgumentError
from sepconv._util.memory import Available, available_memory, check_fits, format_bytes


def _tree(tmp_path, meminfo_kib=None, cgroup=None, v1=None):
    """A fake root: /proc/meminfo, /proc/self/cgroup and a cgroup v2 (or v1) memory controller."""
    (tmp_path / "proc" / "self").mkdir(parents=True)
    if meminfo_kib is not None:
        (tmp_path / "proc" / "meminfo").write_text(f"MemTotal: 99999999 kB\nMemAvailable: {meminfo_kib} kB\n")
    (tmp_path / "proc" / "self" / "cgroup").write_text("0::/job\n")
    if cgroup is not None:
        folder = tmp_path / "sys" / "fs" / "cgroup" / "job"
        folder.mkdir(parents=True)
        (folder / "memory.max").write_text(cgroup[0] + "\n")
        (folder / "memory.current").write_text(cgroup[1] + "\n")
    if v1 is not None:
        folder = tmp_path / "sys" / "fs" / "cgroup" / "memory"
        folder.mkdir(parents=True)
        (folder / "memory.limit_in_bytes").write_text(v1[0] + "\n")
        (folder / "memory.usage_in_bytes").write_text(v1[1] + "\n")
    return tmp_path


@pytest.fixture
def no_rlimit(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def test_meminfo_alone(tmp_path, no_rlimit):
    assert available_memory(_tree(tmp_path, meminfo_kib=1024)) == Available(1024 * 1024, "MemAvailable")


def test_the_cgroup_limit_minus_usage_when_lower(tmp_path, no_rlimit):
    root = _tree(tmp_path, meminfo_kib=10 * 2**20, cgroup=(str(3 * 2**30), str(2**30)))
    assert available_memory(root) == Available(2 * 2**30, "cgroup memory.max")


def test_an_unlimited_cgroup_is_skipped(tmp_path, no_rlimit):
    root = _tree(tmp_path, meminfo_kib=2048, cgroup=("max", "123"))
    assert available_memory(root).source == "MemAvailable"


def test_cgroup_v1_and_its_no_limit_value(tmp_path, no_rlimit):
    assert available_memory(_tree(tmp_path, meminfo_kib=2**30, v1=(str(2**20), "0"))) == \
        Available(2**20, "cgroup memory.max")
    other = tmp_path / "other"
    other.mkdir()
    assert available_memory(_tree(other, meminfo_kib=4, v1=(str(2**63), "0"))).source == "MemAvailable"


def test_rlimit_data_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (5 * 2**20, resource.RLIM_INFINITY))
    root = _tree(tmp_path, meminfo_kib=2**20)
    assert available_memory(root) == Available(5 * 2**20, "RLIMIT_DATA")
    (root / "proc" / "self" / "status").write_text("Name: python\nVmData:\t    1024 kB\n")
    assert available_memory(root) == Available(4 * 2**20, "RLIMIT_DATA")  # what is in use already counts


def test_nothing_readable_is_unknown_not_an_error(tmp_path, no_rlimit):
    assert available_memory(tmp_path) == Available(2**63 - 1, "unknown")


def test_the_real_machine_reports_something():
    have = available_memory()
    assert have.bytes > 0 and have.source in {"MemAvailable", "cgroup memory.max", "RLIMIT_DATA", "unknown"}


def test_check_fits_refuses_in_one_line_naming_both_sizes():
    with pytest.raises(ArgumentError, match=r"^batch=99: the activations would need 3.0 GiB, but only 1.0 GiB "
                                            r"is available \(MemAvailable\)$") as info:
        check_fits(3 * 2**30, "batch=99: the activations", argument="batch",
                   available=Available(2**30, "MemAvailable"))
    assert info.value.argument == "batch"
    check_fits(2**30, "fine", argument="batch", available=Available(2**30, "MemAvailable"))


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 2**30, "3.0 GiB"),
                                     (2**60, "1024.0 PiB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text
