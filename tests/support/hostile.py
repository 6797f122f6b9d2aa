"""The fault-injection harness: bad inputs through ``sepconv``'s ``main(argv)``, in a child process
under a memory limit, each in its own working folder whose files are compared before and after.

A case is ``Case(id, argv, files)``: ``files`` maps a relative path to the bytes (or text) written
into the case's folder before it runs (a checkpoint to corrupt, a folder of images, a read-only
output...); ``fault`` names a failure injected while it runs (:data:`FAULTS`: a read-only folder as
an unprivileged user sees it, a permission lost after the check, a full disk, a file-size limit).
:func:`run_cases` starts one child (``python -m support.hostile``) for a list of cases;
the child lowers its own ``RLIMIT_DATA`` to what it uses plus :data:`MEMORY_HEADROOM`, then runs
every case in-process with stdout and stderr captured, and answers with one JSON result per case:
the exit code, both outputs, whether an exception escaped ``main`` and which files changed. An
allocation that the memory estimate should have refused then fails inside the child (exit 1 or an
escaped ``MemoryError``), never on the machine running the suite.

:func:`problems` says what is wrong with a result: sepconv promises exit code 2 and exactly one
line on stderr naming the value, no traceback, and no file changed.

:func:`run_kills` is the other half: a command SIGKILLed at points drawn from a fixed seed among its
file-system events (each file opened for writing, flushed, renamed, linked, removed or made), then
run again (:class:`KillCase`); what it left is for the test to check.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
    fault: str | None = None  # a failure injected while the case runs: one of FAULTS
    notes: str | None = None  # stderr lines starting so are the command's progress notes, printed before the work


FAULTS = {
    "read-only": "the case's folder as an unprivileged user sees a read-only one: os.access denies writing there "
                 "and every write there (open for writing, mkdir, rename, link, unlink) fails with EACCES",
    "eacces": "every write in the case's folder fails with EACCES, though os.access allows it (permission "
              "withdrawn after the check, or an ACL that access() misjudges)",
    "enospc": "every fsync of a file in the case's folder fails with ENOSPC: the disk filled while writing",
    "no-space": "shutil.disk_usage reports no free space, and fsync fails with ENOSPC as for enospc",
    "efbig": "RLIMIT_FSIZE of 4096 bytes, SIGXFSZ ignored: the kernel's own EFBIG on any larger write",
}
FSIZE_LIMIT = 512


@dataclass(frozen=True)
class KillCase:
    """A command to SIGKILL at ``points`` file-system events drawn with ``seed``, then run again
    (``rerun``; default the same argv)."""

    id: str
    argv: list[str]
    files: dict[str, bytes | str] = field(default_factory=dict)
    points: int = 3
    seed: int = 0
    rerun: list[str] | None = None


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
    for rel, mode in getattr(case, "mode", {}).items():
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


def once(name: str, tmp_path_factory: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` (JSON-typed results) run once per test session, across xdist workers too: the
    first worker to ask runs it under a file lock and leaves its result where the others read it. A
    module whose cases pytest-xdist splits over two workers would otherwise run its child twice."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = shared / f"once-{name}.json"
    with open(shared / f"once-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return json.loads(target.read_text())
        value = compute()
        part = target.with_suffix(".part")
        part.write_text(json.dumps(value))
        part.replace(target)
        return value


def run_cases_once(name: str, cases: list[Case], tmp_path_factory: Any, env: dict[str, str] | None = None
                   ) -> dict[str, dict]:
    """:func:`run_cases` in a fresh ``hostile-<name>`` folder, :func:`once` per test session."""
    return once(name, tmp_path_factory, lambda: run_cases(cases, tmp_path_factory.mktemp(f"hostile-{name}"), env=env))


def run_cases(cases: list[Case], root: Path, timeout: float = 600, env: dict[str, str] | None = None
              ) -> dict[str, dict]:
    """Run ``cases`` in one child process (see the module docstring); results by case id. ``env``
    adds environment variables (a machine cache, say)."""
    for case in cases:
        if case.fault is not None and case.fault not in FAULTS:
            raise ValueError(f"{case.id}: unknown fault {case.fault!r} (one of {', '.join(FAULTS)})")
    jobs = [{"id": c.id, "argv": c.argv, "cwd": str(prepare(c, root)), "fault": c.fault} for c in cases]
    return {r["id"]: r for r in _child_run({"cases": jobs}, root, timeout, env)}


def run_kills(cases: list[KillCase], root: Path, timeout: float = 600, env: dict[str, str] | None = None
              ) -> dict[str, list[dict]]:
    """For each case: count its file-system events in a full run, then for each of ``points``
    events drawn with ``seed`` run it afresh in a forked process SIGKILLed just before that event,
    and run it again in the child (``rerun``; with ``--resume`` added for ``train`` when the killed
    run committed a checkpoint). Results by case id: one per point, with the folder to check."""
    jobs = [{"id": c.id, "argv": c.argv, "rerun": c.rerun or c.argv, "cwd": str(prepare(c, root / "base")),
             "root": str(root), "points": c.points, "seed": c.seed} for c in cases]
    results: dict[str, list[dict]] = {}
    for r in _child_run({"kills": jobs}, root, timeout, env):
        results.setdefault(r["id"], []).append(r)
    return results


def _child_run(request: dict, root: Path, timeout: float, env: dict[str, str] | None) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "SEPCONV_DEBUG": "0", "COLUMNS": "200", "OMP_NUM_THREADS": "1", **(env or {})}
    done = subprocess.run([sys.executable, "-m", "support.hostile"], input=json.dumps(request), capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(root))
    if done.returncode != 0:
        raise RuntimeError(f"the hostile child failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def problems(result: dict, case: Case) -> list[str]:
    """What breaks sepconv's promise in ``result`` (empty when it is kept)."""
    found = []
    if result["escaped"]:
        found.append(f"an exception escaped main(): {result['escaped']}")
    if result["code"] != 2:
        found.append(f"exit code {result['code']}, not 2")
    lines = [line for line in result["stderr"].strip("\n").splitlines()
             if case.notes is None or not line.startswith(case.notes)]
    if len(lines) != 1:
        found.append(f"{len(lines)} lines on stderr, not 1: {result['stderr'][-500:]!r}")
    if "Traceback" in result["stderr"]:
        found.append("a traceback on stderr")
    if case.names is not None and case.names not in result["stderr"]:
        found.append(f"the error does not name {case.names!r}: {result['stderr'].strip()!r}")
    if result["changed"]:
        found.append(f"files changed: {result['changed']}")
    return found


