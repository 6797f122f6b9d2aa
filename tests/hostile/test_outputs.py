"""Hostile input, family 4 (outputs): every command that writes files, with its output where it cannot
go — a directory in the way, a file where a folder should be, a read-only folder, a permission
withdrawn mid-run, a full disk (ENOSPC at flush time, no free space reported), a file-size limit
(RLIMIT_FSIZE: the kernel's EFBIG) — and over a complete output the user saved, without
``--overwrite``. CI runs as root, which ignores ``chmod``, so the permission cases inject the failure
(``support.hostile.FAULTS``); none is skipped. Each: exit code 2, one line naming the output, no
traceback, no file changed (no temporary file left, the old file untouched)."""

from __future__ import annotations

import pytest
from support.hostile import FAULTS, Case, problems, run_cases_once
from support.hostile_inputs import SMALL, STANDARD, WRITERS, argv_of, checkpoint, machine_cache, timm_weights

INPUTS = {"import-weights": {"w.pth": "timm"}}  # files a command reads, filled in by the fixture
# A fault that strikes while writing lets the command do its work first; a few commands are enough
# to show each of those paths (the refusals before any work run for every command).
AT_WRITE = {"eacces", "enospc", "efbig"}
WORK = {"train": {"efbig"}, "profile-plot": {"efbig"}, "profile-html": {"enospc"}}


def _cases(tensors: dict[str, bytes], weights: bytes) -> list[Case]:
    def inputs(writer: str) -> dict[str, bytes | str]:
        return {"w.pth": weights} if writer == "import-weights" else {}

    cases = []
    for writer, (_, out) in WRITERS.items():
        in_the_way = {f"{out}/": ""} if writer != "train" else {out: "a file, not a run directory"}
        cases.append(Case(f"{writer}-in-the-way", argv_of(writer), {**inputs(writer), **in_the_way}, names=out))
        cases.append(Case(f"{writer}-under-a-file", argv_of(writer, f"notes.txt/{out}"),
                          {**inputs(writer), "notes.txt": "mine"}, names="notes.txt"))
        for fault in FAULTS:
            if fault in AT_WRITE and writer in WORK and fault not in WORK[writer]:
                continue
            cases.append(Case(f"{writer}-{fault}", argv_of(writer), inputs(writer), names=out, fault=fault,
                              notes="sepconv train: " if writer == "train" else None))
    # a complete output the user saved, without --overwrite; with it, a failure keeps it
    saved = {"s.safetensors": tensors["m.safetensors"], "s.json": tensors["m.json"]}
    cases += [
        Case("separate-existing", argv_of("separate"), saved, names="s.safetensors"),
        Case("separate-not-ours", argv_of("separate"), {"s.safetensors": b"a user's own file"},
             names="s.safetensors"),
        Case("separate-overwrite-enospc", argv_of("separate", None, "--overwrite"), saved, names="s.safetensors",
             fault="enospc"),
        Case("import-weights-existing", argv_of("import-weights"), {"w.pth": weights, **tensors},
             names="m.safetensors"),
        Case("import-weights-overwrite-efbig", argv_of("import-weights", None, "--overwrite"),
             {"w.pth": weights, **tensors}, names="m.safetensors", fault="efbig"),
        Case("profile-json-existing", argv_of("profile-json"), {"p.json": "{}"}, names="p.json"),
        Case("profile-json-overwrite-enospc", argv_of("profile-json", None, "--overwrite"), {"p.json": "{}"},
             names="p.json", fault="enospc"),
        Case("profile-plot-existing", argv_of("profile-plot"), {"p.png": b"png"}, names="p.png"),
        Case("profile-html-existing", argv_of("profile-html"), {"p.html": "<p>mine</p>"}, names="p.html"),
        Case("machine-json-existing", argv_of("machine-json"), {"machine.json": "{}"}, names="machine.json"),
        Case("profile-several-existing", ["profile", SMALL, STANDARD, *WRITERS["profile-json"][0][2:-2], "--json",
                                          "out"], {"out/summary.json": "{}"}, names="summary.json"),
        Case("train-existing", argv_of("train"), {"run/state.json": "{}"}, names="run"),
    ]
    return cases


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return checkpoint(tmp_path_factory.mktemp("checkpoint")), timm_weights()


@pytest.fixture(scope="module")
def cases(inputs):
    return _cases(*inputs)


@pytest.fixture(scope="module")
def results(cases, tmp_path_factory):
    env = machine_cache(tmp_path_factory.mktemp("machine"))
    return run_cases_once("outputs", cases, tmp_path_factory, env=env)


CASE_IDS = [c.id for c in _cases({"m.safetensors": b"", "m.json": b""}, b"")]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_an_output_that_cannot_be_written_is_refused_in_one_line(case_id, cases, results):
    case = next(c for c in cases if c.id == case_id)
    assert problems(results[case.id], case) == []
