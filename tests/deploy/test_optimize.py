"""optimize (and its 0.1 name compile): the one chooser. fp32-only mode: a callable that gives
PyTorch's answers, picked among the fp32 runners by timing them side by side. With data: every
engine x precision checked against fp32 on held-out images, the fastest passing one kept."""

from __future__ import annotations

import importlib
import shutil
from typing import ClassVar

import pytest
import torch
from support.deploy import small_model
from torch import nn

from sepconv.deploy.candidates import Candidate
from sepconv.deploy.optimize import optimize
from sepconv.engines.interleave import Interleaved
from sepconv.engines.runner import RUNNERS

pytestmark = pytest.mark.usefixtures("threads_unchanged")
FP32 = [name for name, spec in RUNNERS.items() if spec.dtype == "fp32"]
OPTIMIZE = importlib.import_module("sepconv.deploy.optimize")  # the module (the package re-exports the function)
FAST = {"rounds": 1, "budget_s": 0.05}


@pytest.fixture(scope="module")
def model():
    return small_model("mobilenet_v3_small")


def test_fp32_mode_times_each_candidate_and_picks_the_fastest(model, capsys):
    x = torch.randn(1, 3, 32, 32)
    fast = optimize(model, x, candidates=("eager", "channels_last", "onnxruntime"), threads=1, verbose=True, **FAST)
    timed = {r.backend: r.median_ms for r in fast.results if r.median_ms is not None}
    assert set(timed) == {"eager", "channels_last", "onnxruntime"}
    assert fast.backend == min(timed, key=timed.get) and fast.chosen.status == "chosen"
    assert all(r.max_abs_diff < 1e-4 for r in fast.results if r.median_ms is not None)
    baseline = fast.report["baseline_ms"]
    assert baseline > 0 and all(r.speedup == pytest.approx(baseline / r.median_ms)
                                for r in fast.results if r.median_ms is not None)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)
    printed = capsys.readouterr().out
    assert printed.strip() == fast.table()
    assert "chosen" in printed and "1 threads" in printed and "BN folded" in printed
    # the others are listed with the reason they are not candidates: int8 etc. need data
    rows = {r.backend: r for r in fast.results}
    assert rows["int8"].status == "excluded" and "needs data" in rows["int8"].reason


def test_fp32_mode_named_backend_and_rejections(model):
    x = torch.randn(1, 3, 32, 32)
    named = optimize(model, x, backend="channels_last", threads=1)
    assert named.backend == "channels_last" and named.chosen.median_ms is None  # built and checked, not timed
    with torch.no_grad():
        torch.testing.assert_close(named(x), model(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="backend='tvm' must be one of auto, " + ", ".join(FP32)):
        optimize(model, x, backend="tvm")
    with pytest.raises(ValueError, match="backend='int8' must be one of auto, eager"):  # needs data
        optimize(model, x, backend="int8")
    with pytest.raises(ValueError, match="example_input=list must be a torch.Tensor"):
        optimize(model, [x])
    with pytest.raises(ValueError, match="example_input is for the fp32-only mode"):
        optimize(model, x, data="digits")
    with pytest.raises(ValueError, match="engines='tpu' must be one of torch, onnxruntime, openvino"):
        optimize(model, x, engines=["tpu"])
    with pytest.raises(ValueError, match="min_agreement=101 must be a percentage"):
        optimize(model, x, min_agreement=101)
    with pytest.raises(ValueError, match="max_drop=nan must be a finite number >= 0"):
        optimize(model, x, max_drop=float("nan"))


@pytest.mark.skipif(not any(map(__import__("shutil").which, ("cc", "gcc", "clang"))),
                    reason="torch.compile's inductor needs a C++ compiler, and none is on PATH")
def test_fp32_mode_inductor_candidate_with_freezing():
    # Inductor with freezing: the folded weights become constants of the compiled graph. Compiled
    # twice in one process (dynamo's recompile limit must not turn the second into eager).
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
                        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Hardswish()).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        want = net(x)
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    fast = optimize(net, x, candidates=("eager", "inductor"), threads=1, **FAST)
    assert counters["stats"]["unique_graphs"] > graphs, "dynamo compiled nothing: inductor ran eager"
    inductor = next(r for r in fast.results if r.backend == "inductor")
    assert inductor.reason is None and inductor.median_ms is not None, inductor.reason
    graphs = counters["stats"]["unique_graphs"]
    with pytest.warns(DeprecationWarning, match="'compile' is deprecated"):  # the profile's 0.1 name
        named = optimize(net, x, backend="compile", threads=1)
    assert counters["stats"]["unique_graphs"] > graphs, "the second compile ran eager"
    for run in (named, fast):
        torch.testing.assert_close(run(x), want, rtol=1e-4, atol=1e-4)
    assert named.backend == "inductor"


class Unexportable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x):
        return self.shuffle(x) * 2


def test_a_failing_candidate_is_listed_with_its_reason():
    x = torch.randn(1, 4, 4, 4)
    fast = optimize(Unexportable(), x, candidates=("eager", "onnxruntime"), threads=1, **FAST)
    assert fast.backend == "eager"
    failed = next(r for r in fast.results if r.backend == "onnxruntime")
    assert failed.median_ms is None and failed.status == "failed" and "channel_shuffle" in failed.reason
    assert "channel_shuffle" in fast.table()
    with pytest.raises(ValueError, match="backend 'onnxruntime' failed: .*layer 'shuffle'"):
        optimize(Unexportable(), x, backend="onnxruntime")


