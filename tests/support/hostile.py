"""The fault-injection harness: bad inputs through ``sepconv``'s ``main(argv)``, in a child process
under a memory limit, each in its own working folder whose files are compared before and after.

A case is ``Case(id, argv, files)``: ``files`` maps a relative path to the bytes (or text) written
into the case's folder before it runs (a checkpoint to corrupt, a folder of images, a read-only
output...). :func:`run_cases` starts one child (``python -m support.hostile``) for a list of cases;
the child lowers its own ``RLIMIT_DATA`` to what it uses plus :data:`MEMORY_HEADROOM`, then runs
every case in-process with stdout and stderr captured, and answers with one JSON result per case:
the exit code, both outputs, whether an exception escaped ``main`` and which files changed. An
allocation that the memory estimate should have refused then fails inside the child (exit 1 or an
escaped ``MemoryError``), never on the machine running the suite.

:func:`problems` says what is wrong with a result: sepconv promises exit code 2 and exactly one
line on stderr naming the value, no traceback, and no file changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

MEMORY_HEADROOM = 3 * 2**30  # bytes the child may allocate beyond what it holds after importing sepconv
TESTS = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, and files to put in its folder first."""

    id: str
    argv: list[str]
    files: dict[str, bytes | str] = field(default_factory=dict)
    mode: dict[str, int] = field(default_factory=dict)  # chmod after writing (e.g. a read-only folder)
    names: str | None = None  # a text the one error line must contain (the value, usually)


def prepare(case: Case, root: Path) -> Path:
    """The case's folder under ``root``, with its files written."""
    folder = root / case.id
    folder.mkdir(parents=True, exist_ok=True)
    for rel, content in case.files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    for rel, mode in case.mode.items():
        os.chmod(folder / rel, mode)
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes (folders as ``<dir>``)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_dir():
            found[rel] = "<dir>"
        elif path.is_file():
            try:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            except OSError:
                found[rel] = "<unreadable>"
    return found


def run_cases(cases: list[Case], root: Path, timeout: float = 600) -> dict[str, dict]:
    """Run ``cases`` in one child process (see the module docstring); results by case id."""
    jobs = [{"id": c.id, "argv": c.argv, "cwd": str(prepare(c, root))} for c in cases]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "SEPCONV_DEBUG": "0", "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "support.hostile"], input=json.dumps(jobs), capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(root))
    if done.returncode != 0:
        raise RuntimeError(f"the hostile child failed ({done.returncode}): {done.stderr[-3000:]}")
    results = json.loads(done.stdout.splitlines()[-1])
    return {r["id"]: r for r in results}


def problems(result: dict, case: Case) -> list[str]:
    """What breaks sepconv's promise in ``result`` (empty when it is kept)."""
    found = []
    if result["escaped"]:
        found.append(f"an exception escaped main(): {result['escaped']}")
    if result["code"] != 2:
        found.append(f"exit code {result['code']}, not 2")
    lines = result["stderr"].strip("\n").splitlines()
    if len(lines) != 1:
        found.append(f"{len(lines)} lines on stderr, not 1: {result['stderr'][-500:]!r}")
    if "Traceback" in result["stderr"]:
        found.append("a traceback on stderr")
    if case.names is not None and case.names not in result["stderr"]:
        found.append(f"the error does not name {case.names!r}: {result['stderr'].strip()!r}")
    if result["changed"]:
        found.append(f"files changed: {result['changed']}")
    return found


def _child() -> None:
    from sepconv import cli  # imported before the limit: what the import maps is not the cases' to pay for

    status = Path("/proc/self/status").read_text() if Path("/proc/self/status").exists() else ""
    used = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmData:")), 0)
    resource.setrlimit(resource.RLIMIT_DATA, (used + MEMORY_HEADROOM, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    results = []
    home = os.getcwd()
    for job in json.loads(sys.stdin.read()):
        folder = Path(job["cwd"])
        before = snapshot(folder)
        out, err = io.StringIO(), io.StringIO()
        escaped, code = None, None
        os.chdir(folder)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(job["argv"])
        except BaseException as exc:  # noqa: BLE001 - the harness records whatever escapes
            escaped = f"{type(exc).__name__}: {exc}"[:500]
        finally:
            os.chdir(home)
        after = snapshot(folder)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        results.append({"id": job["id"], "code": code, "stdout": out.getvalue()[-2000:],
                        "stderr": err.getvalue()[-4000:], "escaped": escaped, "changed": changed})
    print(json.dumps(results))


if __name__ == "__main__":
    _child()


__all__ = ["Case", "MEMORY_HEADROOM", "asdict", "prepare", "problems", "run_cases", "snapshot"]
