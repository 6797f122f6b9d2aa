"""Hostile input on the surfaces the profiler-on-real-hardware, baselines and super-resolution work
added: engine names, budgets, model variants, super-resolution scales and photo folders. Each case:
exit code 2, one line naming the value, no traceback, no file changed (``support.hostile``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from support.hostile import Case, problems, run_cases_once


def _png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), 128, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


CASES = [
    # sepconv profile --layers-on / --budget
    Case("layers-on-openvino", ["profile", "mobilenet_v2", "--layers-on", "openvino"], names="openvino"),
    Case("layers-on-bogus", ["profile", "mobilenet_v2", "--layers-on", "tensorrt"], names="tensorrt"),
    Case("budget-negative", ["profile", "mobilenet_v2", "--budget", "-1"], names="-1"),
    Case("machine-only-json-dir", ["profile", "--machine-only", "--json", "out/"], files={"out/": ""},
         names="out"),
    # model variants
    Case("variant-googlenet", ["models", "googlenet:variant=bogus"], names="bogus"),
    Case("variant-resnet", ["models", "resnet50:variant=v2"], names="v2"),
    Case("variant-profile", ["profile", "alexnet:variant=caffe"], names="caffe"),
    Case("aux-without-classes", ["models", "googlenet:aux_logits=true,num_classes=0"], names="aux_logits"),
    # super-resolution: scale, photo folders
    Case("sr-scale", ["train", "ssnet_m", "--data", "photos", "--scale", "5", "--out", "run"], names="5"),
    Case("sr-scale-model", ["models", "espcn:scale=7"], names="7"),
    Case("sr-empty-folder", ["train", "ssnet_m", "--data", "photos:empty", "--scale", "2", "--out", "run"],
         files={"empty/": ""}, names="empty"),
    Case("sr-not-photos", ["train", "ssnet_m", "--data", "photos:notes", "--scale", "2", "--out", "run"],
         files={"notes/a.txt": "not an image", "notes/b.png": b"\x89PNG broken"}, names="notes"),
    Case("sr-too-small", ["train", "ssnet_m", "--data", "photos:tiny", "--scale", "2", "--out", "run"],
         files={"tiny/a.png": _png(16), "tiny/b.png": _png(16), "tiny/c.png": _png(16)}, names="16x16"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_cases_once("arguments", CASES, tmp_path_factory)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_in_one_line_with_exit_2(case, results):
    assert problems(results[case.id], case) == []
