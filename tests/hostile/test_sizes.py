"""Hostile input, family 1 and 2: sizes with no up-front check, and non-finite numbers.

Each case must end in exit code 2 and one line naming the value, before anything large is
allocated: the child that runs them may allocate at most ``support.hostile.MEMORY_HEADROOM`` beyond
what it holds after importing sepconv, so a request the memory estimate misses fails there.
"""

from __future__ import annotations

import pytest
from support.hostile import Case, problems, run_cases_once

CASES = [
    # sepconv compare: every size argument, far beyond memory
    Case("compare-size", ["compare", "--size", "100000"], names="--size=100000"),
    Case("compare-kernel", ["compare", "--kernel", "100000"], names="--kernel=100000"),
    Case("compare-batch", ["compare", "--batch", "100000000"], names="--batch=100000000"),
    Case("compare-in-channels", ["compare", "--in-channels", "10000000"], names="--in-channels=10000000"),
    Case("compare-out-channels", ["compare", "--out-channels", "100000000"], names="--out-channels=100000000"),
    Case("compare-depth-multiplier", ["compare", "--depth-multiplier", "100000000"],
         names="--depth-multiplier=100000000"),
    Case("compare-sweep-size", ["compare", "--sweep", "size=8,100000", "--repeats", "0"], names="100000"),
    Case("compare-sweep-train", ["compare", "--size", "30000", "--train", "--repeats", "0"], names="--size=30000"),
    # threads beyond the cores (a huge count kills OpenMP)
    Case("compare-threads", ["compare", "--threads", "100000"], names="--threads=100000"),
    Case("profile-threads", ["profile", "mobilenet_v2", "--threads", "100000"], names="--threads=100000"),
    # sepconv profile: the input and the batch
    Case("profile-input", ["profile", "mobilenet_v2", "--input", "1x3x100000x100000"], names="100000"),
    Case("profile-batch", ["profile", "mobilenet_v2", "--batch", "100000000", "--budget", "1"],
         names="100000000"),
    Case("profile-train-input", ["profile", "mobilenet_v2", "--train", "--input", "100000x3x224x224"],
         names="100000"),
    # a model spec whose weights or activations cannot fit
    Case("models-num-classes", ["models", "mobilenet_v2:num_classes=100000000000"], names="100000000000"),
    Case("models-img-size", ["models", "mobilefacenet:img_size=100000"], names="100000"),
    Case("models-width", ["models", "mobilenet_v2:width_mult=1e9"], names="width_mult="),
    Case("export-width", ["export", "mobilenet_v2:width_mult=1e9", "--out", "m.onnx"], names="width_mult="),
    # non-finite numbers, however they are spelled
    Case("width-inf", ["models", "mobilenet_v2:width_mult=Infinity"], names="Infinity"),
    Case("width-minus-inf", ["models", "mobilenet_v2:width_mult=-inf"], names="-inf"),
    Case("width-nan", ["models", "mobilenet_v2:width_mult=NaN"], names="NaN"),
    Case("width-nan-lower", ["models", "mobilenet_v2:width_mult=nan"], names="nan"),
    Case("width-huge-literal", ["models", "mobilenet_v2:width_mult=1e400"], names="1e400"),
    Case("budget-nan", ["profile", "mobilenet_v2", "--budget", "nan"], names="nan"),
    Case("budget-inf", ["profile", "mobilenet_v2", "--budget", "inf", "--repeats", "1"], names="inf"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_cases_once("sizes", CASES, tmp_path_factory)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_in_one_line_with_exit_2(case, results):
    assert problems(results[case.id], case) == []
