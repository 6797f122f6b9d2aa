"""OpenVINO's per-node times summed by layer kind: every conv of a MobileNet anchored on its layer,
the kinds adding up to the executed nodes' time, int8 on the QDQ file, bad arguments refused."""

from __future__ import annotations

import doctest

import pytest
import torch
from support.deploy import small_model

from sepconv.engines import openvino_layers
from sepconv.engines.openvino import unavailable
from sepconv.engines.openvino_layers import openvino_kind_times

pytestmark = [pytest.mark.usefixtures("threads_unchanged"),
              pytest.mark.skipif(unavailable("fp32") is not None, reason="OpenVINO is not installed")]

SHAPE = (1, 3, 64, 64)


@pytest.fixture(scope="module")
def model():
    return small_model("mobilenet_v2")


def test_fp32_kinds_cover_the_model_and_add_up(model):
    kinds = openvino_kind_times(model, SHAPE, precision="fp32", threads=1, repeats=3)
    assert {"pointwise", "depthwise", "standard", "linear"} <= set(kinds.kinds_ms)
    # every conv and the classifier are anchored on their layers: what is left is layout and little else
    assert kinds.kinds_ms.get("unmapped", 0.0) <= 0.05 * kinds.nodes_ms
    assert list(kinds.kinds_ms.values()) == sorted(kinds.kinds_ms.values(), reverse=True)
    # medians per kind against the median of per-run sums: equal up to run-to-run variation
    assert sum(kinds.kinds_ms.values()) == pytest.approx(kinds.nodes_ms, rel=0.5)
    top, share = kinds.top()
    assert top not in ("functional", "layout", "unmapped") and 0 < share <= 1
    assert kinds.to_dict()["top_kind"] == top and kinds.runs == 3 and kinds.input_shape == SHAPE


def test_int8_runs_the_qdq_file_with_the_same_names(model):
    calibration = torch.randn(8, *SHAPE[1:], generator=torch.Generator().manual_seed(0))
    kinds = openvino_kind_times(model, SHAPE, precision="int8", threads=1, repeats=2, calibration=calibration)
    assert {"pointwise", "depthwise"} <= set(kinds.kinds_ms)
    assert kinds.kinds_ms.get("unmapped", 0.0) <= 0.2 * kinds.nodes_ms


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"precision": "int4"}, "precision"),
    ({"precision": "int8"}, "calibration"),
    ({"repeats": 0}, "repeats"),
    ({"threads": -1}, "threads"),
])
def test_bad_arguments_name_the_argument(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        openvino_kind_times(model, SHAPE, **kwargs)


def test_a_precision_this_cpu_lacks_gives_the_reason(model, monkeypatch):
    monkeypatch.setattr(openvino_layers, "unavailable", lambda precision: f"{precision}: not on this CPU")
    with pytest.raises(ValueError, match="bf16: not on this CPU"):
        openvino_kind_times(model, SHAPE, precision="bf16", threads=1)


def test_not_a_module():
    with pytest.raises(ValueError, match="model="):
        openvino_kind_times("mobilenet_v2", SHAPE)  # type: ignore[arg-type]


def test_docstring_example():
    result = doctest.testmod(openvino_layers)
    assert result.attempted > 0 and result.failed == 0
