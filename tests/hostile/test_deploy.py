"""Hostile input on the surfaces issue 15 added: ``sepconv optimize`` (engines, precisions, budgets,
data, the output folder) and ``sepconv bench DIR`` on an optimize folder someone edited. Each case:
exit code 2, one line naming the value, no traceback, no file changed (``support.hostile``)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from support.hostile import Case, problems, run_cases_once

MODEL = "mobilenet_v3_small:num_classes=10"
OPT = ["optimize", MODEL, "--input-size", "32", "--rounds", "1"]


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _folder(edit: dict) -> dict[str, bytes | str]:
    """A crafted optimize folder: a valid manifest with ``edit`` applied, and the file it names."""
    onnx = b"not really onnx"
    manifest = {"format": "sepconv-deploy", "version": 1, "model": MODEL, "backend": "onnxruntime",
                "engine": "onnxruntime", "precision": "fp32", "input_shape": [1, 3, 32, 32], "threads": 1,
                "files": {"model.onnx": hashlib.sha256(onnx).hexdigest()}, "source": None,
                "budget": {"max_drop": 0.5, "min_agreement": 99.5}, "candidates": []}
    manifest.update(edit)
    return {"dep/report.json": json.dumps(manifest), "dep/model.onnx": onnx}


CASES = [
    Case("engines-unknown", [*OPT, "--engines", "tensorrt", "--out", "o"], names="tensorrt"),
    Case("precisions-unknown", [*OPT, "--precisions", "int4", "--out", "o"], names="int4"),
    Case("max-drop-negative", [*OPT, "--max-drop", "-1", "--out", "o"], names="-1"),
    Case("max-drop-nan", [*OPT, "--max-drop", "nan", "--out", "o"], names="nan"),
    Case("min-agreement-over-100", [*OPT, "--min-agreement", "101", "--out", "o"], names="101"),
    Case("min-agreement-inf", [*OPT, "--min-agreement", "inf", "--out", "o"], names="inf"),
    Case("batch-zero", [*OPT, "--batch", "0", "--out", "o"], names="0"),
    Case("batch-huge", [*OPT, "--batch", "100000000", "--out", "o"], names="100000000"),
    Case("threads-huge", [*OPT, "--threads", "100000", "--out", "o"], names="100000"),
    Case("rounds-zero", [*OPT, "--rounds", "0", "--out", "o"], names="0"),
    Case("held-out-too-few", [*OPT, "--data", "digits", "--held-out", "10", "--out", "o"], names="10"),
    Case("input-size-huge", ["optimize", MODEL, "--input-size", "100000", "--out", "o"], names="100000"),
    Case("data-missing", [*OPT, "--data", "nowhere", "--out", "o"], names="nowhere"),
    Case("data-too-few", [*OPT, "--data", "few.npy", "--out", "o"],
         files={"few.npy": _npy(np.zeros((300, 3, 32, 32), np.float32))}, names="300"),
    Case("data-nan", [*OPT, "--data", "nan.npy", "--out", "o"],
         files={"nan.npy": _npy(np.full((1300, 3, 32, 32), np.nan, np.float32))}, names="nan.npy"),
    Case("data-wrong-shape", [*OPT, "--data", "shape.npy", "--out", "o"],
         files={"shape.npy": _npy(np.zeros((1300, 1, 28, 28), np.float32))}, names="shape.npy"),
    Case("out-existing", [*OPT, "--out", "o"], files={"o/mine.txt": "keep"}, names="o"),
    Case("out-is-file", [*OPT, "--out", "o"], files={"o": "keep"}, names="o"),
    Case("out-read-only", [*OPT, "--out", "ro/o"], files={"ro/": ""}, fault="read-only", names="ro"),
    # the disk fills while the folder is written: nothing is left, the old folder stays
    *(Case(f"out-{fault}", [*OPT, "--engines", "onnxruntime", "--out", "o", "--overwrite"],
           files={"o/report.json": "{}", "o/mine.txt": "keep"}, fault=fault, names="o")
      for fault in ("enospc", "efbig")),
    # sepconv bench DIR on an optimize folder someone edited
    Case("bench-engine", ["bench", "dep"], files=_folder({"engine": "tensorrt"}), names="tensorrt"),
    Case("bench-threads", ["bench", "dep"], files=_folder({"threads": -1}), names="-1"),
    Case("bench-path", ["bench", "dep"], files=_folder({"files": {"../x": "0" * 64}}), names="../x"),
    Case("bench-hash", ["bench", "dep"], files=_folder({"files": {"model.onnx": "0" * 64}}), names="model.onnx"),
    Case("bench-unknown-key", ["bench", "dep"], files=_folder({"evil": True}), names="evil"),
    Case("bench-shape", ["bench", "dep"], files=_folder({"input_shape": [1, 3, 0, 32]}), names="input_shape"),
    Case("bench-not-json", ["bench", "dep"],
         files={"dep/report.json": '{"format": "sepconv-deploy", ' + "[" * 50000}, names="report.json"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_cases_once("deploy", CASES, tmp_path_factory)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_in_one_line_with_exit_2(case, results):
    assert problems(results[case.id], case) == []
