"""Whole-model timing per backend as a profile does it (sepconv.engines.runner, the model as given):
names, rows, ratios to eager, folding stated, and failures reported as rows."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.engines import runner as runner_mod
from sepconv.engines.runner import prepare, time_backends
from sepconv.profile.backends import BACKENDS, parse_backends


@pytest.mark.parametrize("text, expected", [
    ("eager", ["eager"]),
    ("onnxruntime", ["eager", "onnxruntime"]),
    ("onnxruntime, channels_last", ["eager", "channels_last", "onnxruntime"]),
    ("all", list(BACKENDS)),
    ("all", ["eager", "channels_last", "inductor", "onnxruntime"]),  # fp32 only: a profile has no calibration data
])
def test_parse_backends(text, expected):
    assert parse_backends(text) == expected


def test_compile_is_a_deprecated_name_of_inductor():
    warned = []
    assert parse_backends("compile,onnxruntime", warn=warned.append) == ["eager", "inductor", "onnxruntime"]
    assert warned == ["backend 'compile' is deprecated: use 'inductor' (the same torch.compile runner)"]
    with pytest.warns(DeprecationWarning, match="'compile' is deprecated"):
        assert parse_backends("compile") == ["eager", "inductor"]


@pytest.mark.parametrize("text", ["tensorrt", "", "eager,gpu", "all,eager", "int8"])
def test_unknown_backends_are_value_errors(text):
    with pytest.raises(ValueError, match="must be 'all' or a comma-separated list of eager, channels_last"):
        parse_backends(text)


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
