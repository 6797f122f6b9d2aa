"""sepconv._util.timing: median and nearest-rank p90 of repeated runs after warm-up, argument checks,
training flags restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv._util import timing


def test_measure_median_and_p90(monkeypatch):
    calls = []
    clock = iter(t / 1e3 for pair in ((0, d) for d in (5, 1, 4, 2, 3, 10, 7, 6, 9, 8)) for t in pair)
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    result = timing.measure(lambda: calls.append(1), repeats=10, warmup=2)
    assert len(calls) == 12
    assert result.samples_ms == (5, 1, 4, 2, 3, 10, 7, 6, 9, 8)
    assert result.median_ms == 5.5 and result.p90_ms == 9
    assert result.to_dict()["samples_ms"] == list(result.samples_ms)


@pytest.mark.parametrize("kwargs, message", [(dict(repeats=0), "repeats=0"), (dict(warmup=-1), "warmup=-1"),
                                             (dict(fn=3), "fn=3")])
def test_measure_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timing.measure(**{"fn": lambda: None, **kwargs})


def test_time_module_restores_training_flags():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model.train()
    model[1].eval()
    result = timing.time_module(model, torch.zeros(1, 3, 8, 8), repeats=3, warmup=1)
    assert len(result.samples_ms) == 3 and result.median_ms <= result.p90_ms
    assert model.training and model[0].training and not model[1].training


@pytest.mark.parametrize("samples, median, p90", [
    ([4.0], 4.0, 4.0),
    ([3.0, 1.0], 2.0, 3.0),
    ([5, 1, 4, 2, 3, 10, 7, 6, 9, 8], 5.5, 9),  # rank ceil(0.9 * 10) = 9
    (list(range(1, 12)), 6, 10),  # 11 samples: rank ceil(9.9) = 10
    (list(range(1, 21)), 10.5, 18),  # 20 samples: rank 18
    ([2, 2, 2, 100], 2, 100),  # 4 samples: rank ceil(3.6) = 4, the slowest
])
def test_from_samples_median_and_nearest_rank_p90(samples, median, p90):
    timing_ = timing.Timing.from_samples(samples)
    assert (timing_.median_ms, timing_.p90_ms) == (median, p90)
    assert timing_.samples_ms == tuple(samples)  # in the order measured, not sorted


def test_from_samples_needs_one_sample():
    with pytest.raises(ValueError, match="at least one timing"):
        timing.Timing.from_samples([])


def test_measure_calls_warmup_plus_repeats_times():
    calls = []
    result = timing.measure(lambda: calls.append(1), repeats=3, warmup=0)
    assert len(calls) == 3 and len(result.samples_ms) == 3 and all(s >= 0 for s in result.samples_ms)
    calls.clear()
    timing.measure(lambda: calls.append(1), repeats=1, warmup=4)
    assert len(calls) == 5
