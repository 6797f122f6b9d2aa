"""Per-layer timing: rows aligned with the cost model, and adding up to the whole model's time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv._util.runtime import threads_set_to
from sepconv.cost import analyze
from sepconv.profile.layers import ADDUP_TOLERANCE, MIN_REPEATS, LayerTiming, addup, record_calls, time_layers


def test_rows_follow_the_cost_model(small_net):
    x = torch.randn(1, 3, 32, 32)
    names = [row.name for row in analyze(small_net, x).layers]
    profile = time_layers(small_net, x, names, repeats=3, warmup=1)
    assert [row.name for row in profile.layers] == names
    assert all(len(row.timing.samples_ms) == 3 and row.timing.median_ms > 0 for row in profile.layers)
    assert len(profile.model.samples_ms) == 3
    assert profile.layers_ms == pytest.approx(sum(row.timing.median_ms for row in profile.layers))


def test_a_module_called_twice_is_two_rows():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(3, 3, 1), relu, nn.Conv2d(3, 3, 1), relu)
    names = [call.name for call in record_calls(model, torch.randn(1, 3, 8, 8))]
    assert names == ["0", "1", "2", "1#2"]
    assert names == [row.name for row in analyze(model, (1, 3, 8, 8)).layers]
    assert [call.name for call in record_calls(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 8, 8))] == ["(model)"]


def test_unknown_names_are_refused(small_net):
    with pytest.raises(ValueError, match="nope are not leaf-module calls"):
        time_layers(small_net, torch.randn(1, 3, 32, 32), ["nope"], repeats=1)


def test_budget_stops_after_the_minimum_rounds(small_net):
    profile = time_layers(small_net, torch.randn(1, 3, 32, 32), ["0.conv"], repeats=50, warmup=0, budget_s=0.0)
    assert len(profile.model.samples_ms) == MIN_REPEATS


def test_training_flags_are_restored(small_net):
    small_net.train()
    small_net[1].eval()
    time_layers(small_net, torch.randn(1, 3, 16, 16), ["0.conv"], repeats=1, warmup=0)
    assert small_net.training and small_net[0].training and not small_net[1].training


def test_layer_times_add_up_to_the_whole_model(small_net):
    """The issue's check: per-layer times sum to within 30% of the whole-model eager time.

    One thread, so that no OpenMP barrier waits on a core taken by another process; the rounds
    interleave layer and model samples, so a load change hits both. A shared machine can still
    disturb one attempt, so the best of three is taken; a systematic error (a layer timed twice,
    one left out) fails all three.
    """
    x = torch.randn(1, 3, 64, 64)
    names = [row.name for row in analyze(small_net, x).layers]
    ratios = []
    with threads_set_to(1):
        for _ in range(3):
            profile = time_layers(small_net, x, names, repeats=20, warmup=2)
            ratios.append(profile.layers_ms / profile.model.median_ms)
            if abs(ratios[-1] - 1) <= 0.3:
                break
    assert min(abs(r - 1) for r in ratios) <= 0.3, ratios


def test_each_layer_is_also_timed_in_place_in_the_model(small_net):
    x = torch.randn(1, 3, 16, 16)
    names = [row.name for row in analyze(small_net, x).layers]
    profile = time_layers(small_net, x, names, repeats=3, warmup=1)
    assert all(len(row.in_model.samples_ms) == 3 and row.in_model.median_ms > 0 for row in profile.layers)
    assert profile.in_model_ms == pytest.approx(sum(row.in_model.median_ms for row in profile.layers))
    assert len(profile.instrumented.samples_ms) == 3
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in small_net.modules())
    counts = [profile.model_faults, profile.replay_faults, *(row.in_model_faults for row in profile.layers)]
    assert all(isinstance(n, int) and n >= 0 for n in counts)  # page faults (Linux counts them)
    assert LayerTiming("a", profile.model).in_model is None  # the two-argument form still builds


IDLE = dict(load=0.3, cores=2)
BUSY = dict(load=3.9, cores=2)


def test_addup_when_the_parts_account_for_the_model():
    a = addup(19.1, 6.2, 27.4, in_model_ms=21.0, parents={"blocks.5.0": 1.2, "blocks.4.2": 0.9, "(model)": 0.1,
                                                          "blocks.1": 0.05}, **IDLE)
    assert a.accounted_ms == pytest.approx(25.3) and a.unaccounted_ms == pytest.approx(2.1)
    assert a.unaccounted_share == pytest.approx(2.1 / 27.4) and a.within and a.warning is None
    assert a.hot_cache_ms == pytest.approx(1.9) and a.glue_ms == pytest.approx(27.4 - 21.0 - 6.2)
    assert a.parents == (("blocks.5.0", 1.2), ("blocks.4.2", 0.9), ("(model)", 0.1))  # the largest three
    assert "blocks.5.0 1.20 ms" in a.text and "blocks.1" not in a.text and "2.10 ms (8%) unaccounted" in a.text
    assert "1.90 ms more than replayed alone" in a.text and "other processes" not in a.text  # within: no blame


def test_addup_on_an_idle_machine_names_what_is_missing_and_blames_no_one():
    a = addup(19.1, 0.0, 27.4, **IDLE)  # efficientnet_b0 before: 70%
    assert not a.within and a.warning.startswith("warning: layers 19.10 ms + functional ops 0.00 ms")
    assert "8.30 ms (30%) unaccounted" in a.text
    assert "took the core" not in a.text and "busy" not in a.text
    assert "not other processes: the load average was 0.3 on 2 cores" in a.text
    assert a.hot_cache_ms is None and a.glue_ms is None and not a.busy


def test_addup_on_a_busy_machine_blames_other_processes():
    a = addup(19.1, 1.0, 40.0, threads=1, **BUSY)
    assert a.busy and not a.within
    assert "the machine was busy (load 3.9 on 2 cores): other processes took the core" in a.text
    assert "spin-wait" not in a.text
    assert "spin-wait" in addup(19.1, 1.0, 40.0, threads=2, **BUSY).text
    assert addup(19.1, 1.0, 40.0, threads=2, **IDLE).busy is False


def test_addup_names_the_page_faults_a_model_run_takes_and_the_replays_do_not():
    a = addup(22.8, 0.3, 31.0, in_model_ms=28.5, model_faults=4541, replay_faults=0, **IDLE)
    assert "a whole-model run takes 4,541 page faults against 0 for all the replays" in a.text
    assert "MALLOC_MMAP_THRESHOLD_" in a.text and (a.model_faults, a.replay_faults) == (4541, 0)
    assert "page faults" not in addup(22.8, 0.3, 31.0, model_faults=40, replay_faults=0, **IDLE).text
    assert "page faults" not in addup(22.8, 0.3, 31.0, **IDLE).text


def test_addup_when_the_parts_take_longer_than_the_whole():
    a = addup(12.0, 1.0, 10.0, in_model_ms=9.0, **IDLE)
    assert a.unaccounted_ms == pytest.approx(-3.0) and not a.within
    assert "the parts take 3.00 ms (30%) more than the whole" in a.text and "3.00 ms less than replayed alone" in a.text
    assert addup(10.0, 0.0, 11.0 / (1 - ADDUP_TOLERANCE) - 0.01).within is False
    assert addup(10.0, 0.0, 0.0).unaccounted_share == 0.0  # no division by zero


def test_profile_addup_uses_its_totals(small_net):
    x = torch.randn(1, 3, 16, 16)
    names = [row.name for row in analyze(small_net, x).layers]
    profile = time_layers(small_net, x, names, repeats=2, warmup=0)
    a = profile.addup(**IDLE)
    assert a.layers_ms == profile.layers_ms and a.functional_ms == profile.functional_ms
    assert a.model_ms == profile.model.median_ms and a.in_model_ms == profile.in_model_ms
