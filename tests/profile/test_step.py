"""The whole training step per backend and precision: rows, skipped precisions, peak memory, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.profile import step as step_mod
from sepconv.profile.step import (
    PRECISIONS,
    build_step,
    parse_precisions,
    peak_memory_bytes,
    precision_unavailable,
    time_steps,
    training_backends,
)

pytestmark = pytest.mark.usefixtures("threads_unchanged")


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4))


def test_rows_per_backend_precision_and_batch():
    runnable = [p for p in PRECISIONS if precision_unavailable(p) is None]
    rows = time_steps(tiny(), (2, 3, 16, 16), ["channels_last", "onnxruntime"], PRECISIONS, [2, 4], repeats=2,
                      warmup=0, threads=1)
    assert [(r.backend, r.precision, r.batch) for r in rows] == [
        (b, p, n) for b in ("eager", "channels_last") for p in PRECISIONS for n in (2, 4)]
    for row in rows:
        if row.precision in runnable:
            assert row.status == "ok", row.error
            assert row.repeats >= 1 and row.images_per_s == pytest.approx(row.batch / (row.median_ms * 1e-3))
            assert row.peak_memory_bytes > 0
            assert row.speedup_vs_eager is not None
        else:
            assert row.status == "skipped" and "oneDNN reports no" in row.error
    eager = [r for r in rows if (r.backend, r.precision) == ("eager", "fp32")]
    assert all(r.speedup_vs_eager == 1.0 for r in eager)
    assert set(rows[0].to_dict()) == {"backend", "precision", "batch", "status", "error", "repeats", "median_ms",
                                      "p90_ms", "images_per_s", "peak_memory_bytes", "speedup_vs_eager"}


def test_a_precision_the_machine_lacks_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(step_mod, "precision_unavailable",
                        lambda p: "no fp16 here (test)" if p == "fp16" else None)
    rows = time_steps(tiny(), (2, 3, 8, 8), ["eager"], ["fp16"], [2], repeats=1, warmup=0, threads=1)
    assert [(r.precision, r.status, r.error) for r in rows] == [("fp32", "ok", None),
                                                                ("fp16", "skipped", "no fp16 here (test)")]


def test_the_model_is_left_as_it_was():
    model = tiny().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    step = build_step(model, "eager", "fp32")
    for _ in range(2):
        step(torch.randn(2, 3, 8, 8))
    assert not model.training and all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_peak_memory_is_the_steps_own():
    big = torch.zeros(1 << 20)  # allocated before: not counted
    assert 8000 <= peak_memory_bytes(lambda: torch.ones(1000).add(1)) < 8000 + 64  # two tensors, add's scalar
    assert big.numel() == 1 << 20


def test_parse_precisions(monkeypatch):
    assert parse_precisions("all") == list(PRECISIONS)
    assert parse_precisions("fp32") == ["fp32"]
    with pytest.raises(ValueError, match="precision='int4' must be 'all' or a comma-separated list of fp32, bf16, "
                                         "fp16") as err:
        parse_precisions("int4")
    assert err.value.argument == "precision"
    monkeypatch.setattr(step_mod, "precision_unavailable", lambda p: "no fp16 here (test)" if p == "fp16" else None)
    assert parse_precisions("bf16") == ["fp32", "bf16"]
    with pytest.raises(ValueError, match="precision='fp16' cannot run on this machine: no fp16 here \\(test\\); "
                                         "available here: fp32, bf16"):
        parse_precisions("fp16")


def test_training_backends_and_bad_input():
    assert training_backends(["onnxruntime", "compile", "channels_last"]) == ["eager", "channels_last", "inductor"]
    with pytest.raises(ValueError, match="backend='onnxruntime' cannot train"):
        build_step(tiny(), "onnxruntime", "fp32")
    with pytest.raises(ValueError, match="train=True needs a model with trainable parameters"):
        time_steps(nn.ReLU(), (2, 3, 8, 8), ["eager"], ["fp32"], [2])
