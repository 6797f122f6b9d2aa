"""compare's implementation dimension: every form under native and im2col, timed interleaved, with
im2col's matrix calls; the plain compare document unchanged. No test decides by timing."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

from sepconv.compare import impls
from sepconv.compare.impls import im2col_calls, interleaved, run_impls
from sepconv.compare.layer import compare_layer
from sepconv.engines.im2col import use_impl


def test_interleaved_calls_each_step_once_per_round():
    order = []
    timings = interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b"] * 4
    assert {key: len(t.samples_ms) for key, t in timings.items()} == {"a": 3, "b": 3}


def test_run_impls_times_every_copy_and_counts_im2col_calls_with_train():
    module = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
    runs = run_impls({"dw": module}, torch.randn(2, 4, 8, 8), ["native", "im2col"], train=True, repeats=2, warmup=0)
    native, caffe = runs["dw"]
    assert (native.impl, native.calls, len(native.timing.samples_ms)) == ("native", None, 2)
    assert caffe.calls["forward"]["calls"] == caffe.calls["forward"]["gemv_shaped"] == 2 * 4
    assert caffe.calls["backward"]["calls"] == 2 * 2 * 4  # weight-gradient and input-gradient calls
    assert module.weight.grad is None  # the copies were timed, not the module given


def test_im2col_calls_forward_only():
    calls = im2col_calls(use_impl(nn.Conv2d(3, 8, 3), "im2col"), torch.randn(2, 3, 6, 6), train=False)
    assert list(calls) == ["forward"] and calls["forward"]["calls"] == 2 + 2  # conv and bias, per image


def test_compare_layer_with_both_implementations():
    result = compare_layer(8, 16, size=8, batch=2, impl="native,im2col", train=True, repeats=1, warmup=0)
    document = result.to_dict()
    assert document["config"]["impl"] == ["native", "im2col"] and document["config"]["train"] is True
    for row in document["forms"]:
        if not row["applicable"]:
            continue
        assert [run["impl"] for run in row["by_impl"]] == ["native", "im2col"]
        assert row["latency_ms"] == row["by_impl"][0]["latency_ms"] and row["speedup"] == row["by_impl"][0]["speedup"]
        assert row["by_impl"][0]["calls"] is None and row["by_impl"][1]["calls"]["backward"]["calls"] > 0
    standard = result.form("standard")
    assert [run.speedup for run in standard.by_impl] == [1.0, 1.0]
    separable = result.form("depthwise_separable").by_impl[1].calls["forward"]
    assert separable["gemv_shaped"] == 2 * 8 and separable["calls"] == 2 * 8 + 2  # + the pointwise GEMM per image
    table = result.table()
    assert [c.header for c in table.columns][1] == "impl" and table.row_count == 2 * len(
        [r for r in result.forms if r.applicable]) + len([r for r in result.forms if not r.applicable])


def test_plain_compare_document_is_unchanged():
    document = compare_layer(repeats=0).to_dict()
    assert "impl" not in document["config"] and "train" not in document["config"]
    assert all("by_impl" not in row for row in document["forms"])
    assert [c.header for c in compare_layer(repeats=0).table().columns] == [
        "form", "params", "MACs", "ratio", "theory", "ms", "speed-up"]


@pytest.mark.parametrize("impl", ["cudnn", "native,winograd", ""])
def test_unknown_implementation(impl):
    with pytest.raises(ValueError, match="available: native, im2col") as err:
        compare_layer(repeats=0, impl=impl)
    assert err.value.argument == "impl"


def test_docstring_examples():
    result = doctest.testmod(impls)
    assert result.attempted > 0 and result.failed == 0


def test_compare_layer_docstring_examples():
    from sepconv.compare import layer

    result = doctest.testmod(layer)
    assert result.attempted > 0 and result.failed == 0