def _inside(folder: str) -> Callable[[object], bool]:
    def inside(path: object) -> bool:
        if isinstance(path, int) or not isinstance(path, (str, bytes, os.PathLike)):
            return False
        real = os.path.realpath(os.fsdecode(path))
        return real == folder or real.startswith(folder + os.sep)
    return inside


@contextlib.contextmanager
def inject(fault: str | None, folder: Path) -> Iterator[None]:
    """Install ``fault`` (:data:`FAULTS`) for the case whose folder is ``folder``, and undo it after."""
    if fault is None:
        yield
        return
    inside = _inside(os.path.realpath(folder))
    saved: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, replacement: object) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def denied(path: object) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    limits = None
    if fault in ("read-only", "eacces"):
        real_open, real_os_open = builtins.open, os.open

        def open_(file, mode="r", *args, **kwargs):
            if any(c in mode for c in "wax+") and inside(file):
                raise denied(file)
            return real_open(file, mode, *args, **kwargs)

        def os_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and kwargs.get("dir_fd") is None and inside(path):
                raise denied(path)
            return real_os_open(path, flags, *args, **kwargs)

        for owner in (builtins, io):
            patch(owner, "open", open_)
        patch(os, "open", os_open)
        for name in ("mkdir", "replace", "rename", "link", "unlink", "rmdir", "symlink", "chmod"):
            real = getattr(os, name)

            def refuse(*args, _real=real, **kwargs):
                if kwargs.get("dir_fd") is None and any(inside(a) for a in args[:2]):
                    raise denied(next(a for a in args[:2] if inside(a)))
                return _real(*args, **kwargs)

            patch(os, name, refuse)
        if fault == "read-only":
            real_access = os.access
            patch(os, "access", lambda path, mode, *a, **k: False if mode & os.W_OK and inside(path)
                  else real_access(path, mode, *a, **k))
    elif fault in ("enospc", "no-space"):
        real_fsync = os.fsync

        def fsync(fd):
            if inside(os.readlink(f"/proc/self/fd/{fd}")):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_fsync(fd)

        patch(os, "fsync", fsync)
        if fault == "no-space":
            real_usage = shutil.disk_usage
            patch(shutil, "disk_usage", lambda path: real_usage(path)._replace(free=0))
    elif fault == "efbig":
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, limits[1]))
    try:
        yield
    finally:
        if limits is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
            signal.signal(signal.SIGXFSZ, previous)
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def _run_main(cli, argv: list[str], folder: Path, fault: str | None = None) -> dict:
    """``main(argv)`` in ``folder`` with ``fault`` and captured output: exit code, outputs, what escaped."""
    out, err = io.StringIO(), io.StringIO()
    escaped, code = None, None
    home = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), inject(fault, folder):
            code = cli.main(argv)
    except BaseException as exc:  # noqa: BLE001 - the harness records whatever escapes
        escaped = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        os.chdir(home)
    return {"code": code, "stdout": out.getvalue()[-2000:], "stderr": err.getvalue()[-4000:], "escaped": escaped}


