"""Hostile input, families 4 and 5 (data): a CIFAR folder whose batches were edited (negative or
out-of-range labels, a ``meta`` of the wrong type, bytes where arrays go, one class), an ImageFolder
of one class, and calibration images for ``--int8`` of the wrong dtype or holding NaN or Inf. Each:
exit code 2, one line naming the file, no traceback, no file changed."""

from __future__ import annotations

import io

import numpy as np
import pytest
from support.hostile import Case, problems, run_cases_once
from support.hostile_inputs import CIFAR_CORRUPTIONS, SMALL, STANDARD, corrupt_cifar, folder_files
from support.train import make_cifar10, make_folder

TRAIN = ["train", SMALL, "--epochs", "1", "--threads", "1", "--quiet", "--out", "run"]
EXPORT = ["export", SMALL, "--input-size", "32", "--int8", "--out", "m.onnx", "--calib"]


def _npy(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


IMAGES = (4, 3, 32, 32)
CALIBRATION = {
    "nan": (_npy(np.full(IMAGES, np.nan, np.float32)), "NaN or infinite"),
    "inf": (_npy(np.where(np.arange(4 * 3 * 32 * 32).reshape(IMAGES) % 7 == 0, np.inf, 0.5).astype(np.float32)),
            "NaN or infinite"),
    "minus-inf": (_npy(np.full(IMAGES, -np.inf, np.float64)), "NaN or infinite"),
    "strings": (_npy(np.full(IMAGES, "x")), "dtype <U1"),
    "bool": (_npy(np.ones(IMAGES, bool)), "dtype bool"),
    "complex": (_npy(np.ones(IMAGES, np.complex64)), "dtype complex64"),
    "objects": (_npy(np.array([{"a": 1}], dtype=object), allow_pickle=True), "x.npy"),
    "datetime": (_npy(np.zeros(IMAGES, "datetime64[s]")), "dtype datetime64[s]"),
    "wrong-shape": (_npy(np.zeros((4, 32, 32), np.float32)), "shape (4, 32, 32)"),
    "garbage": (b"\x93NUMPY\x01\x00garbage", "x.npy"),
    "float-labels": (_npz(images=np.zeros(IMAGES, np.float32), labels=np.full(4, 0.5)), "labels have dtype"),
}


def _cases(tmp_path) -> list[Case]:
    cases = []
    for corruption, (file, _) in CIFAR_CORRUPTIONS.items():
        root = make_cifar10(tmp_path / corruption)
        corrupt_cifar(root, corruption)
        files = folder_files(root, "c")
        names = "class0" if corruption == "cifar_one_class" else file
        cases.append(Case(f"train-{corruption}", [*TRAIN, "--data", "cifar10:c"], files, names=names))
    root = make_cifar10(tmp_path / "separate")
    corrupt_cifar(root, "cifar_negative")
    cases.append(Case("separate-cifar_negative", ["separate", STANDARD, "--data", "cifar10:c", "--no-time", "--batch",
                                                  "4"], folder_files(root, "c"), names="data_batch_2"))
    one = make_folder(tmp_path / "one", classes=("cat",))
    cases.append(Case("train-folder-one-class", [*TRAIN, "--data", "folder:one"], folder_files(one, "one"),
                      names="cat"))
    split = make_folder(tmp_path / "split" / "train", classes=("cat",))
    make_folder(tmp_path / "split" / "val", classes=("cat",))
    cases.append(Case("train-split-one-class", [*TRAIN, "--data", "folder:split"],
                      folder_files(split.parent, "split"), names="cat"))
    for name, (content, names) in CALIBRATION.items():
        suffix = ".npz" if name == "float-labels" else ".npy"
        cases.append(Case(f"export-int8-{name}", [*EXPORT, f"x{suffix}"], {f"x{suffix}": content}, names=names))
    return cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return _cases(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def results(cases, tmp_path_factory):
    return run_cases_once("data", cases, tmp_path_factory)


CASE_IDS = [f"train-{c}" for c in CIFAR_CORRUPTIONS] + ["separate-cifar_negative", "train-folder-one-class",
                                                         "train-split-one-class"] + \
    [f"export-int8-{name}" for name in CALIBRATION]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_data_is_refused_in_one_line(case_id, cases, results):
    case = next(c for c in cases if c.id == case_id)
    assert problems(results[case.id], case) == []
