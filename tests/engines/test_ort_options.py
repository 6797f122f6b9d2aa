"""sepconv.engines.ort_options: ONNX Runtime's session options as sepconv runs it — one level name,
intra-op threads (all cores by default), sequential execution, errors-only logging."""

from __future__ import annotations

import doctest

import onnxruntime as ort
import pytest

from sepconv._util.runtime import cores
from sepconv.engines import ort_options
from sepconv.engines.ort_options import LEVELS, session_options


@pytest.mark.parametrize("level, expected", [
    ("disable", ort.GraphOptimizationLevel.ORT_DISABLE_ALL), ("basic", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
    ("extended", ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED), ("all", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
])
def test_each_level_name(level, expected):
    assert level in LEVELS
    assert session_options(1, level).graph_optimization_level == expected


def test_threads_sequential_and_quiet():
    so = session_options(threads=2)
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL and so.log_severity_level == 3
    assert session_options().intra_op_num_threads == cores()


def test_bad_arguments():
    with pytest.raises(ValueError, match="optimization='max' must be one of disable, basic, extended, all"):
        session_options(optimization="max")
    with pytest.raises(ValueError, match="threads=0 must be a positive integer"):
        session_options(threads=0)


def test_docstring_example():
    result = doctest.testmod(ort_options)
    assert result.attempted > 0 and result.failed == 0
