"""Hostile input on the surfaces the papers' switches added (issue 17): model switches a family does
not have or with values outside their rule, the resolution multiplier, ``compare --padding`` and
``sweep --img-sizes``; and a spec number of thousands of digits. Each case: exit code 2, one line
naming the value, no traceback, no file changed (``support.hostile``)."""

from __future__ import annotations

import pytest
from support.hostile import Case, problems, run_cases_once

SWEEP = ["sweep", "mobilenet_v1", "--width-mults", "0.25", "--data", "digits", "--epochs", "1", "--out", "o"]
CASES = [
    Case("project-act-on-v3", ["models", "mobilenet_v3_large:project_act=relu6"], names="project_act"),
    Case("expand-ratio-on-v1", ["models", "mobilenet_v1:expand_ratio=2"], names="expand_ratio"),
    Case("img-size-on-sr", ["models", "srcnn:img_size=32"], names="img_size"),
    Case("groups-on-separable", ["models", "mobilenet_v1:groups=4"], names="groups=4"),
    Case("groups-not-dividing", ["models", "mobilenet_v1:conv=standard,groups=3"], names="groups=3"),
    Case("groups-zero", ["models", "vgg16:groups=0"], names="groups=0"),
    Case("project-act-unknown", ["models", "mobilenet_v2:project_act=tanh"], names="tanh"),
    Case("expand-ratio-zero", ["models", "mobilenet_v2:expand_ratio=0"], names="expand_ratio=0"),
    Case("expand-ratio-float", ["models", "mobilenet_v2:expand_ratio=2.5"], names="2.5"),
    Case("img-size-zero", ["models", "mobilenet_v1:img_size=0"], names="img_size=0"),
    Case("img-size-negative", ["models", "mobilenet_v1:img_size=-32"], names="-32"),
    Case("img-size-huge", ["models", "mobilenet_v2:img_size=100000"], names="100000"),
    Case("spec-number-5000-digits", ["models", "mobilenet_v2:num_classes=" + "9" * 5000], names="num_classes"),
    Case("padding-valid-small", ["compare", "--padding", "valid", "--size", "2"], names="--size=2"),
    Case("padding-valid-kernel", ["compare", "--padding", "valid", "--kernel", "7", "--size", "5"], names="7"),
    Case("padding-unknown", ["compare", "--padding", "full"], names="full"),
    Case("sweep-img-size-zero", [*SWEEP, "--img-sizes", "0"], names="0"),
    Case("sweep-img-size-repeated", [*SWEEP, "--img-sizes", "32,32"], names="32"),
    Case("sweep-img-sizes-and-img-size", [*SWEEP, "--img-sizes", "32", "--img-size", "16"], names="img-size"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_cases_once("switches", CASES, tmp_path_factory)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_in_one_line_with_exit_2(case, results):
    assert problems(results[case.id], case) == []