EVENTS = ("open", "fsync", "replace", "rename", "link", "unlink", "mkdir", "rmdir")


@contextlib.contextmanager
def events(on_event: Callable[[str], None]) -> Iterator[None]:
    """Call ``on_event(name)`` before each file-system event of :data:`EVENTS` (``open``: for writing only)."""
    saved = {name: getattr(os, name) for name in EVENTS}

    def hooked(name, real):
        def call(*args, **kwargs):
            if name != "open" or args[1] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                on_event(name)
            return real(*args, **kwargs)
        return call

    for name, real in saved.items():
        setattr(os, name, hooked(name, real))
    try:
        yield
    finally:
        for name, real in saved.items():
            setattr(os, name, real)


def _kill_job(cli, job: dict) -> list[dict]:
    base, root = Path(job["cwd"]), Path(job["root"])
    counted = root / f"{job['id']}-count"
    shutil.copytree(base, counted)
    seen: list[str] = []
    with events(seen.append):
        clean = _run_main(cli, job["argv"], counted)
    if clean["code"] != 0:
        raise RuntimeError(f"{job['id']}: the run to count events failed: {clean}")
    points = sorted(random.Random(job["seed"]).sample(range(1, len(seen) + 1), min(job["points"], len(seen))))
    results = []
    for point in points:
        folder = root / f"{job['id']}-kill-{point}"
        shutil.copytree(base, folder)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the run to kill: just before its event number `point`
            count = [0]

            def maybe_kill(name: str) -> None:
                count[0] += 1
                if count[0] == point:
                    os.kill(os.getpid(), signal.SIGKILL)

            with events(maybe_kill):
                done = _run_main(cli, job["argv"], folder)
            os._exit(200 + (done["code"] or 0))  # not killed: the point lay beyond this run's events
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        rerun = list(job["rerun"])
        if rerun[0] == "train" and (folder / _out(rerun) / "state.json").is_file():
            rerun.append("--resume")
        again = _run_main(cli, rerun, folder)
        results.append({"id": job["id"], "point": point, "events": len(seen), "event": seen[point - 1],
                        "killed": killed, "rerun": rerun, "folder": str(folder), "left": snapshot(folder), **again})
    return results


def _out(argv: list[str]) -> str:
    return argv[argv.index("--out") + 1] if "--out" in argv else "."


def _child() -> None:
    from sepconv import cli  # imported before the limit: what the import maps is not the cases' to pay for

    status = Path("/proc/self/status").read_text() if Path("/proc/self/status").exists() else ""
    used = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmData:")), 0)
    resource.setrlimit(resource.RLIMIT_DATA, (used + MEMORY_HEADROOM, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    request = json.loads(sys.stdin.read())
    results = []
    for job in request.get("cases", []):
        folder = Path(job["cwd"])
        before = snapshot(folder)
        result = _run_main(cli, job["argv"], folder, job.get("fault"))
        after = snapshot(folder)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        results.append({"id": job["id"], **result, "changed": changed})
    for job in request.get("kills", []):
        results.extend(_kill_job(cli, job))
    print(json.dumps(results))


if __name__ == "__main__":
    _child()


__all__ = ["Case", "FAULTS", "KillCase", "MEMORY_HEADROOM", "asdict", "inject", "once", "prepare", "problems",
           "run_cases", "run_cases_once", "run_kills", "snapshot"]