def test_compile_is_a_deprecated_alias_of_optimize():
    import sepconv.deploy

    model = nn.Sequential(nn.Conv2d(3, 4, 3)).eval()
    with pytest.warns(DeprecationWarning, match="optimize"):
        fast = sepconv.deploy.compile(model, torch.zeros(1, 3, 8, 8), backend="eager", threads=1)
    assert fast.backend == "eager" and sepconv.deploy.Compiled is sepconv.deploy.Optimized


class ThreadsSeen(nn.Module):
    """Records torch's thread count during each forward, in a list its (folded) copies share."""

    seen: ClassVar[list[int]] = []

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x):
        ThreadsSeen.seen.append(torch.get_num_threads())
        return self.norm(self.conv(x))


def test_optimize_restores_threads_and_training_flags_and_its_runner_sets_threads_per_call():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    net = ThreadsSeen().train()
    net.norm.eval()  # a submodule frozen in eval stays so (model.train() afterwards would wake it)
    fast = optimize(net, torch.randn(1, 3, 8, 8), candidates=("eager", "channels_last"), threads=other, **FAST)
    assert torch.get_num_threads() == before
    assert net.training and not net.norm.training
    assert fast.threads == fast.runner.threads == other and fast.runner.bn_folded
    ThreadsSeen.seen.clear()
    fast(torch.randn(2, 3, 8, 8))  # later, outside optimize: the runner sets its threads for the call
    assert ThreadsSeen.seen == [other] and torch.get_num_threads() == before


# ---- with data -------------------------------------------------------------------------------------


def _injected(medians: dict[str, float]):
    """An ``interleaved`` replacement returning fixed medians (no timing decides a test)."""
    def fake(calls, rounds=5, budget_s=2.0, pause_s=0.3, max_per_round=20, advance=None):
        out = {}
        for name, call in calls.items():
            call()  # every runner still runs once
            ms = medians.get(name, 50.0)
            out[name] = Interleaved(ms, ms * 1.1, (ms,), (ms,))
        return out

    return fake


def test_the_chooser_keeps_the_fastest_passing_candidate_from_injected_timings(model, monkeypatch):
    # The int8 candidates get the fastest injected times, but on this random-weight model at 64 px
    # int8 rounding flips a third of the top-1 answers: they miss the budget and are not chosen.
    medians = {"openvino_int8": 0.1, "int8": 0.2, "onnxruntime": 3.0, "channels_last": 2.0, "eager": 9.0,
               "openvino": 4.0, "plain onnxruntime": 6.0}
    monkeypatch.setattr(OPTIMIZE, "interleaved", _injected(medians))
    fast = optimize(model, data="digits", input_size=64, threads=1, held_out=1000,
                    candidates=["channels_last", "onnxruntime", "int8", "openvino", "openvino_int8"])
    rows = {r.backend: r for r in fast.results}
    passing = [r.backend for r in fast.results if r.status in ("ok", "chosen")]
    assert fast.backend == min(passing, key=medians.get) == "channels_last"
    assert rows["channels_last"].status == "chosen" and rows["channels_last"].speedup == pytest.approx(3.0)
    assert rows["int8"].status == "over budget" and "agreement" in rows["int8"].reason
    assert rows["int8"].median_ms is None  # a candidate over budget is not timed
    for r in fast.results:
        if r.status in ("ok", "chosen"):
            assert r.accuracy.agreement >= 99.5 and r.accuracy.drop <= 0.5
    assert fast.report["budget"] == {"max_drop": 0.5, "min_agreement": 99.5}
    assert "1000 held-out images of digits" in fast.report["data"]


def test_choose_is_the_one_rule():
    from sepconv.deploy.candidates import choose

    rows = [Candidate("a", "torch", "fp32", "ok", median_ms=3.0), Candidate("b", "torch", "fp32", "ok", median_ms=2.0),
            Candidate("c", "openvino", "int8", "over budget", median_ms=1.0),
            Candidate("d", "openvino", "bf16", "unavailable", "no BF16")]
    assert choose(rows).backend == "b"
    assert choose(rows[2:]) is None


def test_no_candidate_within_the_budget_is_an_error_and_writes_nothing(model, tmp_path):
    out = tmp_path / "deployed"
    with pytest.raises(ValueError, match="no candidate within the budget: int8: over budget"):
        optimize(model, data="digits", input_size=64, threads=1, held_out=1000, candidates=["int8"],
                 min_agreement=100.0, max_drop=0.0, out=out, **FAST)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_too_few_held_out_images_is_refused(model, tmp_path):
    import numpy as np

    images = tmp_path / "few.npy"
    np.save(images, np.random.default_rng(0).standard_normal((300, 3, 32, 32)).astype(np.float32))
    with pytest.raises(ValueError, match="has 300 images: 256 calibrate int8 and at least 1000 must be held out"):
        optimize(model, data=str(images), input_size=32, threads=1)


def test_an_existing_out_is_replaced_only_with_overwrite(model, tmp_path):
    out = tmp_path / "deployed"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="already exists"):
        optimize(model, torch.randn(1, 3, 32, 32), candidates=["eager"], threads=1, out=out, **FAST)
    assert (out / "mine.txt").read_text() == "keep me"
    optimize(model, torch.randn(1, 3, 32, 32), candidates=["eager"], threads=1, out=out, overwrite=True, **FAST)
    assert not (out / "mine.txt").exists() and (out / "report.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["deployed"]  # no staging folder left behind
    shutil.rmtree(out)
