"""The numbers of one measured pass against its ceiling: the level its working set fits, the peak of
its precision, the roofline time there and the above-ceiling flag with its stated tolerance."""

from __future__ import annotations

import pytest

from sepconv.profile.numbers import ABOVE_CEILING_TOLERANCE, above_ceiling, achieved, cell, flagged

KIB, MIB = 1024, 1024 * 1024


def test_a_pass_is_held_against_its_level_and_precision(levelled_machine):
    # 64 KiB moved, no FLOPs, in 1 microsecond: L2 (100 GB/s) allows 0.655 us; 65.5 GB/s achieved.
    row = achieved(levelled_machine, 0, 64 * KIB, median_ms=1e-3, p90_ms=2e-3)
    assert (row["memory_level"], row["ceiling_gb_per_s"], row["ceiling_gflops_per_s"]) == ("L2", 100.0, 100.0)
    assert row["working_set_bytes"] == 64 * KIB and row["precision"] == "fp32"
    assert row["gb_per_s"] == pytest.approx(65.536) and row["gflops_per_s"] == 0
    assert row["roofline_ms"] == pytest.approx(64 * KIB / 100e9 * 1e3)
    assert row["bound"] == "memory" and row["above_ceiling"] is False
    # The same bytes with a 16 KiB working set (say, re-read from L1): held against L1's 200 GB/s.
    assert achieved(levelled_machine, 0, 64 * KIB, 1e-3, 2e-3, working_set_bytes=16 * KIB)["memory_level"] == "L1"


@pytest.mark.parametrize("precision, peak", [("fp32", 100.0), ("bf16", 200.0), ("int8", 400.0), ("fp16", None)])
def test_the_compute_peak_is_the_precision_s(levelled_machine, precision, peak):
    row = achieved(levelled_machine, 1e9, 1e3, median_ms=10.0, p90_ms=10.0, precision=precision)
    assert row["ceiling_gflops_per_s"] == peak and row["precision"] == precision
    expected_ms = 1e9 / (peak * 1e9) * 1e3 if peak else 1e3 / 200e9 * 1e3  # no fp16 peak: memory alone bounds it
    assert row["roofline_ms"] == pytest.approx(expected_ms)
    assert row["bound"] == ("compute" if peak else "memory")


def test_above_the_ceiling_beyond_the_tolerance_is_flagged(levelled_machine):
    """1 GFLOP at 100 GFLOP/s takes 10 ms at best: 9.6 ms is within the 5% tolerance, 9.4 ms above."""
    assert ABOVE_CEILING_TOLERANCE == 0.05
    assert achieved(levelled_machine, 1e9, 1e3, 9.6, 9.6)["above_ceiling"] is False
    assert achieved(levelled_machine, 1e9, 1e3, 9.4, 9.4)["above_ceiling"] is True
    # Above the level's bandwidth: 1 MiB (L2, 100 GB/s) in 8 us is 131 GB/s.
    assert achieved(levelled_machine, 0, MIB, 8e-3, 8e-3)["above_ceiling"] is True
    untimed = achieved(levelled_machine, 1e9, 1e3, None, None)
    assert untimed["above_ceiling"] is None and untimed["gflops_per_s"] is None and untimed["roofline_ms"] > 0
    assert above_ceiling(1.05) is False and above_ceiling(1.0501) is True and above_ceiling(None) is None


def test_cells():
    assert cell(None) == "—" and cell(3.14159, ".1f") == "3.1"
    assert flagged(1.5, True) == "150!" and flagged(0.5, False) == "50" and flagged(None, None) == "—"
