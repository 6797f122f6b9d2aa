"""Interleaved timing: every runner timed in every round, medians and round medians reported."""

from __future__ import annotations

import pytest

from sepconv.engines.interleave import interleaved, round_ratios


def test_every_runner_is_timed_in_every_round_in_turn():
    order = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    timings = interleaved(calls, rounds=3, budget_s=0.0, pause_s=0, max_per_round=1)
    assert set(timings) == {"a", "b"}
    assert all(len(t.round_medians_ms) == 3 and len(t.samples_ms) == 3 for t in timings.values())
    # two warm-up calls each (sizing, then measure's own), then per round: one untimed + one timed each
    assert order[4:] == ["a", "a", "b", "b"] * 3
    ratios = round_ratios(timings, "a", "b")
    assert len(ratios) == 3 and all(r > 0 for r in ratios)
    assert timings["a"].to_dict()["samples"] == 3


def test_rounds_are_checked_and_nothing_to_time_is_empty():
    assert interleaved({}, rounds=1) == {}
    with pytest.raises(ValueError, match="rounds=0 must be a positive integer"):
        interleaved({"a": lambda: None}, rounds=0)
