"""ONNX Runtime's session options as sepconv runs it: one optimization level name, intra-op threads,
sequential execution, errors-only logging. The floor of the ONNX Runtime modules: the export's
parity check (:mod:`.onnx_export`) and the sessions (:mod:`.ort`) both use it.

Example::

    >>> session_options(threads=1).intra_op_num_threads
    1
"""

from __future__ import annotations

from .._util.checks import positive_int
from .._util.runtime import cores

__all__ = ["LEVELS", "session_options"]

LEVELS = ("disable", "basic", "extended", "all")


def session_options(threads: int | None = None, optimization: str = "all"):  # noqa: ANN201 - ort type
    """``onnxruntime.SessionOptions``: ``optimization`` level, ``threads`` intra-op threads, sequential."""
    import onnxruntime as ort

    if optimization not in LEVELS:
        raise ValueError(f"optimization={optimization!r} must be one of {', '.join(LEVELS)}")
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    so.intra_op_num_threads = cores() if threads is None else positive_int("threads", threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only
    return so
