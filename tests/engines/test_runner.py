"""sepconv.engines.runner: one name per backend, folding declared per runner and stated per row,
threads set per call and restored, int8 through the quantize path, one plain-text table; rows per
backend and batch with ratios to eager, and failures reported as rows."""

from __future__ import annotations

import pytest
import torch
from support.deploy import randomize_norms
from torch import nn

from sepconv._util.checks import ArgumentError
from sepconv.engines import runner as runner_mod
from sepconv.engines.runner import (
    ALIASES,
    BACKENDS,
    FP32_BACKENDS,
    RUNNERS,
    BackendResult,
    prepare,
    results_table,
    time_backends,
    with_speedups,
)

pytestmark = pytest.mark.usefixtures("threads_unchanged")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return randomize_norms(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                                         nn.Linear(8 * 6 * 6, 4))).eval()


def test_one_list_of_backends_with_one_name_for_torch_compile():
    assert BACKENDS == ("eager", "channels_last", "inductor", "onnxruntime", "int8", "openvino", "openvino_bf16",
                        "openvino_fp16", "openvino_int8", "torch_bf16", "torch_fp16")
    assert FP32_BACKENDS == ("eager", "channels_last", "inductor", "onnxruntime", "openvino")
    assert ALIASES == {"compile": "inductor"} and not set(ALIASES) & set(BACKENDS)
    # what each runner does with BatchNorm, and what it computes in, is declared once, on its spec
    assert {name for name, spec in RUNNERS.items() if spec.folds_bn} == {
        "onnxruntime", "int8", "openvino", "openvino_bf16", "openvino_fp16", "openvino_int8"}
    assert [name for name, spec in RUNNERS.items() if spec.needs_calibration] == ["int8", "openvino_int8"]
    assert {spec.engine for spec in RUNNERS.values()} == {"torch", "onnxruntime", "openvino"}
    assert {(spec.engine, spec.dtype) for spec in RUNNERS.values()} >= {
        ("openvino", p) for p in ("fp32", "bf16", "fp16", "int8")} | {("torch", "bf16"), ("onnxruntime", "int8")}


def test_a_runner_this_machine_cannot_run_is_refused_with_the_reason(net):
    for name, spec in RUNNERS.items():
        reason = spec.unavailable()
        if reason is not None:
            with pytest.raises(ValueError, match=f"backend '{name}' cannot run here: "):
                prepare(name, net, torch.zeros(1, 3, 8, 8), threads=1, calibration=torch.zeros(4, 3, 8, 8))


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


def test_rows_per_backend_and_batch(small_net):
    rows = time_backends(small_net, (1, 3, 32, 32), ["eager", "channels_last", "onnxruntime"], [1, 3],
                         repeats=3, warmup=1, threads=1)
    assert [(r.backend, r.batch) for r in rows] == [
        ("eager", 1), ("eager", 3), ("channels_last", 1), ("channels_last", 3), ("onnxruntime", 1),
        ("onnxruntime", 3)]
    for r in rows:
        assert r.status == "ok", r.error
        assert r.repeats == 3 and 0 < r.median_ms <= r.p90_ms
        assert r.samples_per_s == pytest.approx(r.batch / (r.median_ms / 1e3))
    eager = {r.batch: r.median_ms for r in rows if r.backend == "eager"}
    for r in rows:
        assert r.speedup_vs_eager == pytest.approx(eager[r.batch] / r.median_ms)
    assert [r.bn_folded for r in rows] == [False] * 4 + [True] * 2  # only the ONNX export folds BN
    assert all(0 <= r.max_abs_diff < 1e-4 for r in rows) and rows[0].max_abs_diff == 0
    assert set(rows[0].to_dict()) == {"backend", "batch", "status", "bn_folded", "error", "max_abs_diff", "repeats",
                                      "median_ms", "p90_ms", "samples_per_s", "speedup_vs_eager"}


@pytest.mark.parametrize("backend", ["channels_last", "onnxruntime"])
def test_backends_compute_what_eager_computes(small_net, backend):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = small_net(x)
    out = prepare(backend, small_net, torch.zeros(1, 3, 32, 32), threads=1)(x)
    torch.testing.assert_close(torch.as_tensor(out), expected, rtol=1e-4, atol=1e-4)


def test_a_failing_backend_is_a_row_with_its_reason(small_net, monkeypatch):
    real = runner_mod.prepare

    def fake(backend, *args, **kwargs):
        if backend == "inductor":
            raise RuntimeError("no C++ compiler\nsecond line")
        return real(backend, *args, **kwargs)

    monkeypatch.setattr(runner_mod, "prepare", fake)
    rows = time_backends(small_net, (1, 3, 16, 16), ["eager", "inductor"], [1], repeats=2, warmup=0)
    assert rows[0].status == "ok"
    assert (rows[1].status, rows[1].error, rows[1].median_ms) == ("failed", "RuntimeError: no C++ compiler", None)
    assert rows[1].bn_folded is False


def test_a_failure_while_running_is_a_row_too():
    class Picky(nn.Module):
        def forward(self, x):
            if x.shape[0] > 1:
                raise RuntimeError("batch > 1 unsupported")
            return x * 2

    rows = time_backends(Picky(), (1, 4), ["eager"], [1, 2], repeats=2, warmup=0)
    assert [r.status for r in rows] == ["ok", "failed"]
    assert rows[1].error == "RuntimeError: batch > 1 unsupported"


def test_budget_limits_repeats(small_net):
    rows = time_backends(small_net, (1, 3, 16, 16), ["eager"], [1], repeats=100, warmup=0, budget_s=0.0,
                         min_repeats=5)
    assert rows[0].repeats == 5


@pytest.mark.skipif(not any(map(__import__("shutil").which, ("cc", "gcc", "clang"))),
                    reason="torch.compile's inductor needs a C++ compiler, and none is on PATH")
def test_inductor_backend_runs():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    rows = time_backends(model, (1, 3, 8, 8), ["eager", "inductor"], [1, 2], repeats=2, warmup=1)
    assert [(r.backend, r.status, r.bn_folded) for r in rows[2:]] == [("inductor", "ok", False)] * 2, rows[2].error
    assert all(r.max_abs_diff < 1e-4 for r in rows)
