"""sepconv._util.io: atomic writes give ordinary file modes, keep what was there on failure and leave
no temporary file behind; a missing directory is made."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sepconv._util.io import atomic_write, atomic_write_text


def test_atomic_write_gives_the_mode_a_plain_write_would(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(plain).st_mode) != 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")

    def fail(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_atomic_write_text_replaces_the_content_and_makes_missing_directories(tmp_path):
    target = tmp_path / "a" / "b" / "report.json"
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    atomic_write_text(target, "[1]\n")
    assert target.read_text() == "[1]\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]


def test_the_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "private.txt", "x")
        after = os.umask(0o027)  # reading the umask means setting it: the write put it straight back
    finally:
        os.umask(old)
    assert after == 0o027
    assert stat.S_IMODE(os.stat(tmp_path / "private.txt").st_mode) == 0o640


def test_the_write_goes_to_a_temporary_file_beside_the_target(tmp_path):
    seen = []

    def write(tmp: str) -> None:
        seen.append(Path(tmp))
        assert not (tmp_path / "out.bin").exists()  # nothing at the target until the rename
        Path(tmp).write_bytes(b"new")

    atomic_write(tmp_path / "out.bin", write)
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".out.bin.") and seen[0].suffix == ".tmp"
    assert not seen[0].exists() and (tmp_path / "out.bin").read_bytes() == b"new"


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
def test_a_failure_before_anything_was_written_leaves_nothing_new(tmp_path, error):
    def fail(tmp: str) -> None:
        raise error("stopped")

    with pytest.raises(error):
        atomic_write(tmp_path / "new.txt", fail)
    assert list(tmp_path.iterdir()) == []  # no target, no temporary file
