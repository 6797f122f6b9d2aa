"""The profile's --backend names: eager always first, 'all' the fp32 runners (a profile has no
calibration data), the old name of inductor with a warning, and unknown names refused."""

from __future__ import annotations

import pytest

from sepconv.profile.backends import BACKENDS, parse_backends


@pytest.mark.parametrize("text, expected", [
    ("eager", ["eager"]),
    ("onnxruntime", ["eager", "onnxruntime"]),
    ("onnxruntime, channels_last", ["eager", "channels_last", "onnxruntime"]),
    ("all", list(BACKENDS)),
    ("all", ["eager", "channels_last", "inductor", "onnxruntime", "openvino"]),  # fp32 only: no calibration data
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
