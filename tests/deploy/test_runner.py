"""sepconv.engines.runner: one name per backend, folding declared per runner and stated per row,
threads set per call and restored, int8 through the quantize path, one plain-text table."""

from __future__ import annotations

import pytest
import torch
from deploy_helpers import randomize_norms
from torch import nn

from sepconv._util.checks import ArgumentError
from sepconv.engines.runner import (ALIASES, BACKENDS, FP32_BACKENDS, RUNNERS, BackendResult, prepare,
                                    results_table, time_backends, with_speedups)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return randomize_norms(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                                         nn.Linear(8 * 6 * 6, 4))).eval()


def test_one_list_of_backends_with_one_name_for_torch_compile():
    assert BACKENDS == ("eager", "channels_last", "inductor", "onnxruntime", "int8")
    assert FP32_BACKENDS == BACKENDS[:4]
    assert ALIASES == {"compile": "inductor"} and not set(ALIASES) & set(BACKENDS)
    # what each runner does with BatchNorm is declared once, on its spec
    assert {name: spec.folds_bn for name, spec in RUNNERS.items()} == {
        "eager": False, "channels_last": False, "inductor": False, "onnxruntime": True, "int8": True}
    assert [name for name, spec in RUNNERS.items() if spec.needs_calibration] == ["int8"]


@pytest.mark.parametrize("backend", ["eager", "channels_last", "onnxruntime"])
@pytest.mark.parametrize("fold", [False, True])
def test_prepare_folds_when_asked_or_when_the_spec_does(net, backend, fold):
    x = torch.randn(2, 3, 8, 8)
    run = prepare(backend, net, x[:1], threads=1, fold=fold)
    assert run.backend == backend and run.bn_folded == (fold or RUNNERS[backend].folds_bn)
    with torch.no_grad():
        torch.testing.assert_close(torch.as_tensor(run(x)), net(x), rtol=1e-4, atol=1e-4)
    assert isinstance(net[1], nn.BatchNorm2d)  # the model itself is never folded


def test_int8_needs_calibration_and_runs_the_quantized_export(net):
    with pytest.raises(ArgumentError, match="backend 'int8' needs calibration images") as err:
        time_backends(net, (1, 3, 8, 8), ["eager", "int8"], [1])  # refused before anything is timed
    assert err.value.argument == "calibration"
    calibration = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    rows = time_backends(net, (1, 3, 8, 8), ["eager", "int8"], [1], repeats=2, warmup=0, threads=1,
                         calibration=calibration)
    assert [(r.backend, r.status, r.bn_folded) for r in rows] == [("eager", "ok", False), ("int8", "ok", True)]
    assert 0 < rows[1].max_abs_diff < 1 and rows[1].speedup_vs_eager > 0


def test_bad_arguments_name_the_argument(net):
    with pytest.raises(ArgumentError, match="backend='tvm' must be one of eager, channels_last, inductor"):
        prepare("tvm", net, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ArgumentError, match="backend='tvm' must be one of"):
        time_backends(net, (1, 3, 8, 8), ["eager", "tvm"], [1])
    with pytest.raises(ArgumentError, match="threads=0 must be a positive integer"):
        prepare("eager", net, torch.zeros(1, 3, 8, 8), threads=0)
    training = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ArgumentError, match="training mode; the eager runner runs it as given"):
        prepare("eager", training, torch.zeros(1, 3, 8, 8))
    assert prepare("eager", training, torch.zeros(1, 3, 8, 8), fold=True).bn_folded  # a folded copy is in eval
    assert training.training


def test_time_backends_restores_threads_and_training_flags(net):
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    net.train()
    try:
        rows = time_backends(net, (1, 3, 8, 8), ["eager", "onnxruntime"], [1], repeats=2, warmup=0, threads=other)
        assert torch.get_num_threads() == before and net.training and net[1].training
    finally:
        net.eval()
    assert [r.status for r in rows] == ["ok", "ok"]


def test_speedups_are_eagers_median_over_each_at_the_same_batch():
    rows = [BackendResult("eager", 1, "ok", False, median_ms=4.0), BackendResult("eager", 8, "ok", False, median_ms=20.0),
            BackendResult("onnxruntime", 1, "ok", True, median_ms=2.0),
            BackendResult("onnxruntime", 8, "failed", True, "RuntimeError: no")]
    assert [r.speedup_vs_eager for r in with_speedups(rows)] == [1.0, 1.0, 2.0, None]


def test_the_table_states_which_ran_and_whether_bn_was_folded():
    rows = with_speedups([BackendResult("eager", 1, "ok", True, None, 0.0, 5, 4.0, 5.0, 250.0),
                          BackendResult("inductor", 1, "failed", False, "RuntimeError: no C++ compiler")])
    lines = results_table(rows, "mnv2: input [3, 32, 32]", notes={"eager": "chosen"}).splitlines()
    assert lines[0] == "mnv2: input [3, 32, 32]"
    assert lines[1].split()[:4] == ["backend", "batch", "BN", "folded"]
    assert lines[2].split() == ["eager", "1", "yes", "4.00", "5.00", "1.00x", "0", "chosen"]
    assert lines[3].split()[:3] == ["inductor", "1", "no"] and lines[3].endswith("RuntimeError: no C++ compiler")
