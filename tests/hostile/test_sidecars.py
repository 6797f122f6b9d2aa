"""Hostile input, family 3: a sepconv checkpoint whose JSON sidecar was edited, truncated or crafted,
through every command that reads checkpoints. The format is sepconv's own, so every reader treats it
as untrusted: exit code 2, one line naming the file or the key, no traceback, no file changed."""

from __future__ import annotations

import json

import pytest
from support.hostile import Case, problems, run_cases_once

from sepconv import create_model
from sepconv.formats.checkpoint import save_model

GOOD = {"format": "sepconv", "model": "mobilenet_v1", "kwargs": {"width_mult": 0.25, "num_classes": 10}}
SIDECARS = {
    "top-list": "[1, 2, 3]",
    "top-string": '"sepconv"',
    "top-null": "null",
    "kwargs-list": json.dumps({**GOOD, "kwargs": [1, 2]}),
    "kwargs-string": json.dumps({**GOOD, "kwargs": "width_mult=0.25"}),
    "kwargs-null": json.dumps({**GOOD, "kwargs": None}),
    "deep-arrays": '{"format": "sepconv", "model": "mobilenet_v1", "kwargs": {"x": ' + "[" * 100000 + "]" * 100000 + "}}",
    "unknown-kwarg": json.dumps({**GOOD, "kwargs": {**GOOD["kwargs"], "evil": 1}}),
    "nan-width": json.dumps({**GOOD, "kwargs": {"width_mult": float("nan"), "num_classes": 10}}),
    "inf-width": json.dumps({**GOOD, "kwargs": {"width_mult": float("inf"), "num_classes": 10}}),
    "huge-width": json.dumps({**GOOD, "kwargs": {"width_mult": 1e9, "num_classes": 10}}),
    "truncated": json.dumps(GOOD)[:-7],
    "not-json": "this is not json",
    "unknown-model": json.dumps({**GOOD, "model": "resnet9000"}),
    "wrong-format": json.dumps({**GOOD, "format": "keras"}),
    "unknown-key": json.dumps({**GOOD, "surprise": True}),
}
COMMANDS = {
    "eval": ["eval", "m.safetensors"],
    "profile": ["profile", "m.safetensors", "--budget", "1"],
    "export": ["export", "m.safetensors", "--out", "m.onnx"],
    "bench": ["bench", "m.safetensors"],
    "inspect": ["inspect", "m.safetensors"],
    "separate": ["separate", "m.safetensors", "--out", "s.safetensors", "--no-time"],
}


def _tensors(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("checkpoint")
    save_model(create_model("mobilenet_v1", width_mult=0.25, num_classes=10), folder / "m.safetensors")
    return (folder / "m.safetensors").read_bytes()


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    tensors = _tensors(tmp_path_factory)
    return [Case(f"{command}-{name}", argv, files={"m.safetensors": tensors, "m.json": sidecar}, names="m.json")
            for name, sidecar in SIDECARS.items() for command, argv in COMMANDS.items()]


@pytest.fixture(scope="module")
def results(cases, tmp_path_factory):
    return run_cases_once("sidecars", cases, tmp_path_factory)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("sidecar", sorted(SIDECARS))
def test_a_crafted_sidecar_is_refused_in_one_line(sidecar, command, cases, results):
    case = next(c for c in cases if c.id == f"{command}-{sidecar}")
    assert problems(results[case.id], case) == []
