"""optimize (and its 0.1 name compile): a callable that gives PyTorch's answers, picked among the
backends by measuring them, threads set per call and restored."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from support.deploy import small_model
from torch import nn

from sepconv.deploy.optimize import optimize as compile
from sepconv.engines.runner import FP32_BACKENDS

pytestmark = pytest.mark.usefixtures("threads_unchanged")


@pytest.fixture(scope="module")
def model():
    return small_model("mobilenet_v3_small")


def test_compile_auto_measures_each_candidate_and_picks_the_fastest(model, capsys):
    x = torch.randn(1, 3, 32, 32)
    fast = compile(model, x, candidates=("eager", "channels_last", "onnxruntime"), threads=1, repeats=3,
                   warmup=1, verbose=True)
    timed = {r.backend: r.median_ms for r in fast.results}
    assert set(timed) == {"eager", "channels_last", "onnxruntime"}
    assert fast.backend == min(timed, key=timed.get)
    assert all(r.bn_folded and r.max_abs_diff < 1e-4 and r.batch == 1 for r in fast.results)
    eager = timed["eager"]
    assert [r.speedup_vs_eager for r in fast.results] == [pytest.approx(eager / timed[b]) for b in timed]
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)
    printed = capsys.readouterr().out
    assert printed.strip() == fast.table()
    assert "chosen" in printed and "1 threads" in printed and all(b in printed for b in timed)
    assert "BN folded" in printed.splitlines()[1] and all(line.split()[2] == "yes" for line in printed.splitlines()[2:])


def test_compile_named_backend_and_rejections(model):
    x = torch.randn(1, 3, 32, 32)
    eager = compile(model, x, backend="channels_last", threads=1)
    assert eager.backend == "channels_last" and eager.results[0].median_ms is None
    with torch.no_grad():
        torch.testing.assert_close(eager(x), model(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="backend='tvm' must be one of auto, " + ", ".join(FP32_BACKENDS)):
        compile(model, x, backend="tvm")
    with pytest.raises(ValueError, match="backend='int8' must be one of auto, eager"):  # needs calibration
        compile(model, x, backend="int8")
    with pytest.raises(ValueError, match="example_input=list must be a torch.Tensor"):
        compile(model, [x])


@pytest.mark.skipif(not any(map(__import__("shutil").which, ("cc", "gcc", "clang"))),
                    reason="torch.compile's inductor needs a C++ compiler, and none is on PATH")
def test_compile_inductor_candidate_with_freezing():
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
    fast = compile(net, x, candidates=("eager", "inductor"), threads=1, repeats=2, warmup=1)
    assert counters["stats"]["unique_graphs"] > graphs, "dynamo compiled nothing: inductor ran eager"
    inductor = next(r for r in fast.results if r.backend == "inductor")
    assert inductor.error is None and inductor.median_ms is not None and inductor.bn_folded, inductor.error
    graphs = counters["stats"]["unique_graphs"]
    with pytest.warns(DeprecationWarning, match="'compile' is deprecated"):  # the profile's 0.1 name
        named = compile(net, x, backend="compile", threads=1)
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


def test_compile_skips_a_failing_backend_and_says_why():
    x = torch.randn(1, 4, 4, 4)
    fast = compile(Unexportable(), x, candidates=("eager", "onnxruntime"), threads=1, repeats=2, warmup=0)
    assert fast.backend == "eager"
    failed = next(r for r in fast.results if r.backend == "onnxruntime")
    assert failed.median_ms is None and failed.status == "failed" and "channel_shuffle" in failed.error
    assert "channel_shuffle" in fast.table()
    with pytest.raises(ValueError, match="backend 'onnxruntime' failed: .*layer 'shuffle'"):
        compile(Unexportable(), x, backend="onnxruntime")


def test_compile_is_a_deprecated_alias_of_optimize():
    import sepconv.deploy

    model = nn.Sequential(nn.Conv2d(3, 4, 3)).eval()
    with pytest.warns(DeprecationWarning, match="optimize"):
        fast = sepconv.deploy.compile(model, torch.zeros(1, 3, 8, 8), backend="eager", threads=1)
    assert fast.backend == "eager"


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
    fast = compile(net, torch.randn(1, 3, 8, 8), candidates=("eager", "channels_last"), threads=other,
                   repeats=2, warmup=0)
    assert torch.get_num_threads() == before
    assert net.training and not net.norm.training
    assert fast.threads == fast.runner.threads == other and fast.runner.bn_folded
    ThreadsSeen.seen.clear()
    fast(torch.randn(2, 3, 8, 8))  # later, outside optimize: the runner sets its threads for the call
    assert ThreadsSeen.seen == [other] and torch.get_num_threads() == before
