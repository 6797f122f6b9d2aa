#!/usr/bin/env python3
"""One-step set-up for sepconv: ``python3 make.py run`` and ``python3 make.py test``.

Needs nothing but Python >= 3.11. It creates ``.venv`` next to this file, installs
``torch==2.13.0`` *first* (on these machines that finds the CPU build on disk; letting pip
resolve ``torch`` through another package would pull a multi-GB CUDA build), then installs
sepconv in editable mode with the extras the task needs, and runs it:

    python3 make.py run      # install, then the main job on the built-in default
    python3 make.py test     # install with test extras, then the whole test suite

Extra arguments are passed on: ``python3 make.py test -k cost``, ``python3 make.py run compare``.
Set SEPCONV_TORCH to install another torch requirement (e.g. ``torch==2.13.0+cpu``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
TORCH = os.environ.get("SEPCONV_TORCH", "torch==2.13.0")
MAIN_JOB = ["profile"]


def sh(*cmd: str | os.PathLike) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(list(map(str, cmd)), check=True, cwd=ROOT)


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"sepconv needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    # Reinstall only when the project's metadata or the extras changed.
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode() + TORCH.encode())
    stamp = VENV / ".sepconv-installed"
    if stamp.exists() and stamp.read_text() == key.hexdigest():
        return
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    sh(*pip, TORCH)
    # The constraint keeps every later resolution on the torch just installed.
    constraint = VENV / "torch-constraint.txt"
    out = subprocess.run([PY, "-c", "import torch; print(torch.__version__)"],
                         check=True, capture_output=True, text=True).stdout.strip()
    constraint.write_text(f"torch=={out}\n")
    sh(*pip, "-c", constraint, "-e", f".[{extras}]")
    stamp.write_text(key.hexdigest())


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "env"}:
        print(__doc__)
        return 2
    task, rest = argv[0], argv[1:]
    if task == "run":
        ensure_env("all")
        return subprocess.call([BIN / "sepconv", *(rest or MAIN_JOB)], cwd=ROOT)
    if task == "env":
        ensure_env("test")
        return 0
    ensure_env("test")
    env = dict(os.environ, KERAS_BACKEND="torch")
    # -n 2: the suite is CPU-bound and these machines have two cores.
    workers = os.environ.get("SEPCONV_TEST_WORKERS", "2")
    return subprocess.call([PY, "-m", "pytest", "-n", workers, *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
