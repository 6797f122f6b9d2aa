"""SIGKILL at points drawn from a fixed seed among each writing command's file-system events (a file
opened for writing, flushed, renamed, linked, removed, a folder made), then the same command again
(``--resume`` for a training run that committed a checkpoint): it finishes, or refuses with exit
code 2 in one line naming the complete output already there; every file present is whole and
consistent (each checkpoint loads with its sidecar, whose hash matches its tensors; the training
state names files that exist; JSON parses, ONNX passes the checker, PNG decodes), and no temporary
file is left."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.hostile import KillCase, once, run_kills
from support.hostile_inputs import SMALL, argv_of, machine_cache, timm_weights

from sepconv.formats.checkpoint import load_model
from sepconv.train.state import read_state

PROFILE = ["profile", SMALL, "--input", "1x3x32x32", "--threads", "1", "--repeats", "1", "--warmup", "0", "--budget",
           "1", "--backend", "eager", "--json", "p.json", "--plot", "p.png", "--html", "p.html"]
CASES = [
    KillCase("train", argv_of("train", None, "--save-every", "2"), points=4, seed=16),
    KillCase("separate", argv_of("separate"), points=3, seed=16),
    KillCase("import-weights", argv_of("import-weights"), {"w.pth": b""}, points=3, seed=16),
    KillCase("export", argv_of("export"), points=2, seed=16),
    KillCase("profile", PROFILE, points=2, seed=16),
]
OUTPUTS = {"train": "run", "separate": "s.safetensors", "import-weights": "m.safetensors", "export": "m.onnx",
           "profile": "p."}
TEMPORARY = re.compile(r"^\..+\.(tmp|link)$|^\.tmp[A-Za-z0-9]{6}$")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    weights = timm_weights()
    cases = [KillCase(c.id, c.argv, {"w.pth": weights}, c.points, c.seed) if c.files else c for c in CASES]
    env = machine_cache(tmp_path_factory.mktemp("machine"))
    return once("kill", tmp_path_factory, lambda: run_kills(cases, tmp_path_factory.mktemp("hostile-kill"), env=env))


def whole_and_consistent(folder: Path) -> list[str]:
    """What in ``folder`` is not whole or not consistent (empty when all is)."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if TEMPORARY.match(path.name):
            found.append(f"{rel}: a temporary file left behind")
        elif path.suffix == ".safetensors" and path.with_suffix(".json").exists():
            try:
                load_model(path)
            except ValueError as err:
                found.append(f"{rel}: does not load with its sidecar ({err})")
        elif path.name == "state.json":
            try:
                read_state(path.parent)
            except ValueError as err:
                found.append(f"{rel}: {err}")
        elif path.suffix == ".json":
            try:
                json.loads(path.read_text())
            except ValueError as err:
                found.append(f"{rel}: not whole JSON ({err})")
        elif path.suffix == ".onnx":
            import onnx

            try:
                onnx.checker.check_model(onnx.load(str(path)))
            except Exception as err:  # noqa: BLE001 - onnx raises its own types
                found.append(f"{rel}: not a whole ONNX model ({err})")
        elif path.suffix == ".png":
            from PIL import Image

            try:
                with Image.open(path) as im:
                    im.load()
            except Exception as err:  # noqa: BLE001 - Pillow raises many types
                found.append(f"{rel}: not a whole PNG ({err})")
        elif path.suffix == ".html" and not path.read_text().rstrip().endswith("</html>"):
            found.append(f"{rel}: not a whole HTML page")
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_killed_then_run_again_finishes_or_names_the_complete_output(case, results):
    runs = results[case.id]
    assert len(runs) == case.points
    for run in runs:
        where = f"killed before event {run['point']} of {run['events']} ({run['event']}), then {run['rerun']}"
        assert run["escaped"] is None, where
        if run["code"] != 0:
            lines = [line for line in run["stderr"].splitlines() if not line.startswith("sepconv train: ")]
            assert run["code"] == 2 and len(lines) == 1 and OUTPUTS[case.id] in lines[0], (where, run["stderr"])
        assert whole_and_consistent(Path(run["folder"])) == [], where
    assert any(run["killed"] for run in runs)  # the seeded points lie within the command's events
